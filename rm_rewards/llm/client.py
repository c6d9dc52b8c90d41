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
read with `json.loads`; a 2xx body that is not a chat completion is a `bad_response` (retried when it
is not JSON at all: cut short or mangled on its way).

Where the steps live: request building, reply reading and failure classification in `wire`; the
retry and backoff decisions in `retry`; cache keys in `cache` (`request_key`); HTTP in `transport`.
This module holds the client: per-loop sessions, the order of the steps, the counters.

Event loops: HTTP sessions belong to the event loop that opened them, and `kinds.run_sync` runs
every batch on a fresh loop. The client therefore keeps one SDK client, one chat transport and
one concurrency semaphore per running loop, and closes them when the loop shuts down (see
`_close_when_loop_ends`). Rate limits, cache, usage counters and the TLS context are shared by
all loops.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import openai
from pydantic import BaseModel
from typing_extensions import Self

from rm_rewards.core.schema import ChatMessage
from rm_rewards.llm import retry, wire
from rm_rewards.llm.cache import CachedResponse, ResponseCache, request_key
from rm_rewards.llm.config import LLMConfig
from rm_rewards.llm.errors import LLMError
from rm_rewards.llm.ratelimit import TokenBucket
from rm_rewards.llm.retry import parse_retry_after
from rm_rewards.llm.transport import ChatTransport, sdk_client, sdk_ssl_context
from rm_rewards.llm.usage import UsageStats
from rm_rewards.llm.wire import Completion, TokenUsage, normalise_messages

log = logging.getLogger(__name__)

# The SDK's read timeout normally fires first and names the failure precisely; the outer guard is
# for servers that trickle bytes forever (each gap shorter than the read timeout).
DEADLINE_GRACE_S = 0.1
_T = TypeVar("_T")


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


def _cache_entry(result: ChatResult, model: str, template_version: str) -> CachedResponse:
    return CachedResponse(
        content=result.content or "",
        finish_reason=result.finish_reason,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        model=model,
        template_version=template_version,
        created_at=time.time(),
    )


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
        config, connections = self.config, max(100, self.config.max_concurrency)
        tls, timeout_s = self._tls(), config.timeout_s
        sdk = sdk_client(
            api_key=self._secrets[0], base_url=config.base_url, timeout_s=timeout_s, ssl_context=tls,
            max_connections=connections, max_keepalive=max(20, config.max_concurrency),
        )
        transport = ChatTransport(sdk, timeout_s=timeout_s, max_connections=connections, ssl_context=tls)
        slots = asyncio.Semaphore(config.max_concurrency)
        state = _LoopState(sdk, transport, slots, _close_when_loop_ends(sdk, transport))
        await anext(state.closer)  # park the closer at its yield: the loop now knows about it
        with self._states_lock:
            self._forget_closed_loops()
            winner = self._states.setdefault(loop, state)
        if winner is not state:  # another task of this loop got here first
            await state.closer.aclose()
        return winner

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # a race builds two equal contexts; either will do
            self._ssl_context = sdk_ssl_context()
        return self._ssl_context

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
        body = wire.request_body(
            self.config.model, normalise_messages(messages), temperature=temperature, max_tokens=max_tokens,
            default_max_tokens=self.config.default_max_tokens, top_p=top_p, seed=seed, stop=stop,
            extra_body=extra_body,
        )
        request_format = wire.request_format(response_format, output_model, self.config.structured_output)
        key = request_key(
            body, response_format_json=request_format.key_json,
            output_schema_json=request_format.schema_key_json, template_version=template_version,
        )
        cache = self.cache if use_cache else None
        if cache is not None and (hit := await cache.aget(key)) is not None:
            self.stats.add(calls=1, cache_hits=1)
            usage = TokenUsage(hit.prompt_tokens, hit.completion_tokens)
            completion = Completion(hit.content, hit.finish_reason, usage)
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
        request_format: wire.RequestFormat,
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
            self.stats.add_failure(completion.reason)
            log.warning("LLM call failed: %s", completion)
            return ChatResult(content=None, error=completion, attempts=completion.attempts, cache_key=key,
                              latency_s=time.monotonic() - started)
        result = self._finish(completion, output_model, key, started, attempts=attempts, cached=False)
        if cache is not None and result.ok:
            await cache.aput(key, _cache_entry(result, self.config.model, template_version))
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
            raise wire.classify_failure(exc, self.config.timeout_s, self._secrets).to_error(1) from None
        return [model.id for model in page.data]

    # --- sending ----------------------------------------------------------------------------

    async def _send_with_retries(
        self, body: dict[str, Any], request_format: wire.RequestFormat
    ) -> tuple[Completion | LLMError, int]:
        payload = wire.wire_json(body, request_format)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send_once(body, payload), attempt
            except wire.AttemptFailed as failure:
                wait = retry.decide(self.config, failure, attempt, self._random)
                if isinstance(wait, LLMError):
                    return wait, attempt
                self.stats.add(retries=1)
                reason, message = failure.reason, failure.message
                log.info("LLM %s (attempt %d): %s; retrying in %.2fs", reason, attempt, message, wait)
                await asyncio.sleep(wait)

    async def _send_once(self, body: dict[str, Any], payload: bytes) -> Completion:
        if self._rpm is not None:
            await self._rpm.acquire(1)
        reserved = 0
        if self._tpm is not None:
            reserved = wire.estimate_tokens(body)
            await self._tpm.acquire(reserved)
        state = await self._state()
        async with state.slots:
            self.stats.add(requests=1)
            try:
                reply = await _within(self.config.timeout_s + DEADLINE_GRACE_S, state.transport.post(payload))
            except Exception as exc:  # noqa: BLE001 - classified; CancelledError is not an Exception
                raise wire.classify_failure(exc, self.config.timeout_s, self._secrets) from None
        completion = wire.read_completion(reply, self._secrets)
        if self._tpm is not None:
            self._tpm.refund(reserved - completion.usage.total_tokens)
        self.stats.add(
            prompt_tokens=completion.usage.prompt_tokens, completion_tokens=completion.usage.completion_tokens
        )
        return completion

    def _finish(
        self,
        completion: Completion,
        output_model: type[BaseModel] | None,
        key: str,
        started: float,
        *,
        attempts: int,
        cached: bool,
    ) -> ChatResult:
        parsed, error = wire.check_content(completion, output_model, attempts, self._secrets)
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


__all__ = ["ChatResult", "LLMClient", "TokenUsage", "normalise_messages", "parse_retry_after"]
