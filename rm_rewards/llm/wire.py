"""What a chat call puts on the wire and what it reads back: plain functions, no I/O, no state.

- Requests: `normalise_messages`, `request_body`, the `RequestFormat` a call asks for (built once
  per output model, not per call) and `wire_json`, the bytes that are posted.
- Replies: `read_completion` turns an `HTTPReply` into a `Completion` or raises `AttemptFailed`
  (the attempt failed; `retry.decide` says whether to try again); `check_content` decides whether
  a completion's text is a usable answer (non-empty; parses into the output model).
- Failures: `classify_failure` maps whatever an attempt raised to an `ErrorReason` and a redacted
  message. Every message built from what a server sent goes through `clean`, which scrubs the
  client's secrets before anything is cut (a cut could leave part of an echoed key).

`LLMClient` strings these together; the order of the steps is in its module docstring.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
from pydantic import BaseModel

from rm_rewards.core.schema import ChatMessage
from rm_rewards.llm.cache import canonical_json, schema_key_json
from rm_rewards.llm.errors import RETRYABLE_REASONS, ErrorReason, LLMError, redact
from rm_rewards.llm.retry import parse_retry_after
from rm_rewards.llm.structured import (
    SCHEMA_MEMO_SIZE,
    StructuredMode,
    StructuredOutputError,
    cached_response_format,
    parse_model,
)
from rm_rewards.llm.transport import HTTPReply

# Rough characters per token, for reserving tokens-per-minute before the server reports usage.
CHARS_PER_TOKEN = 4
# How much of an answer that is not JSON an error message quotes.
PREVIEW_CHARS = 200
# An error response's own message is kept up to LLMError's limit (after redaction, never before:
# a cut could leave part of an echoed key).
MAX_ERROR_DETAIL_CHARS = 400


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    content: str | None
    finish_reason: str | None
    usage: TokenUsage


class AttemptFailed(Exception):
    """One HTTP attempt failed; `reason` decides whether it is retried, and `transient` marks a
    failure of a reason that is not retried in general but is worth another attempt this time."""

    def __init__(
        self,
        reason: ErrorReason,
        message: str,
        status_code: int | None = None,
        retry_after: float | None = None,
        *,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.reason: ErrorReason = reason
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.transient = transient

    @property
    def retryable(self) -> bool:
        return self.transient or self.reason in RETRYABLE_REASONS

    def to_error(self, attempts: int, detail: str = "") -> LLMError:
        """The call's error when this was its last attempt (`detail`: why no retry follows)."""
        return LLMError(self.reason, self.message + detail, status_code=self.status_code, attempts=attempts)


def clean(text: str, secrets: tuple[str, ...]) -> str:
    """`text` on one line with every secret replaced: what error messages are made of."""
    return redact(" ".join(str(text).split()), secrets)


# --- requests ---------------------------------------------------------------------------------


def normalise_messages(messages: Sequence[ChatMessage | Mapping[str, Any]]) -> list[dict[str, str]]:
    """`[{"role", "content"}]` dicts from ChatMessages or mappings; a bad entry names its index."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(f"messages must be a list of chat messages, got {type(messages).__name__}")
    if not messages:
        raise ValueError("messages is empty: a chat call needs at least one message")
    out = []
    for index, message in enumerate(messages):
        if isinstance(message, ChatMessage):
            out.append({"role": message.role, "content": message.content})
            continue
        if not isinstance(message, Mapping):
            raise TypeError(
                f"messages[{index}]: expected a ChatMessage or a mapping, got {type(message).__name__}"
            )
        for name in ("role", "content"):
            if not isinstance(message.get(name), str):
                got = type(message.get(name)).__name__ if name in message else "nothing"
                raise TypeError(f"messages[{index}].{name}: expected a string, got {got}")
        out.append({"role": message["role"], "content": message["content"]})
    return out


def request_body(
    model: str,
    messages: list[dict[str, str]],
    *,
    temperature: float,
    max_tokens: int | None,
    default_max_tokens: int,
    top_p: float | None,
    seed: int | None,
    stop: str | Sequence[str] | None,
    extra_body: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The request's fields (without its response format); also what its cache key is made of."""
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens or default_max_tokens,
    }
    if top_p is not None:
        body["top_p"] = top_p
    if seed is not None:
        body["seed"] = seed
    if stop is not None:
        body["stop"] = stop if isinstance(stop, str) else list(stop)
    if extra_body:
        body["extra_body"] = dict(extra_body)
    return body


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """Tokens to reserve against tokens-per-minute before the server reports the real count."""
    prompt_chars = sum(len(m["content"]) for m in body["messages"])
    return prompt_chars // CHARS_PER_TOKEN + int(body["max_tokens"])


