"""The response cache: keys, hits and misses over real HTTP, errors never stored, and one SQLite
file shared by several processes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from rm_rewards.llm import cache as cache_module
from rm_rewards.llm.cache import CachedResponse, ResponseCache, cache_key, cache_key_from_json, canonical_json
from rm_rewards.llm.client import LLMClient
from rm_rewards.llm.structured import response_format_for
from tests.conftest import CANARY_API_KEY
from tests.support.fake_openai import reply, status

REPO_ROOT = Path(__file__).resolve().parents[1]
BATCH = [f"question {i}" for i in range(12)]


class Score(BaseModel):
    score: int


def run_batch(client: LLMClient, texts: list[str], **options):
    async def go():
        async with client:
            return await client.chat_many([[{"role": "user", "content": t}] for t in texts], **options)

    return asyncio.run(go())


@pytest.fixture
def cache(tmp_path) -> ResponseCache:
    return ResponseCache(tmp_path / "llm_cache.sqlite")


# --- keys --------------------------------------------------------------------------------------

BASE_KEY = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "sampling": {"temperature": 0.0, "max_tokens": 64},
    "response_format": None,
    "template_version": "t1",
}


def test_cache_key_is_stable_and_ignores_dict_order_and_unsent_fields() -> None:
    key = cache_key(**BASE_KEY)
    assert len(key) == 64 and key == cache_key(**BASE_KEY)
    reordered = {**BASE_KEY, "sampling": {"max_tokens": 64, "top_p": None, "temperature": 0.0}}
    assert cache_key(**reordered) == key


@pytest.mark.parametrize(
    "change",
    [
        {"model": "m2"},
        {"messages": [{"role": "user", "content": "hi!"}]},
        {"messages": [{"role": "system", "content": "hi"}]},
        {"sampling": {"temperature": 0.7, "max_tokens": 64}},
        {"sampling": {"temperature": 0.0, "max_tokens": 65}},
        {"sampling": {"temperature": 0.0, "max_tokens": 64, "seed": 1}},
        {"response_format": {"type": "json_object"}},
        {"output_schema": {"type": "object"}},
        {"template_version": "t2"},
    ],
    ids=str,
)
def test_cache_key_changes_with_every_input(change: dict) -> None:
    assert cache_key(**{**BASE_KEY, **change}) != cache_key(**BASE_KEY)


def _key_as_first_written(**inputs) -> str:
    """The key recipe of KEY_SCHEMA_VERSION 1, spelled out: caches written with it must still hit."""
    payload = {
        "v": 1,
        "model": inputs["model"],
        "messages": [dict(m) for m in inputs["messages"]],
        "sampling": {k: v for k, v in sorted(inputs["sampling"].items()) if v is not None},
        "response_format": inputs["response_format"],
        "output_schema": inputs.get("output_schema"),
        "template_version": inputs.get("template_version", ""),
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {},
        {
            "messages": [
                {"role": "user", "content": 'ünïcode ✓ and "quotes"\n'},
                {"content": "x", "role": "b"},
            ]
        },
        {
            "sampling": {
                "temperature": 0.7,
                "max_tokens": 64,
                "stop": ["\n"],
                "top_p": None,
                "cache_prompt": True,
            }
        },
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"schema": {"b": 1, "a": [2, {"d": 0, "c": 1}]}},
            }
        },
        {"output_schema": {"properties": {"z": {}, "a": {}}, "type": "object"}, "template_version": ""},
    ],
    ids=str,
)
def test_cache_key_recipe_is_unchanged(change: dict) -> None:
    inputs = {**BASE_KEY, **change}
    assert cache_key(**inputs) == _key_as_first_written(**inputs)
    assert cache_key(**inputs) == cache_key_from_json(
        model=inputs["model"],
        messages=inputs["messages"],
        sampling=inputs["sampling"],
        response_format_json=canonical_json(inputs["response_format"]),
        output_schema_json=canonical_json(inputs.get("output_schema")),
        template_version=inputs["template_version"],
    )


# --- the store ---------------------------------------------------------------------------------


def test_store_round_trip_in_wal_mode(cache: ResponseCache) -> None:
    entry = CachedResponse("answer", "stop", 5, 2, model="m", template_version="t", created_at=1.0)
    assert cache.get("k") is None and "k" not in cache
    cache.put("k", entry)
    assert cache.get("k") == entry and "k" in cache and len(cache) == 1
    with sqlite3.connect(cache.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_survives_pickling_and_reopening(cache: ResponseCache) -> None:
    cache.put("k", CachedResponse("answer", "stop", 1, 1))
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get("k").content == "answer"
    cache.close()
    assert cache.get("k").content == "answer"  # reopens on use


def _entry(text: str = "answer") -> CachedResponse:
    return CachedResponse(text, "stop", 5, 2, model="m", template_version="t", created_at=1.0)


def test_async_get_and_put_run_on_the_loop_without_threads(cache, monkeypatch) -> None:
    def no_threads(*args, **kwargs):
        raise AssertionError("an uncontended cache call was handed to a thread")

    monkeypatch.setattr(cache_module.asyncio, "to_thread", no_threads)

    async def go():
        await cache.aput("k", _entry())
        return await cache.aget("k"), await cache.aget("missing")

    assert asyncio.run(go()) == (_entry(), None)
    assert cache.get("k") == _entry()  # the synchronous side sees it


def test_a_held_write_lock_sends_puts_to_a_thread_and_the_loop_keeps_running(cache) -> None:
    cache.put("old", _entry("old"))
    holder = sqlite3.connect(cache.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process mid-write: the write lock is taken
    holder.execute("INSERT INTO responses VALUES ('x', 'm', 't', 'x', NULL, 0, 0, 0)")
    release = threading.Timer(0.4, holder.execute, ("COMMIT",))

    async def go():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        read_under_lock = await cache.aget("old")  # WAL readers are not blocked by a writer
        release.start()
        started = time.monotonic()
        await cache.aput("new", _entry("new"))  # waits for the lock, in a worker thread
        waited = time.monotonic() - started
        ticking.cancel()
        return read_under_lock, waited, ticks

    read_under_lock, waited, ticks = asyncio.run(go())
    holder.close()
    assert read_under_lock == _entry("old")
    assert waited >= 0.3 and ticks >= 10  # the loop ran on while the put waited
    assert cache.get("new") == _entry("new") and "x" in cache


def test_inline_puts_checkpoint_the_wal_in_a_worker_thread(cache, monkeypatch) -> None:
    monkeypatch.setattr(cache_module, "CHECKPOINT_EVERY_PUTS", 4)
    checkpoints = []
    original = cache.checkpoint
    monkeypatch.setattr(cache, "checkpoint", lambda: checkpoints.append(threading.get_ident()) or original())

    async def go():
        for i in range(10):
            await cache.aput(f"k{i}", _entry())
        return threading.get_ident()

    loop_thread = asyncio.run(go())
    assert len(checkpoints) == 2 and loop_thread not in checkpoints
    assert len(cache) == 10


def test_connections_of_ended_threads_are_closed(cache) -> None:
    opened = []

    def one_lookup():
        cache.get("k")
        opened.append(cache._connection())

    for _ in range(4):  # one after another, as a fresh loop per batch in a fresh thread does
        worker = threading.Thread(target=one_lookup)
        worker.start()
        worker.join()
    assert len(cache._connections) == 2  # this thread's, and the last worker's
    for connection in opened[:-1]:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connection.execute("SELECT 1")
    assert opened[-1].execute("SELECT 1").fetchone() == (1,)


def test_bad_cache_path_fails_at_construction(tmp_path) -> None:
    (tmp_path / "a_file").write_text("x")
    with pytest.raises((OSError, sqlite3.Error)):
        ResponseCache(tmp_path / "a_file" / "cache.sqlite")


# --- through the client ------------------------------------------------------------------------


def test_rerun_of_an_identical_batch_makes_zero_http_calls(fake_openai, llm_config, cache) -> None:
    client = LLMClient(llm_config(fake_openai), cache)
    first = run_batch(client, BATCH)
    assert fake_openai.request_count == len(BATCH) and not any(r.cached for r in first)
    second = run_batch(LLMClient(llm_config(fake_openai), cache), BATCH)  # a fresh client, same file
    assert fake_openai.request_count == len(BATCH)
    assert all(r.cached and r.attempts == 0 for r in second)
    assert [r.content for r in second] == [r.content for r in first]
    assert [r.usage for r in second] == [r.usage for r in first]  # what the original call used
    stats = client.stats.snapshot()
    assert (stats.cache_hits, stats.cache_misses) == (0, len(BATCH))


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"max_tokens": 99},
        {"seed": 3},
        {"template_version": "v2"},
        {"output_model": Score},
        {"extra_body": {"top_k": 5}},
    ],
    ids=str,
)
def test_any_changed_parameter_is_a_miss(fake_openai, llm_config, cache, change) -> None:
    fake_openai.set_default(reply('{"score": 1}'))
    client = LLMClient(llm_config(fake_openai), cache)
    run_batch(client, ["same prompt"], template_version="v1")
    [result] = run_batch(client, ["same prompt"], **{"template_version": "v1", **change})
    assert not result.cached and fake_openai.request_count == 2
    [again] = run_batch(client, ["same prompt"], **{"template_version": "v1", **change})
    assert again.cached and fake_openai.request_count == 2


@pytest.mark.parametrize(
    "options",
    [{}, {"output_model": Score}, {"response_format": {"type": "json_object"}, "output_model": Score}],
    ids=str,
)
def test_the_client_keys_answers_by_the_documented_recipe(fake_openai, llm_config, cache, options) -> None:
    # Keys written before the client memoised its formats must still be found.
    fake_openai.set_default(reply('{"score": 1}'))
    [result] = run_batch(
        LLMClient(llm_config(fake_openai), cache), ["q"], template_version="t3", seed=5, **options
    )
    output_model = options.get("output_model")
    sent_format = options.get("response_format") or (response_format_for(Score) if output_model else None)
    assert result.cache_key == _key_as_first_written(
        model="fake-model",
        messages=[{"role": "user", "content": "q"}],
        sampling={"temperature": 0.0, "max_tokens": 1024, "seed": 5},
        response_format=sent_format,
        output_schema=Score.model_json_schema() if output_model else None,
        template_version="t3",
    )


def test_different_model_is_a_miss(fake_openai, llm_config, cache) -> None:
    run_batch(LLMClient(llm_config(fake_openai), cache), ["q"])
    [result] = run_batch(LLMClient(llm_config(fake_openai, model="other-model"), cache), ["q"])
    assert not result.cached and fake_openai.request_count == 2


def test_errors_are_never_cached(fake_openai, llm_config, cache) -> None:
    client = LLMClient(llm_config(fake_openai, max_retries=0), cache)
    fake_openai.enqueue(status(500), reply(""), status(400))
    failed = run_batch(client, ["a"]) + run_batch(client, ["b"]) + run_batch(client, ["c"])
    assert [r.error.reason for r in failed] == ["server_error", "empty_content", "client_error"]
    assert len(cache) == 0
    recovered = run_batch(client, ["a", "b", "c"])
    assert all(r.ok and not r.cached for r in recovered)
    assert fake_openai.request_count == 6 and len(cache) == 3


def test_use_cache_false_neither_reads_nor_writes(fake_openai, llm_config, cache) -> None:
    client = LLMClient(llm_config(fake_openai), cache)
    run_batch(client, ["q"])
    [fresh] = run_batch(client, ["q"], use_cache=False)
    [other] = run_batch(client, ["new"], use_cache=False)
    assert not fresh.cached and fake_openai.request_count == 3
    assert len(cache) == 1 and other.cache_key not in cache


def test_the_key_is_not_stored(fake_openai, llm_config, cache) -> None:
    run_batch(LLMClient(llm_config(fake_openai), cache), BATCH)
    cache.close()
    for path in cache.path.parent.iterdir():
        assert CANARY_API_KEY.encode() not in path.read_bytes()


# --- several processes -------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from rm_rewards.llm.cache import ResponseCache
    from rm_rewards.llm.client import LLMClient
    from rm_rewards.llm.config import LLMConfig

    base_url, cache_path, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = LLMClient(LLMConfig(base_url=base_url, model="fake-model"), ResponseCache(cache_path))

    async def go():
        async with client:
            return await client.chat_many([[{"role": "user", "content": t}] for t in texts])

    results = asyncio.run(go())
    print(json.dumps({"cached": [r.cached for r in results], "content": [r.content for r in results]}))
    """
)


