"""The LLM client over real HTTP against the fake OpenAI server: faults, retries, deadlines,
concurrency and rate limits, usage counting, event loops, and the API key never leaking."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import logging
import pickle
import re
import time

import pytest

from rm_rewards.core.kinds import run_sync
from rm_rewards.core.schema import ChatMessage
from rm_rewards.llm import client as client_module
from rm_rewards.llm import retry, wire
from rm_rewards.llm.client import LLMClient, normalise_messages, parse_retry_after
from rm_rewards.llm.config import LLMConfig
from rm_rewards.llm.errors import LLMError
from rm_rewards.llm.ratelimit import TokenBucket
from rm_rewards.llm.transport import HTTPReply, env_proxy_for
from rm_rewards.llm.usage import UsageSnapshot, UsageStats
from tests.conftest import CANARY_API_KEY
from tests.support.fake_openai import (
    drop,
    echo_auth,
    garbage,
    hang,
    reply,
    status,
    trickle,
    truncated,
    wrong_shape,
)


def ask(client: LLMClient, text: str = "hello", **options):
    async def go():
        async with client:
            return await client.chat([{"role": "user", "content": text}], **options)

    return asyncio.run(go())


def offline_client(llm_config) -> LLMClient:
    """A client for reading replies handed to it directly (it never connects)."""
    return LLMClient(llm_config(type("Nowhere", (), {"base_url": "http://127.0.0.1:9/v1"})))


def ask_many(client: LLMClient, texts: list[str], **options):
    async def go():
        async with client:
            return await client.chat_many([[{"role": "user", "content": t}] for t in texts], **options)

    return asyncio.run(go())


# --- the happy path ----------------------------------------------------------------------------


def test_chat_sends_the_request_and_returns_the_answer(fake_openai, llm_config) -> None:
    fake_openai.enqueue(reply("fine, thanks", prompt_tokens=11, completion_tokens=3))
    client = LLMClient(llm_config(fake_openai))
    result = ask(client, "how are you?", temperature=0.2, max_tokens=50, top_p=0.9, seed=7, stop=["\n\n"])
    assert result.ok and result.content == "fine, thanks" and not result.cached
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.attempts) == (11, 3, 1)
    [request] = fake_openai.requests
    body = request["body"]
    assert body["model"] == "fake-model"
    assert body["messages"] == [{"role": "user", "content": "how are you?"}]
    assert (body["temperature"], body["max_tokens"], body["top_p"], body["seed"], body["stop"]) == (
        0.2,
        50,
        0.9,
        7,
        ["\n\n"],
    )
    assert request["headers"]["Authorization"] == f"Bearer {CANARY_API_KEY}"
    stats = client.stats.snapshot()
    assert (stats.calls, stats.requests, stats.retries, stats.failures) == (1, 1, 0, 0)
    assert (stats.prompt_tokens, stats.completion_tokens) == (11, 3)


def test_extra_body_fields_are_sent(fake_openai, llm_config) -> None:
    ask(LLMClient(llm_config(fake_openai)), extra_body={"cache_prompt": True, "top_k": 20})
    body = fake_openai.bodies[0]
    assert body["cache_prompt"] is True and body["top_k"] == 20 and "extra_body" not in body


def test_chat_goes_out_with_the_sdk_clients_url_and_headers(fake_openai, llm_config) -> None:
    ask(LLMClient(llm_config(fake_openai)), "héllo ✓")
    [request] = fake_openai.requests
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["user-agent"].startswith("AsyncOpenAI/Python")  # the SDK client's own headers
    assert headers["content-type"] == "application/json"
    assert "openai-organization" not in headers  # the SDK leaves it out when unset: so do we
    assert request["body"]["messages"][0]["content"] == "héllo ✓"


def test_a_body_that_is_not_json_is_refused_before_sending(fake_openai, llm_config) -> None:
    with pytest.raises(ValueError, match="cannot be sent as JSON"):
        ask(LLMClient(llm_config(fake_openai)), extra_body={"top_k": float("nan")})
    assert fake_openai.request_count == 0


def test_chat_many_keeps_order(fake_openai, llm_config) -> None:
    texts = [f"item {i}" for i in range(20)]
    results = ask_many(LLMClient(llm_config(fake_openai)), texts)
    assert [r.content for r in results] == [f"echo: {t}" for t in texts]


def test_messages_accept_chat_messages_and_name_bad_entries() -> None:
    assert normalise_messages([ChatMessage(role="system", content="be brief")]) == [
        {"role": "system", "content": "be brief"}
    ]
    with pytest.raises(TypeError, match=r"messages\[1\]\.content: expected a string, got int"):
        normalise_messages([{"role": "user", "content": "a"}, {"role": "user", "content": 3}])
    with pytest.raises(TypeError, match=r"messages\[0\]\.role: expected a string, got nothing"):
        normalise_messages([{"content": "a"}])
    with pytest.raises(ValueError, match="empty"):
        normalise_messages([])
    with pytest.raises(TypeError, match="list of chat messages"):
        normalise_messages("hello")


def test_list_models_is_a_health_check(fake_openai, llm_config) -> None:
    async def go():
        async with LLMClient(llm_config(fake_openai)) as client:
            return await client.list_models()

    assert asyncio.run(go()) == ["fake-model"]
    assert fake_openai.models_requests == 1


# --- faults: retried and recovered ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fault", [status(500), status(502), status(503), status(409), drop(), status(429), garbage(), truncated()],
    ids=str,
)
def test_transient_fault_is_retried_and_recovered(fake_openai, llm_config, fault) -> None:
    fake_openai.enqueue(fault, reply("recovered"))
    client = LLMClient(llm_config(fake_openai))
    result = ask(client)
    assert result.ok and result.content == "recovered" and result.attempts == 2
    assert fake_openai.request_count == 2
    stats = client.stats.snapshot()
    assert (stats.requests, stats.retries, stats.failures) == (2, 1, 0)


def test_retry_after_is_honoured(fake_openai, llm_config) -> None:
    fake_openai.enqueue(status(429, retry_after=0.4), reply("ok"))
    client = LLMClient(llm_config(fake_openai, backoff_base_s=0.001, backoff_max_s=0.001))
    result = ask(client)
    first, second = fake_openai.requests
    # Our own backoff is 1 ms here: only the header explains a wait this long.
    assert 0.4 <= second["at"] - first["at"] < 1.5
    assert result.ok and result.attempts == 2


def test_retry_after_beyond_the_cap_ends_the_call(fake_openai, llm_config) -> None:
    fake_openai.enqueue(status(429, retry_after=60))
    started = time.monotonic()
    result = ask(LLMClient(llm_config(fake_openai, max_retry_after_s=5)))
    assert time.monotonic() - started < 2
    assert result.error.reason == "rate_limited" and "60s" in result.error.message
    assert fake_openai.request_count == 1


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= parse_retry_after({"retry-after": in_ten}) <= 10.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-3"}) is None
    assert parse_retry_after({}) is None


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling(fake_openai, llm_config) -> None:
    client = LLMClient(llm_config(fake_openai, backoff_base_s=0.1, backoff_max_s=0.5))
    for attempt, (low, high) in {1: (0.05, 0.1), 2: (0.1, 0.2), 3: (0.2, 0.4), 6: (0.25, 0.5)}.items():
        waits = [retry.retry_wait(client.config, attempt, None, client._random) for _ in range(200)]
        assert all(low <= w <= high for w in waits)
        assert len(set(waits)) > 100  # jittered, not a fixed schedule


# --- faults: turned into errors ----------------------------------------------------------------


def test_a_body_that_is_never_json_ends_as_a_bad_response_after_the_retries(fake_openai, llm_config) -> None:
    fake_openai.set_default(garbage())
    result = ask(LLMClient(llm_config(fake_openai, max_retries=2)))
    assert (result.error.reason, result.error.status_code, result.error.attempts) == ("bad_response", 200, 3)
    assert "not JSON" in result.error.message and "retries exhausted" in result.error.message
    assert fake_openai.request_count == 3


def test_persistent_server_error_becomes_an_error_after_max_retries(fake_openai, llm_config) -> None:
    fake_openai.set_default(status(500))
    client = LLMClient(llm_config(fake_openai, max_retries=2))
    result = ask(client)
    assert result.content is None and result.parsed is None
    assert (result.error.reason, result.error.status_code, result.error.attempts) == ("server_error", 500, 3)
    assert fake_openai.request_count == 3
    stats = client.stats.snapshot()
    assert (stats.requests, stats.retries, stats.failures, stats.failures_by_reason) == (
        3,
        2,
        1,
        {"server_error": 1},
    )
    with pytest.raises(LLMError, match="server_error"):
        result.raise_for_error()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (status(400), "client_error"),
        (status(404), "client_error"),
        (status(401), "auth"),
        (status(403), "auth"),
        (wrong_shape(0), "bad_response"),
        (wrong_shape(3), "bad_response"),
        (reply(""), "empty_content"),
        (reply("   \n"), "empty_content"),
        (reply(None), "empty_content"),
    ],
    ids=str,
)
def test_permanent_fault_is_not_retried(fake_openai, llm_config, fault, reason) -> None:
    fake_openai.enqueue(fault)
    client = LLMClient(llm_config(fake_openai))
    result = ask(client)
    assert result.error is not None and result.error.reason == reason
    assert fake_openai.request_count == 1
    assert client.stats.snapshot().failures_by_reason == {reason: 1}


def test_empty_content_cut_by_max_tokens_says_so(fake_openai, llm_config) -> None:
    fake_openai.enqueue(reply("", finish_reason="length"))
    result = ask(LLMClient(llm_config(fake_openai)))
    assert result.error.reason == "empty_content" and "max_tokens" in result.error.message


def test_timeout_fires_when_the_server_sleeps(fake_openai, llm_config) -> None:
    fake_openai.enqueue(hang(5.0))
    started = time.monotonic()
    result = ask(LLMClient(llm_config(fake_openai, timeout_s=0.3, max_retries=0)))
    assert time.monotonic() - started < 1.5
    assert result.error.reason == "timeout"


def test_deadline_fires_when_the_server_trickles_bytes(fake_openai, llm_config) -> None:
    # A byte every 50 ms keeps any read timeout happy; only the whole-request deadline stops it.
    fake_openai.enqueue(trickle(5.0, interval_s=0.05))
    started = time.monotonic()
    result = ask(LLMClient(llm_config(fake_openai, timeout_s=0.3, max_retries=0)))
    assert time.monotonic() - started < 1.5
    assert result.error.reason == "timeout"


def test_timed_out_attempt_is_retried(fake_openai, llm_config) -> None:
    fake_openai.enqueue(hang(3.0), reply("second time lucky"))
    result = ask(LLMClient(llm_config(fake_openai, timeout_s=0.3, max_retries=1)))
    assert result.ok and result.content == "second time lucky" and result.attempts == 2


def test_dropped_connections_exhaust_retries_as_connection_error(fake_openai, llm_config) -> None:
    fake_openai.set_default(drop())
    result = ask(LLMClient(llm_config(fake_openai, max_retries=1)))
    assert result.error.reason == "connection" and result.error.attempts == 2


def test_unreachable_server_is_a_connection_error(llm_config) -> None:
    class Nowhere:  # a port nobody listens on: bind one, then release it
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        sock.close()

    result = ask(LLMClient(llm_config(Nowhere, max_retries=1)))
    assert result.error.reason == "connection" and result.error.attempts == 2


def test_a_failure_is_named_by_its_network_error_not_by_an_unrelated_one_being_handled() -> None:
    import aiohttp

    def raised_while_handling(unrelated: BaseException, error: BaseException) -> BaseException:
        try:
            try:
                raise unrelated
            except type(unrelated):
                raise error  # implicit chaining: error.__context__ is the unrelated exception
        except type(error) as caught:
            return caught

    dropped = raised_while_handling(RuntimeError("no running event loop"),
                                    aiohttp.ServerDisconnectedError("Server disconnected"))
    failure = wire.classify_failure(dropped, 2.0, ())
    assert failure.reason == "connection" and failure.message == "ServerDisconnectedError: Server disconnected"

    refused = ConnectionRefusedError(111, "Connect call failed")
    try:
        raise aiohttp.ClientOSError(111, "Cannot connect") from refused
    except aiohttp.ClientOSError as wrapped:
        assert wire.root_cause(wrapped) is refused


def test_environment_proxy_is_used_unless_no_proxy_names_the_host(
    fake_openai, llm_config, monkeypatch
) -> None:
    import socket

    with socket.socket() as sock:  # a proxy port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    through_proxy = ask(LLMClient(llm_config(fake_openai, max_retries=0)))
    assert through_proxy.error.reason == "connection" and fake_openai.request_count == 0
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert ask(LLMClient(llm_config(fake_openai))).ok and fake_openai.request_count == 1


def test_env_proxy_for_reads_the_scheme_then_all_proxy(monkeypatch) -> None:
    import yarl

    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "proxy.internal:3128")
    assert (
        env_proxy_for(yarl.URL("https://api.example.com/v1/chat/completions")) == "http://proxy.internal:3128"
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://tls-proxy:8443")
    assert env_proxy_for(yarl.URL("https://api.example.com/v1")) == "http://tls-proxy:8443"
    monkeypatch.setenv("NO_PROXY", ".example.com")
    assert env_proxy_for(yarl.URL("https://api.example.com/v1")) is None


@pytest.mark.parametrize(
    ("reply_", "message"),
    [
        (HTTPReply(200, {}, b'{"choices": []}'), "no choices"),
        (HTTPReply(200, {}, b'{"object": "error"}'), "no choices"),
        (HTTPReply(200, {}, b'{"choices": [{"text": "completion API"}]}'), "choices[0] has no message"),
        (HTTPReply(200, {}, b'{"choices": [{"message": {"content": ["a", "b"]}}]}'), "content is list"),
        (HTTPReply(200, {}, b"\xff\xfe not utf-8"), "not JSON"),
        (HTTPReply(204, {}, b""), "not JSON"),
        (HTTPReply(302, {"location": "/elsewhere"}, b""), "HTTP 302 is not a chat completion"),
    ],
    ids=str,
)
def test_a_2xx_that_is_not_a_chat_completion_is_a_bad_response(llm_config, reply_, message) -> None:
    client = offline_client(llm_config)
    with pytest.raises(wire.AttemptFailed, match=re.escape(message)) as caught:
        wire.read_completion(reply_, client._secrets)
    assert caught.value.reason == "bad_response"


def test_odd_usage_and_finish_fields_read_as_unknown(llm_config) -> None:
    client = offline_client(llm_config)
    body = (
        b'{"choices": [{"message": {"content": "hi"}, "finish_reason": 3}], "usage": {"prompt_tokens": "7"}}'
    )
    completion = wire.read_completion(HTTPReply(200, {}, body), client._secrets)
    assert (completion.content, completion.finish_reason, completion.usage.total_tokens) == ("hi", None, 0)


@pytest.mark.parametrize("padding", [0, 190, 380, 395, 5000])
def test_error_text_is_redacted_before_it_is_cut(llm_config, padding) -> None:
    # A non-JSON error page quoting the key at every offset around the cuts: no piece may survive.
    client = offline_client(llm_config)
    page = ("x" * padding + f" Authorization: Bearer {CANARY_API_KEY} " + "y" * 600).encode()
    for status_code, body in ((502, page), (200, b"<html>" + page)):
        with pytest.raises(wire.AttemptFailed) as caught:
            wire.read_completion(HTTPReply(status_code, {}, body), client._secrets)
        assert CANARY_API_KEY[:8] not in caught.value.message
        assert len(caught.value.message) < 500


def test_error_detail_prefers_openais_message_then_the_text() -> None:
    assert wire.error_detail(b'{"error": {"message": "model not loaded"}}') == "model not loaded"
    assert wire.error_detail(b'{"error": "overloaded"}') == "overloaded"
    assert wire.error_detail(b"<html>Bad gateway</html>") == "<html>Bad gateway</html>"
    assert wire.error_detail(b"") == "(no body)"


def test_tls_context_is_built_once_per_client(fake_openai, llm_config, monkeypatch) -> None:
    built = []
    original = client_module.sdk_ssl_context
    monkeypatch.setattr(client_module, "sdk_ssl_context", lambda: built.append(1) or original())
    client = LLMClient(llm_config(fake_openai))
    assert ask(client).ok and ask(client).ok  # two event loops, two sessions
    assert built == [1]


def test_one_failing_item_does_not_spoil_the_batch(fake_openai, llm_config) -> None:
    fake_openai.add_rule("poison", status(400))
    results = ask_many(LLMClient(llm_config(fake_openai)), ["a", "poison pill", "c"])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error.reason == "client_error"


# --- concurrency and rate limits ---------------------------------------------------------------


@pytest.mark.parametrize("limit", [4, 16])
def test_concurrency_limit_is_respected(fake_openai, llm_config, limit) -> None:
    fake_openai.set_latency(0.1)
    ask_many(LLMClient(llm_config(fake_openai, max_concurrency=limit)), [f"q{i}" for i in range(3 * limit)])
    # Never above the limit, and the limit is really reached (the observation can tell).
    assert limit // 2 < fake_openai.max_in_flight <= limit


def test_hundreds_of_requests_in_flight(fake_openai_process, llm_config) -> None:
    fake_openai_process.set_latency(0.5)
    client = LLMClient(llm_config(fake_openai_process, max_concurrency=400, timeout_s=10))
    started = time.monotonic()
    results = ask_many(client, [f"q{i}" for i in range(300)])
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert fake_openai_process.max_in_flight >= 200
    assert elapsed < 4.0  # serially this would take 150 s


def test_requests_per_minute_limit_paces_requests(fake_openai, llm_config) -> None:
    # 600/min = 10/s with a burst of 10: 25 requests need at least 1.5 s.
    client = LLMClient(llm_config(fake_openai, requests_per_minute=600))
    started = time.monotonic()
    assert all(r.ok for r in ask_many(client, [f"q{i}" for i in range(25)]))
    assert 1.4 <= time.monotonic() - started < 4.0
    arrivals = sorted(r["at"] for r in fake_openai.requests)
    assert arrivals[-1] - arrivals[0] >= 1.3
    # No 0.5 s window holds more than the burst plus half a second's refill (+ scheduling slack).
    assert max(sum(1 for t in arrivals if start <= t < start + 0.5) for start in arrivals) <= 10 + 5 + 4


def test_tokens_per_minute_limit_waits_and_refunds_the_overestimate(fake_openai, llm_config) -> None:
    # 60,000/min = 1,000 tokens/s, burst 1,000. Each call reserves ~1,500 (max_tokens) and uses
    # ~5, so each waits ~0.5 s for its reservation and then gets the unused ~1,495 back.
    client = LLMClient(llm_config(fake_openai, tokens_per_minute=60_000))

    async def two_calls():
        async with client:
            for text in ("first", "second"):
                await client.chat([{"role": "user", "content": text}], max_tokens=1500)

    started = time.monotonic()
    asyncio.run(two_calls())
    assert time.monotonic() - started >= 0.9
    assert client._tpm is not None and client._tpm.level > 900  # refunded; else it would be ~ -500


def test_token_bucket_reserves_in_arrival_order() -> None:
    now = [0.0]
    bucket = TokenBucket(60, burst=2, clock=lambda: now[0])  # 1 unit/s
    assert [bucket.reserve(1) for _ in range(4)] == [0.0, 0.0, 1.0, 2.0]
    now[0] = 10.0
    assert bucket.level == 2.0  # refills, but never beyond the burst
    assert bucket.reserve(5) == 3.0  # larger than the bucket: allowed, just waits longer
    bucket.refund(5)
    assert bucket.level == 2.0
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_token_bucket_cancelled_wait_gives_units_back() -> None:
    bucket = TokenBucket(60, burst=1)

    async def go():
        bucket.reserve(1)
        waiter = asyncio.ensure_future(bucket.acquire(1))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(go())
    assert -0.1 < bucket.level < 0.2


# --- usage accounting --------------------------------------------------------------------------


def test_usage_snapshots_subtract_and_reset(fake_openai, llm_config) -> None:
    client = LLMClient(llm_config(fake_openai))
    ask(client, "one")
    before = client.stats.snapshot()
    fake_openai.enqueue(status(500), reply("two"), status(400))
    ask_many(client, ["two", "three"])
    delta = client.stats.snapshot() - before
    assert (delta.calls, delta.requests, delta.retries, delta.failures) == (2, 3, 1, 1)
    assert delta.failures_by_reason == {"client_error": 1}
    metadata = delta.as_metadata()
    assert metadata["llm_calls"] == 2 and metadata["llm_failures_client_error"] == 1
    assert client.stats.reset().calls == 3
    assert client.stats.snapshot() == UsageSnapshot()


def test_usage_stats_reject_unknown_counters() -> None:
    with pytest.raises(ValueError, match="unknown usage counters"):
        UsageStats().add(callz=1)


# --- event loops -------------------------------------------------------------------------------


def test_one_client_serves_several_event_loops_and_closes_their_sessions(
    fake_openai, llm_config, caplog
) -> None:
    clients = [LLMClient(llm_config(fake_openai))]

    async def one(text):
        return await clients[0].chat([{"role": "user", "content": text}])

    caplog.set_level(logging.ERROR, logger="asyncio")
    assert asyncio.run(one("first loop")).ok  # no `async with`: the loop's end must close it
    assert asyncio.run(one("second loop")).ok

    async def inside_a_running_loop():
        return run_sync(lambda: one("worker-thread loop"))  # what kinds.evaluate_batch does

    assert asyncio.run(inside_a_running_loop()).ok
    assert fake_openai.request_count == 3
    assert len(clients[0]._states) == 1  # ended loops are forgotten, not hoarded
    clients.clear()
    gc.collect()  # an unclosed aiohttp session complains when it is collected
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


# --- the key never leaks -----------------------------------------------------------------------


def test_api_key_never_appears_in_repr_logs_errors_or_stats(fake_openai, llm_config, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    config = llm_config(fake_openai, max_retries=1)
    client = LLMClient(config)
    # A hostile server that echoes the Authorization header in its error body, plus retries and a
    # connection failure: every path that formats an error or a log line.
    fake_openai.enqueue(echo_auth(401), status(500), status(500), drop(), reply("ok"))
    results = ask_many(client, ["a"]) + ask_many(client, ["b"]) + ask_many(client, ["c"])
    assert CANARY_API_KEY in fake_openai.requests[0]["headers"]["Authorization"]  # the key was used
    assert [r.error.reason if r.error else None for r in results] == ["auth", "server_error", None]
    assert "[REDACTED]" in results[0].error.message

    exposed = [repr(config), str(config), config.model_dump_json(), str(config.model_dump()), repr(client)]
    for result in results:
        exposed += [repr(result), str(result.error)]
        if result.error:
            exposed.append(repr(pickle.loads(pickle.dumps(result.error))))
            with pytest.raises(LLMError) as caught:
                result.raise_for_error()
            exposed.append("".join(__import__("traceback").format_exception(caught.value)))
    exposed.append(client.stats.snapshot().model_dump_json())
    exposed += [record.getMessage() for record in caplog.records]
    exposed += [record.exc_text or "" for record in caplog.records]
    assert len(caplog.records) > 3  # the log was really captured
    for text in exposed:
        assert CANARY_API_KEY not in text


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="base_url"):
        LLMConfig(base_url="127.0.0.1:8080/v1", model="m")
    with pytest.raises(ValueError, match="max_concurrency"):
        LLMConfig(base_url="http://x/v1", model="m", max_concurrency=0)
    with pytest.raises(ValueError, match="tokens_per_minute"):
        LLMConfig(base_url="http://x/v1", model="m", tokens_per_minute=-5)
