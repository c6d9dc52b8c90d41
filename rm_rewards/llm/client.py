"""The one LLM client: chat completions against any OpenAI-compatible endpoint.

    client = LLMClient(LLMConfig(base_url=..., model=..., api_key=...), ResponseCache(path))
    async with client:
        result = await client.chat(messages, output_model=Verdict, template_version="pairwise-v2")
    if result.ok: use(result.parsed)        # else: result.error.reason / str(result.error)

What it does for each `chat` call, in order:

1. normalise the messages and build the request; its cache key covers everything that can
   change the answer (`cache.cache_key`);
2. answer from the cache when it can (zero HTTP);
3. otherwise wait for the requests-per-minute and tokens-per-minute buckets, take one of
   `max_concurrency` slots, and send; each attempt has a hard deadline (`asyncio.timeout` on top
   of the connect and read timeouts, which only bound the gaps between bytes);
4. retry timeouts, dropped connections, 408/409/429 and 5xx with exponential backoff and jitter,
   honouring Retry-After; every retry is ours and counted (the SDK's own retries are off);
5. check the answer (non-empty; parses into `output_model` if one was given) and cache it only
   if it is good.

Failures are values: `chat` returns a `ChatResult` whose `error` is an `LLMError` with a stable
`reason`, so one bad item never takes a batch down. It raises only for caller bugs (malformed
messages, bad arguments). Call `result.raise_for_error()` where an exception is wanted.

Transport: the `openai` SDK's `AsyncOpenAI` is the configured client (base URL, key, headers,
`list_models`), but chat completions are posted by `transport.ChatTransport`, an aiohttp session
using the SDK client's URL and headers: `chat.completions.create` costs ~1.4 ms of CPU per request
in request transforms and response models, six times a direct post (figures and reasons in
`transport`'s docstring). The request body is serialised here once per call, and the answer is
read with `json.loads`; a 2xx body that is not a chat completion is a `bad_response`.

Event loops: HTTP sessions belong to the event loop that opened them, and `kinds.run_sync` runs
every batch on a fresh loop. The client therefore keeps one SDK client, one chat transport and
one concurrency semaphore per running loop, and closes them when the loop shuts down (see
`_close_when_loop_ends`). Rate limits, cache, usage counters and the TLS context are shared by
all loops.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import math
import random
import ssl
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import aiohttp
import openai
from pydantic import BaseModel
from typing_extensions import Self

from rm_rewards.core.schema import ChatMessage
from rm_rewards.llm.cache import CachedResponse, ResponseCache, cache_key_from_json, canonical_json
from rm_rewards.llm.config import LLMConfig
from rm_rewards.llm.errors import RETRYABLE_REASONS, ErrorReason, LLMError, redact
from rm_rewards.llm.ratelimit import TokenBucket
from rm_rewards.llm.structured import (
    SCHEMA_MEMO_SIZE,
    StructuredMode,
    StructuredOutputError,
    cached_response_format,
    cached_schema,
    parse_model,
)
from rm_rewards.llm.transport import ChatTransport, HTTPReply, sdk_ssl_context
from rm_rewards.llm.usage import UsageStats

log = logging.getLogger(__name__)

# The SDK's read timeout normally fires first and names the failure precisely; the outer guard is
# for servers that trickle bytes forever (each gap shorter than the read timeout).
DEADLINE_GRACE_S = 0.1
# Rough characters per token, for reserving tokens-per-minute before the server reports usage.
CHARS_PER_TOKEN = 4
# How much of an answer that is not JSON an error message quotes.
PREVIEW_CHARS = 200
# An error response's own message is kept up to LLMError's limit (after redaction, never before:
# a cut could leave part of an echoed key).
MAX_ERROR_DETAIL_CHARS = 400
_T = TypeVar("_T")


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResult:
    """One chat call's outcome. Exactly one of "usable answer" / `error` holds.

    `content` is the model's text (kept even when it failed to parse, for diagnosis); `parsed` is
    the validated `output_model` instance when one was asked for; `cached` says the answer came
    from the cache (then `attempts` is 0 and `usage` is what the original call used).
    """

    content: str | None
    parsed: Any = None
    error: LLMError | None = None
    cached: bool = False
    usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: str | None = None
    attempts: int = 0
    cache_key: str = ""
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> ChatResult:
        if self.error is not None:
            raise self.error
        return self


@dataclass(frozen=True)
class _Completion:
    content: str | None
    finish_reason: str | None
    usage: TokenUsage


class _AttemptFailed(Exception):
    """One HTTP attempt failed; `reason` decides whether it is retried."""

    def __init__(
        self,
        reason: ErrorReason,
        message: str,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: ErrorReason = reason
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


@dataclass
class _LoopState:
    sdk: openai.AsyncOpenAI
    transport: ChatTransport
    slots: asyncio.Semaphore
    closer: AsyncIterator[None]
    # Cache key → the call already asking it on this loop: identical concurrent calls share it.
    in_flight: dict[str, asyncio.Future] = field(default_factory=dict)


async def _close_when_loop_ends(sdk: openai.AsyncOpenAI, transport: ChatTransport) -> AsyncIterator[None]:
    """An async generator parked at its `yield` for the life of a loop.

    `asyncio.run` (and anything else that calls `loop.shutdown_asyncgens()`) closes every
    unfinished async generator of the loop before closing it; that runs this `finally`, which
    closes the loop's HTTP sessions while the loop can still run it.
    """
    try:
        yield
    finally:
        try:
            await transport.close()
        finally:
            await sdk.close()


async def _within(seconds: float, awaitable: Awaitable[_T]) -> _T:
    """`await awaitable`, or TimeoutError after `seconds` (cancelling it)."""
    if sys.version_info >= (3, 11):  # a timer on the current task; wait_for costs a task per call
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - python 3.10


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


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds) / 1000
            return value if math.isfinite(value) and value >= 0 else None
        except ValueError:
            pass
    text = headers.get("retry-after")
    if text is None:
        return None
    try:
        value = float(text)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class LLMClient:
    """Chat completions with cache, limits, deadlines, retries and usage counting. See module doc."""

    def __init__(
        self, config: LLMConfig, cache: ResponseCache | None = None, *, stats: UsageStats | None = None
    ) -> None:
        self.config = config
        self.cache = cache
        self.stats = stats if stats is not None else UsageStats()
        self._secrets = (config.api_key.get_secret_value(),)
        self._rpm = TokenBucket(config.requests_per_minute) if config.requests_per_minute else None
        self._tpm = TokenBucket(config.tokens_per_minute) if config.tokens_per_minute else None
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._states_lock = threading.Lock()
        self._random = random.Random()
        self._ssl_context: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        cache = f", cache={self.cache!r}" if self.cache is not None else ""
        return f"LLMClient(model={self.config.model!r}, base_url={self.config.base_url!r}{cache})"

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close this loop's HTTP session (the client stays usable: a later call opens a new one)."""
        loop = asyncio.get_running_loop()
        with self._states_lock:
            state = self._states.pop(loop, None)
            self._forget_closed_loops()
        if state is not None:
            await state.closer.aclose()

    def _forget_closed_loops(self) -> None:
        """Drop the states of loops that have ended (their sessions were closed as they ended).

        The weak keys alone do not free them: each state's HTTP session refers to its loop.
        """
        for loop in [loop for loop in self._states if loop.is_closed()]:
            del self._states[loop]

    async def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._states_lock:
            state = self._states.get(loop)
        if state is not None:
            return state
        sdk = self._new_sdk_client()
        transport = ChatTransport(
            sdk,
            timeout_s=self.config.timeout_s,
            max_connections=self._max_connections(),
            ssl_context=self._tls(),
        )
        slots = asyncio.Semaphore(self.config.max_concurrency)
        state = _LoopState(sdk, transport, slots, _close_when_loop_ends(sdk, transport))
        await anext(state.closer)  # park the closer at its yield: the loop now knows about it
        with self._states_lock:
            self._forget_closed_loops()
            winner = self._states.setdefault(loop, state)
        if winner is not state:  # another task of this loop got here first
            await state.closer.aclose()
        return winner

    def _max_connections(self) -> int:
        return max(100, self.config.max_concurrency)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # a race builds two equal contexts; either will do
            self._ssl_context = sdk_ssl_context()
        return self._ssl_context

    def _new_sdk_client(self) -> openai.AsyncOpenAI:
        limits_type = type(openai.DEFAULT_CONNECTION_LIMITS)  # httpx.Limits or httpx2.Limits
        http_client = openai.DefaultAioHttpClient(
            timeout=self.config.timeout_s,
            verify=self._tls(),
            limits=limits_type(
                max_connections=self._max_connections(),
                max_keepalive_connections=max(20, self.config.max_concurrency),
            ),
        )
        return openai.AsyncOpenAI(
            api_key=self._secrets[0],
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,  # ours are the only retries, so each is counted and backed off our way
            http_client=http_client,
        )

    # --- chat -------------------------------------------------------------------------------

    async def chat(
        self,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        output_model: type[BaseModel] | None = None,
        response_format: Mapping[str, Any] | None = None,
        template_version: str = "",
        extra_body: Mapping[str, Any] | None = None,
        use_cache: bool = True,
    ) -> ChatResult:
        """Ask once (with retries); return the answer or the reason there is none.

        `output_model`: parse the answer into this pydantic model (`result.parsed`), and ask for
        it with `config.structured_output`; a parse failure is a `parse_error` result. An explicit
        `response_format` overrides what is sent. `template_version` names the prompt template,
        so a changed template never reuses old answers. `seed` distinguishes samples when the same
        prompt is asked several times at temperature > 0 (identical requests share one cache
        entry). `extra_body`: server-specific fields (sent, and part of the cache key).
        `use_cache=False` neither reads nor writes the cache.
        """
        started = time.monotonic()
        body = self._request_body(
            normalise_messages(messages), temperature, max_tokens, top_p, seed, stop, extra_body
        )
        if response_format is not None:
            request_format = _explicit_format(response_format, output_model)
        elif output_model is not None:
            request_format = _model_format(output_model, self.config.structured_output)
        else:
            request_format = _NO_FORMAT
        key = self._key(body, request_format, template_version)
        cache = self.cache if use_cache else None
        if cache is not None and (hit := await cache.aget(key)) is not None:
            self.stats.add(calls=1, cache_hits=1)
            completion = _Completion(
                hit.content, hit.finish_reason, TokenUsage(hit.prompt_tokens, hit.completion_tokens)
            )
            return self._finish(completion, output_model, key, started, attempts=0, cached=True)
        if cache is None:
            return await self._ask(body, request_format, output_model, key, started, None, template_version)
        # An identical call already in flight (e.g. the A/B-swapped copy of a pair judged at the
        # same time): wait for its answer instead of sending the same request again.
        in_flight = (await self._state()).in_flight
        leader = in_flight.get(key)
        if leader is not None:
            shared: ChatResult | None = await asyncio.shield(leader)
            if shared is not None and shared.ok:  # else: ask for ourselves (errors are not shared)
                self.stats.add(calls=1, cache_hits=1)
                return replace(shared, cached=True, attempts=0, latency_s=time.monotonic() - started)
        future: asyncio.Future[ChatResult | None] = asyncio.get_running_loop().create_future()
        in_flight[key] = future
        result = None
        try:
            result = await self._ask(body, request_format, output_model, key, started, cache, template_version)
            return result
        finally:
            future.set_result(result)  # None when this call was cancelled or raised
            if in_flight.get(key) is future:
                del in_flight[key]

    async def _ask(
        self,
        body: dict[str, Any],
        request_format: Any,
        output_model: type[BaseModel] | None,
        key: str,
        started: float,
        cache: ResponseCache | None,
        template_version: str,
    ) -> ChatResult:
        """Send one request (with retries), parse it, and cache a good answer."""
        self.stats.add(calls=1, cache_misses=1)
        completion, attempts = await self._send_with_retries(body, request_format)
        if isinstance(completion, LLMError):
            return self._failed(completion, key, started)
        result = self._finish(completion, output_model, key, started, attempts=attempts, cached=False)
        if cache is not None and result.ok:
            await cache.aput(key, self._cache_entry(result, template_version))
        return result

    async def chat_many(
        self, conversations: Sequence[Sequence[ChatMessage | Mapping[str, Any]]], **options: Any
    ) -> list[ChatResult]:
        """`chat` for each conversation, concurrently (bounded by `max_concurrency`), in order."""
        return list(await asyncio.gather(*(self.chat(messages, **options) for messages in conversations)))

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves: a cheap health check. Raises `LLMError` (no retries)."""
        state = await self._state()
        try:
            page = await asyncio.wait_for(state.sdk.models.list(), self.config.timeout_s + DEADLINE_GRACE_S)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one redacted, typed error
            failure = self._classify(exc)
            raise LLMError(
                failure.reason, failure.message, status_code=failure.status_code, attempts=1
            ) from None
        return [model.id for model in page.data]

    # --- request building -------------------------------------------------------------------

    def _request_body(
        self,
        messages: list[dict[str, str]],
        temperature: float,
        max_tokens: int | None,
        top_p: float | None,
        seed: int | None,
        stop: str | Sequence[str] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens or self.config.default_max_tokens,
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

    @staticmethod
    def _key(body: Mapping[str, Any], request_format: _Format, template_version: str) -> str:
        """`cache.cache_key` of the request, with the format's canonical JSON made once per model."""
        sampling = {k: v for k, v in body.items() if k not in ("model", "messages")}
        return cache_key_from_json(
            model=body["model"],
            messages=body["messages"],
            sampling=sampling,
            response_format_json=request_format.key_json,
            output_schema_json=request_format.schema_key_json,
            template_version=template_version,
        )

    # --- sending ----------------------------------------------------------------------------

    async def _send_with_retries(
        self, body: dict[str, Any], request_format: _Format
    ) -> tuple[_Completion | LLMError, int]:
        payload = _wire_json(body, request_format)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send_once(body, payload), attempt
            except _AttemptFailed as failure:
                if failure.reason not in RETRYABLE_REASONS:
                    return self._error(failure, attempt), attempt
                if attempt > self.config.max_retries:
                    return self._error(failure, attempt, "; retries exhausted"), attempt
                wait = self._retry_wait(attempt, failure.retry_after)
                if wait is None:
                    detail = f"; server asked to wait {failure.retry_after:.0f}s, more than max_retry_after_s"
                    return self._error(failure, attempt, detail), attempt
                self.stats.add(retries=1)
                log.info(
                    "LLM %s (attempt %d): %s; retrying in %.2fs",
                    failure.reason,
                    attempt,
                    failure.message,
                    wait,
                )
                await asyncio.sleep(wait)

    def _error(self, failure: _AttemptFailed, attempts: int, detail: str = "") -> LLMError:
        return LLMError(
            failure.reason, failure.message + detail, status_code=failure.status_code, attempts=attempts
        )

    def _retry_wait(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds before retry number `attempt`; None when Retry-After is beyond what we accept."""
        if retry_after is not None:
            if retry_after > self.config.max_retry_after_s:
                return None
            # At least what the server asked, spread a little so a crowd does not return at once.
            return retry_after * self._random.uniform(1.0, 1.1)
        ceiling = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)  # "equal jitter"

    async def _send_once(self, body: dict[str, Any], payload: bytes) -> _Completion:
        if self._rpm is not None:
            await self._rpm.acquire(1)
        reserved = 0
        if self._tpm is not None:
            reserved = self._estimate_tokens(body)
            await self._tpm.acquire(reserved)
        state = await self._state()
        async with state.slots:
            self.stats.add(requests=1)
            try:
                reply = await _within(self.config.timeout_s + DEADLINE_GRACE_S, state.transport.post(payload))
            except Exception as exc:  # noqa: BLE001 - classified; CancelledError is not an Exception
                raise self._classify(exc) from None
        completion = self._completion(reply)
        if self._tpm is not None:
            self._tpm.refund(reserved - completion.usage.total_tokens)
        self.stats.add(
            prompt_tokens=completion.usage.prompt_tokens, completion_tokens=completion.usage.completion_tokens
        )
        return completion

    @staticmethod
    def _estimate_tokens(body: Mapping[str, Any]) -> int:
        prompt_chars = sum(len(m["content"]) for m in body["messages"])
        return prompt_chars // CHARS_PER_TOKEN + int(body["max_tokens"])

    def _classify(self, exc: Exception) -> _AttemptFailed:
        """Map whatever one attempt raised (aiohttp for chat, the SDK for `list_models`) to a reason
        and a redacted message."""
        root = _root_cause(exc)
        # The SDK's aiohttp adapter reports a refused connection as a connect *timeout*.
        refused = isinstance(root, OSError) and not isinstance(root, TimeoutError)
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError, openai.APITimeoutError)) and not refused:
            return _AttemptFailed("timeout", f"no complete response within {self.config.timeout_s:g}s")
        if isinstance(exc, (openai.APIConnectionError, aiohttp.ClientError, OSError)):
            return _AttemptFailed("connection", self._clean(f"{type(root).__name__}: {root}"))
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = exc.body.get("message") if isinstance(exc.body, dict) else None
            message = self._clean(f"HTTP {status}: {detail or exc.message}")
            return _AttemptFailed(
                _status_reason(status), message, status, parse_retry_after(exc.response.headers)
            )
        return _AttemptFailed("bad_response", self._clean(f"{type(exc).__name__}: {exc}"))

    def _clean(self, text: str) -> str:
        return redact(" ".join(str(text).split()), self._secrets)

    def _completion(self, reply: HTTPReply) -> _Completion:
        """The chat completion in a reply, or `_AttemptFailed` saying why there is none."""
        if reply.status >= 400:
            detail = self._clean(_error_detail(reply.body))[:MAX_ERROR_DETAIL_CHARS]
            retry_after = parse_retry_after(reply.headers)
            raise _AttemptFailed(
                _status_reason(reply.status), f"HTTP {reply.status}: {detail}", reply.status, retry_after
            )
        if not 200 <= reply.status < 300:
            raise _AttemptFailed(
                "bad_response", f"HTTP {reply.status} is not a chat completion", reply.status
            )
        try:
            data = json.loads(reply.body)
        except ValueError as exc:  # UnicodeDecodeError included
            text = reply.body.decode("utf-8", errors="replace")
            message = self._clean(f"the response is not JSON ({exc}): {text}")[:PREVIEW_CHARS]
            raise _AttemptFailed("bad_response", message) from None
        return _completion_from(data)

    # --- results ----------------------------------------------------------------------------

    def _finish(
        self,
        completion: _Completion,
        output_model: type[BaseModel] | None,
        key: str,
        started: float,
        *,
        attempts: int,
        cached: bool,
    ) -> ChatResult:
        parsed, error = self._check_content(completion, output_model, attempts)
        if error is not None:
            self.stats.add_failure(error.reason)
        return ChatResult(
            content=completion.content,
            parsed=parsed,
            error=error,
            cached=cached,
            usage=completion.usage,
            finish_reason=completion.finish_reason,
            attempts=attempts,
            cache_key=key,
            latency_s=time.monotonic() - started,
        )

    def _check_content(
        self, completion: _Completion, output_model: type[BaseModel] | None, attempts: int
    ) -> tuple[BaseModel | None, LLMError | None]:
        """The parsed output model (None without one), or the error the content holds."""
        if not completion.content or not completion.content.strip():
            hint = (
                " (finish_reason=length: max_tokens too small?)"
                if completion.finish_reason == "length"
                else ""
            )
            return None, LLMError("empty_content", f"the model returned no text{hint}", attempts=attempts)
        if output_model is None:
            return None, None
        try:
            return parse_model(completion.content, output_model), None
        except StructuredOutputError as exc:
            return None, LLMError("parse_error", self._clean(str(exc)), attempts=attempts)

    def _failed(self, error: LLMError, key: str, started: float) -> ChatResult:
        self.stats.add_failure(error.reason)
        log.warning("LLM call failed: %s", error)
        return ChatResult(
            content=None,
            error=error,
            attempts=error.attempts,
            cache_key=key,
            latency_s=time.monotonic() - started,
        )

    def _cache_entry(self, result: ChatResult, template_version: str) -> CachedResponse:
        return CachedResponse(
            content=result.content or "",
            finish_reason=result.finish_reason,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            model=self.config.model,
            template_version=template_version,
            created_at=time.time(),
        )


@dataclass(frozen=True)
class _Format:
    """A request's `response_format` (None: none is sent) in the spellings the wire and the key use."""

    wire_json: str | None  # as sent: compact, fields in the schema's own order (servers generate in it)
    key_json: str  # canonical JSON for the cache key ("null": none)
    schema_key_json: str  # canonical JSON of the output model's schema ("null": no model)


_NO_FORMAT = _Format(None, "null", "null")


# Request bodies as sent: compact, UTF-8 as is, no NaN (not JSON); one encoder for every call.
_WIRE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _compact_json(value: Any) -> str:
    try:
        return _WIRE.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the request cannot be sent as JSON: {exc}") from None


@functools.lru_cache(maxsize=SCHEMA_MEMO_SIZE)
def _model_format(output_model: type[BaseModel], mode: StructuredMode) -> _Format:
    """The format asking for `output_model` in `mode`: serialised once per model, not per call."""
    sent = cached_response_format(output_model, mode)
    return _Format(
        None if sent is None else _compact_json(sent), canonical_json(sent), _schema_key_json(output_model)
    )


@functools.lru_cache(maxsize=SCHEMA_MEMO_SIZE)
def _schema_key_json(output_model: type[BaseModel]) -> str:
    return canonical_json(cached_schema(output_model))


def _explicit_format(response_format: Mapping[str, Any], output_model: type[BaseModel] | None) -> _Format:
    """A caller's own `response_format`, sent as given (serialised per call: it may change)."""
    sent = dict(response_format)
    schema = "null" if output_model is None else _schema_key_json(output_model)
    return _Format(_compact_json(sent), canonical_json(sent), schema)


def _wire_json(body: Mapping[str, Any], request_format: _Format) -> bytes:
    """The request body as sent: `extra_body` fields merged at the top level, over ours (as the
    SDK does), and the response format's ready-made JSON spliced in unless `extra_body` set one."""
    wire = {name: value for name, value in body.items() if name != "extra_body"}
    wire.update(body.get("extra_body") or {})
    text = _compact_json(wire)
    if request_format.wire_json is not None and "response_format" not in wire:
        text = f'{text[:-1]},"response_format":{request_format.wire_json}}}'
    return text.encode("utf-8")


def _error_detail(body: bytes) -> str:
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


def _completion_from(data: Any) -> _Completion:
    """Content, finish reason and token counts of a chat completion's JSON, checked field by field."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise _AttemptFailed("bad_response", "the response has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _AttemptFailed("bad_response", "choices[0] has no message")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise _AttemptFailed(
            "bad_response", f"choices[0].message.content is {type(content).__name__}, not text"
        )
    finish_reason = choice.get("finish_reason")
    usage = data.get("usage")
    tokens = TokenUsage(_token_count(usage, "prompt_tokens"), _token_count(usage, "completion_tokens"))
    return _Completion(content, finish_reason if isinstance(finish_reason, str) else None, tokens)


def _token_count(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception behind the SDK's wrappers.

    Needed because the SDK's aiohttp adapter (used by `list_models`) reports a refused connection
    as a connect *timeout*; the OSError underneath says what really happened.
    """
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


def _status_reason(status: int) -> ErrorReason:
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status == 409 or status >= 500:
        return "server_error"
    if status in (401, 403):
        return "auth"
    return "client_error"


__all__ = ["ChatResult", "LLMClient", "TokenUsage", "normalise_messages", "parse_retry_after"]
