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

from rm_rewards.llm.cache import CachedResponse, ResponseCache, cache_key
from rm_rewards.llm.client import ChatResult, LLMClient, TokenUsage, normalise_messages
from rm_rewards.llm.config import LLMConfig
from rm_rewards.llm.errors import RETRYABLE_REASONS, ErrorReason, LLMError
from rm_rewards.llm.ratelimit import TokenBucket
from rm_rewards.llm.structured import (
    StructuredMode,
    StructuredOutputError,
    cached_response_format,
    cached_schema,
    extract_json_object,
    extract_number_tag,
    extract_tag,
    extract_tags,
    parse_model,
    response_format_for,
    strip_think,
)
from rm_rewards.llm.usage import UsageSnapshot, UsageStats

__all__ = [
    "RETRYABLE_REASONS",
    "CachedResponse",
    "ChatResult",
    "ErrorReason",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "ResponseCache",
    "StructuredMode",
    "StructuredOutputError",
    "TokenBucket",
    "TokenUsage",
    "UsageSnapshot",
    "UsageStats",
    "cache_key",
    "cached_response_format",
    "cached_schema",
    "extract_json_object",
    "extract_number_tag",
    "extract_tag",
    "extract_tags",
    "normalise_messages",
    "parse_model",
    "response_format_for",
    "strip_think",
]
