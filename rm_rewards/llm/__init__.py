"""The LLM layer: one client for every OpenAI-compatible endpoint, plus structured-output parsing.

- `LLMConfig`: endpoint, model, key (secret), concurrency, rate limits, timeout, retries.
- `LLMClient(config, cache)`: `await client.chat(messages, ...) -> ChatResult`; failures come back
  as `ChatResult.error` (an `LLMError` with a stable `reason`), never as a lost batch.
- `ResponseCache(path)`: content-addressed SQLite cache shared by processes; only good answers.
- `UsageStats` / `UsageSnapshot`: calls, cache hits, requests, retries, failures, tokens.
- `structured`: `response_format_for`, `parse_model`, `extract_tag`, `extract_number_tag`, ...
- `transport`: how chat completions travel (one aiohttp session per event loop, configured from
  the `openai` SDK client; why not `chat.completions.create`: its docstring).

No Dagster here: the Dagster resource in `rm_resources` wraps an `LLMClient`.
"""