@dataclass(frozen=True)
class RequestFormat:
    """A request's `response_format` (None: none is sent) in the spellings the wire and the key use."""

    wire_json: str | None  # as sent: compact, fields in the schema's own order (servers generate in it)
    key_json: str  # canonical JSON for the cache key ("null": none)
    schema_key_json: str  # canonical JSON of the output model's schema ("null": no model)


NO_FORMAT = RequestFormat(None, "null", "null")


def request_format(
    response_format: Mapping[str, Any] | None, output_model: type[BaseModel] | None, mode: StructuredMode
) -> RequestFormat:
    """What a call asks for: the caller's own `response_format`, else the output model's in `mode`."""
    if response_format is not None:
        return _explicit_format(response_format, output_model)
    if output_model is not None:
        return _model_format(output_model, mode)
    return NO_FORMAT


# Request bodies as sent: compact, UTF-8 as is, no NaN (not JSON); one encoder for every call.
_WIRE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def compact_json(value: Any) -> str:
    try:
        return _WIRE.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the request cannot be sent as JSON: {exc}") from None


@functools.lru_cache(maxsize=SCHEMA_MEMO_SIZE)
def _model_format(output_model: type[BaseModel], mode: StructuredMode) -> RequestFormat:
    """The format asking for `output_model` in `mode`: serialised once per model, not per call."""
    sent = cached_response_format(output_model, mode)
    return RequestFormat(
        None if sent is None else compact_json(sent), canonical_json(sent), schema_key_json(output_model)
    )


def _explicit_format(
    response_format: Mapping[str, Any], output_model: type[BaseModel] | None
) -> RequestFormat:
    """A caller's own `response_format`, sent as given (serialised per call: it may change)."""
    sent = dict(response_format)
    schema = "null" if output_model is None else schema_key_json(output_model)
    return RequestFormat(compact_json(sent), canonical_json(sent), schema)


def wire_json(body: Mapping[str, Any], request_format: RequestFormat) -> bytes:
    """The request body as sent: `extra_body` fields merged at the top level, over ours (as the
    SDK does), and the response format's ready-made JSON spliced in unless `extra_body` set one."""
    wire = {name: value for name, value in body.items() if name != "extra_body"}
    wire.update(body.get("extra_body") or {})
    text = compact_json(wire)
    if request_format.wire_json is not None and "response_format" not in wire:
        text = f'{text[:-1]},"response_format":{request_format.wire_json}}}'
    return text.encode("utf-8")


# --- replies ----------------------------------------------------------------------------------


def read_completion(reply: HTTPReply, secrets: tuple[str, ...]) -> Completion:
    """The chat completion in a reply, or `AttemptFailed` saying why there is none."""
    if reply.status >= 400:
        detail = clean(error_detail(reply.body), secrets)[:MAX_ERROR_DETAIL_CHARS]
        retry_after = parse_retry_after(reply.headers)
        raise AttemptFailed(
            status_reason(reply.status), f"HTTP {reply.status}: {detail}", reply.status, retry_after
        )
    if not 200 <= reply.status < 300:
        raise AttemptFailed("bad_response", f"HTTP {reply.status} is not a chat completion", reply.status)
    try:
        data = json.loads(reply.body)
    except ValueError as exc:  # UnicodeDecodeError included
        text = reply.body.decode("utf-8", errors="replace")
        message = clean(f"the response is not JSON ({exc}): {text}", secrets)[:PREVIEW_CHARS]
        # A body that is not JSON at all (cut short, mangled by a proxy) is retried: the next answer
        # may arrive whole. Well-formed JSON of the wrong shape is the server's API, and final.
        raise AttemptFailed("bad_response", message, reply.status, transient=True) from None
    return completion_from(data)


