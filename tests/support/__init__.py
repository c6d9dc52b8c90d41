"""Test support shared by tests/ and bench/: the fake OpenAI-compatible server, tiny models and a
`dagster dev` driver. Not part of the product."""
