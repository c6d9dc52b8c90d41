"""Secrets: the API key is used, and appears nowhere else.

A canary key goes in `RMFORGE_LLM_API_KEY` only. A real chain runs on it: `rmforge run` (data,
rule scores, principles, LLM scores, refinements, training pairs on the bundled helpsteer2
partition) in a subprocess, against the fake OpenAI-compatible server on loopback, which refuses
any request that does not carry the key, and which answers every pointwise judge call with a
hostile 401 that echoes the request's Authorization header back (so failures, and their
messages, are made from text that held the key). Then every place the key could leak to is
searched: the run's stdout/stderr; the Dagster instance (event logs, run config, run tags,
materialization metadata); every text column of every DuckDB table; the response cache; every
file under the data folder and DAGSTER_HOME; `rmforge audit`'s output; and the str, repr,
traceback and pickle of an auth failure's error.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from rm_resources.store import TABLES, Store
from tests.conftest import CANARY_API_KEY
from tests.support.fake_openai import echo_auth, reply

ROOT = Path(__file__).resolve().parents[2]
# What a leak would look like: the whole key, or enough of it to use (its distinctive middle).
NEEDLES = (CANARY_API_KEY, CANARY_API_KEY[3:-5])


def _schema_properties(body: dict[str, Any]) -> dict[str, Any]:
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema") or {}
    return schema.get("properties", {})


def hostile_model(body: dict[str, Any]) -> Any:
    """Answers principles and pairwise judgements; every pointwise grade is a 401 echoing the key."""
    properties = _schema_properties(body)
    if "principles" in properties:
        return reply(json.dumps({"principles": ["Answer the question that was asked.", "Be accurate."]}))
    if "winner" in properties:
        return reply(json.dumps({"critique": "A is to the point.", "winner": "A"}))
    if "score" in properties:
        return echo_auth(401)
    return reply("A clearer answer.")  # a refinement rewrite


def _leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def _files_holding_the_key(*folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and any(needle.encode() in path.read_bytes() for needle in NEEDLES):
                found.append(str(path))
    return found


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """`rmforge run` on helpsteer2 with the canary key; returns (root, console, server records)."""
    from tests.support.fake_openai import ThreadedFakeOpenAI

    root = tmp_path_factory.mktemp("secrets")
    with ThreadedFakeOpenAI() as server:
        server.require_api_key(CANARY_API_KEY)
        server.set_responder(hostile_model)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RMFORGE_", "DAGSTER_"))},
            "DAGSTER_HOME": str(root / "home"),
            "RMFORGE_DATA_DIR": str(root / "data"),
            "RMFORGE_PROFILE": "production",  # endpoints from the environment, the key included
            "RMFORGE_DATASET_MODE": "bundled",
            "RMFORGE_LLM_BASE_URL": server.base_url,
            "RMFORGE_LLM_MODEL": "fake-model",
            "RMFORGE_LLM_API_KEY": CANARY_API_KEY,
        }
        run = subprocess.run(
            [sys.executable, "-m", "dagster_project.cli", "run", "--partition", "helpsteer2",
             "--skip-training", "--skip-benchmarks"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=500,
        )
        records = server.requests
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-4000:]
    return root, console, records


def test_the_key_is_sent_and_required(chain):
    _root, _console, records = chain
    assert len(records) > 10
    # Every request carried the key (the server answers 401 "auth" to any that does not).
    assert {r["headers"].get("Authorization") for r in records} == {f"Bearer {CANARY_API_KEY}"}
    assert not [r for r in records if r["fault"] == "auth"]


def test_no_leak_in_the_console_or_the_files_on_disk(chain):
    root, console, _records = chain
    assert _leaks(console) == []
    assert (root / "data" / "rmforge.duckdb").exists() and list((root / "home").rglob("*.db"))
    assert _files_holding_the_key(root / "data", root / "home") == []


def test_no_leak_in_the_dagster_instance(chain, monkeypatch):
    root, _console, _records = chain
    monkeypatch.setenv("DAGSTER_HOME", str(root / "home"))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert runs
        for run in runs:
            assert _leaks(json.dumps(run.run_config, default=str)) == [], run.run_id
            assert _leaks(json.dumps(run.tags, default=str)) == [], run.run_id
            events = instance.all_logs(run.run_id)
            assert events
            assert _leaks("\n".join(repr(event) for event in events)) == [], run.run_id
        materializations = [
            record
            for key in instance.get_asset_keys()
            for record in instance.fetch_materializations(key, limit=100).records
        ]
        assert {"llm_scores", "refined_samples", "auto_principles"} <= {
            r.asset_key.to_user_string() for r in materializations
        }
        assert _leaks("\n".join(repr(r.event_log_entry) for r in materializations)) == []


def test_no_leak_in_any_duckdb_table_and_the_failures_are_recorded(chain):
    root, _console, _records = chain
    store = Store(str(root / "data" / "rmforge.duckdb"))
    for table in TABLES:
        frame = store._query(f'SELECT * FROM "{table}"')
        assert _leaks(frame.to_json(default_handler=str)) == [], table
    scores = store.read_partition("llm_scores", "helpsteer2")
    errors = [e for cell in scores["response_errors"] for e in cell if e]
    # The hostile 401s are recorded, as auth failures, without the key they echoed.
    assert errors and all("auth" in e for e in errors), errors[:3]
    assert any("[REDACTED]" in e for e in errors), errors[:3]


def test_no_leak_in_the_response_cache(chain):
    root, _console, _records = chain
    caches = list((root / "data").glob("llm_cache.sqlite*"))
    assert caches
    with sqlite3.connect(root / "data" / "llm_cache.sqlite") as connection:
        tables = [t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [row for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')]
    assert rows  # the good answers were cached
    assert _leaks(repr(rows)) == []


def test_no_leak_in_the_audit(chain, monkeypatch, capsys):
    from dagster_project.cli import main

    root, _console, _records = chain
    monkeypatch.setenv("DAGSTER_HOME", str(root / "home"))
    monkeypatch.setenv("RMFORGE_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("RMFORGE_LLM_API_KEY", CANARY_API_KEY)
    for target in (["llm_scores", "helpsteer2"], ["refined_samples", "helpsteer2"], ["training_pairs", "helpsteer2"]):
        assert main(["audit", *target, "--all"]) in (0, 1)
        captured = capsys.readouterr()
        assert "helpsteer2" in captured.out
        assert _leaks(captured.out + captured.err) == [], target


def test_an_auth_failure_never_carries_the_key(fake_openai, llm_config):
    from rm_rewards.llm.client import LLMClient

    fake_openai.set_default(echo_auth(401))
    client = LLMClient(llm_config(fake_openai))
    result = asyncio.run(client.chat([{"role": "user", "content": "hello"}]))
    assert fake_openai.requests[0]["headers"]["Authorization"] == f"Bearer {CANARY_API_KEY}"
    assert result.error is not None and result.error.reason == "auth"
    with pytest.raises(Exception) as raised:
        result.raise_for_error()
    error = raised.value
    texts = [str(error), repr(error), "".join(traceback.format_exception(error)), str(pickle.loads(pickle.dumps(error))),
             repr(result), repr(client), repr(client.config), client.config.model_dump_json(), str(error.args)]
    assert "you sent Bearer" in str(error)  # the hostile body is there, the key is not
    assert [_leaks(text) for text in texts] == [[]] * len(texts)


def test_the_searches_find_a_planted_key(tmp_path):
    """The control: each search above reports a key where there is one."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "blob.bin").write_bytes(b"\x00prefix " + CANARY_API_KEY[3:-5].encode() + b" suffix")
    assert _files_holding_the_key(tmp_path) == [str(tmp_path / "sub" / "blob.bin")]
    assert _leaks(f"Authorization: Bearer {CANARY_API_KEY}") == list(NEEDLES)