def error_detail(body: bytes) -> str:
    """What an error response says: OpenAI's `error.message` (or a bare `error` string), else its text."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error", data) if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"].strip():
        return error["message"]
    if isinstance(error, str) and error.strip():
        return error
    return body.decode("utf-8", errors="replace").strip() or "(no body)"


def completion_from(data: Any) -> Completion:
    """Content, finish reason and token counts of a chat completion's JSON, checked field by field."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise AttemptFailed("bad_response", "the response has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise AttemptFailed("bad_response", "choices[0] has no message")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise AttemptFailed(
            "bad_response", f"choices[0].message.content is {type(content).__name__}, not text"
        )
    finish_reason = choice.get("finish_reason")
    usage = data.get("usage")
    tokens = TokenUsage(_token_count(usage, "prompt_tokens"), _token_count(usage, "completion_tokens"))
    return Completion(content, finish_reason if isinstance(finish_reason, str) else None, tokens)


def _token_count(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def check_content(
    completion: Completion, output_model: type[BaseModel] | None, attempts: int, secrets: tuple[str, ...]
) -> tuple[BaseModel | None, LLMError | None]:
    """The parsed output model (None without one), or the error the content holds."""
    if not completion.content or not completion.content.strip():
        hint = (
            " (finish_reason=length: max_tokens too small?)" if completion.finish_reason == "length" else ""
        )
        return None, LLMError("empty_content", f"the model returned no text{hint}", attempts=attempts)
    if output_model is None:
        return None, None
    try:
        return parse_model(completion.content, output_model), None
    except StructuredOutputError as exc:
        return None, LLMError("parse_error", clean(str(exc), secrets), attempts=attempts)


# --- failures ---------------------------------------------------------------------------------


def classify_failure(exc: Exception, timeout_s: float, secrets: tuple[str, ...]) -> AttemptFailed:
    """Map whatever one attempt raised (aiohttp for chat, the SDK for `list_models`) to a reason
    and a redacted message."""
    root = root_cause(exc)
    # The SDK's aiohttp adapter reports a refused connection as a connect *timeout*.
    refused = isinstance(root, OSError) and not isinstance(root, TimeoutError)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, openai.APITimeoutError)) and not refused:
        return AttemptFailed("timeout", f"no complete response within {timeout_s:g}s")
    if isinstance(exc, (openai.APIConnectionError, aiohttp.ClientError, OSError)):
        return AttemptFailed("connection", clean(f"{type(root).__name__}: {root}", secrets))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = exc.body.get("message") if isinstance(exc.body, dict) else None
        message = clean(f"HTTP {status}: {detail or exc.message}", secrets)
        return AttemptFailed(status_reason(status), message, status, parse_retry_after(exc.response.headers))
    return AttemptFailed("bad_response", clean(f"{type(exc).__name__}: {exc}", secrets))


def root_cause(exc: BaseException) -> BaseException:
    """The innermost network error (an OSError or aiohttp's) behind the SDK's wrappers, else `exc`.

    Needed because the SDK's aiohttp adapter (used by `list_models`) reports a refused connection
    as a connect *timeout*; the OSError underneath says what really happened. Only network errors
    count: an implicit `__context__` can be any exception that was being handled when this one
    was raised (a dropped connection once read as "RuntimeError: no running event loop").
    """
    seen, found = {id(exc)}, exc
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
        if isinstance(exc, (OSError, aiohttp.ClientError)):
            found = exc
    return found


def status_reason(status: int) -> ErrorReason:
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status == 409 or status >= 500:
        return "server_error"
    if status in (401, 403):
        return "auth"
    return "client_error"


__all__ = [
    "NO_FORMAT",
    "AttemptFailed",
    "Completion",
    "RequestFormat",
    "TokenUsage",
    "check_content",
    "classify_failure",
    "clean",
    "compact_json",
    "completion_from",
    "error_detail",
    "estimate_tokens",
    "normalise_messages",
    "read_completion",
    "request_body",
    "request_format",
    "root_cause",
    "status_reason",
    "wire_json",
]
