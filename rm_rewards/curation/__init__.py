"""Curation: preference pairs folded from samples (`pairs`) and the policy that picks what trains (`curate`)."""