def _child(server, cache: ResponseCache, texts: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-c", _CHILD, server.base_url, str(cache.path), json.dumps(texts)]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)


def _output(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return json.loads(out)


def test_cache_is_shared_across_processes(fake_openai, llm_config, cache) -> None:
    first = run_batch(LLMClient(llm_config(fake_openai), cache), BATCH)
    child = _output(_child(fake_openai, cache, BATCH))
    assert child["cached"] == [True] * len(BATCH)
    assert child["content"] == [r.content for r in first]
    assert fake_openai.request_count == len(BATCH)  # the child made no HTTP call


def test_processes_writing_at_once_lose_nothing(fake_openai, cache) -> None:
    batches = [[f"p{p} item {i}" for i in range(60)] for p in range(3)]
    children = [_child(fake_openai, cache, texts) for texts in batches]
    outputs = [_output(child) for child in children]
    assert all(not any(o["cached"]) for o in outputs)
    assert len(cache) == 180 and fake_openai.request_count == 180


def test_identical_concurrent_calls_share_one_request(fake_openai, llm_config, tmp_path) -> None:
    """The A/B-swapped copy of a pair asks the same prompts at the same moment: one request each."""
    import asyncio

    from rm_rewards.llm.cache import ResponseCache
    from rm_rewards.llm.client import LLMClient
    from tests.support.fake_openai import reply

    fake_openai.set_latency(0.2)
    fake_openai.set_default(reply("the answer"))
    client = LLMClient(llm_config(fake_openai), ResponseCache(tmp_path / "c.sqlite"))
    messages = [{"role": "user", "content": "same question"}]

    async def ask_three():
        return await asyncio.gather(*(client.chat(messages) for _ in range(3)),
                                    client.chat([{"role": "user", "content": "other"}]))

    results = asyncio.run(ask_three())
    assert [r.content for r in results] == ["the answer"] * 4
    assert fake_openai.request_count == 2
    assert sorted(r.cached for r in results[:3]) == [False, True, True]
    snapshot = client.stats.snapshot()
    assert (snapshot.calls, snapshot.requests, snapshot.cache_hits) == (4, 2, 2)


def test_a_failed_call_is_not_shared_with_identical_waiters(fake_openai, llm_config, tmp_path) -> None:
    import asyncio

    from rm_rewards.llm.cache import ResponseCache
    from rm_rewards.llm.client import LLMClient
    from tests.support.fake_openai import reply, status

    fake_openai.set_latency(0.1)
    fake_openai.enqueue(status(400), reply("second try works"))
    client = LLMClient(llm_config(fake_openai, max_retries=0), ResponseCache(tmp_path / "c.sqlite"))
    messages = [{"role": "user", "content": "q"}]

    async def ask_two():
        return await asyncio.gather(client.chat(messages), client.chat(messages))

    first, second = asyncio.run(ask_two())
    assert first.error is not None and second.content == "second try works"
    assert fake_openai.request_count == 2
