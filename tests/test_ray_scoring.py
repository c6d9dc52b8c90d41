"""Scoring on Ray: the same score tables as in process, limits that hold inside Ray workers, and an
LLM key that reaches the endpoint from the workers without travelling in task arguments.

One local Ray for the module (2 CPUs, no dashboard, a capped object store), started with the
canary key in its environment as a step process would have it (dg.EnvVar reads it from there);
its workers inherit it. The fake OpenAI server runs in this process and the workers reach it over
loopback HTTP. ~60 s on 2 free cores, most of it Ray and its workers starting (each worker imports
rm_rewards; math_verify spawns its own pool inside each worker).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import dagster as dg
import pytest

from rm_assets.data.assets import converted_samples, raw_rows, rule_scores
from rm_assets.judging.assets import llm_scores
from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.ray_scoring import (
    API_KEY_ENV,
    RayScoring,
    _judge_batch,
    judge,
    run_in_order,
    score_rules,
    worker_llm_settings,
)
from rm_resources.store import Store
from rm_resources.warehouse import WarehouseResource
from rm_rewards.core import registry
from rm_rewards.core.apply import apply_rewards, contiguous_batches, merge_batch_results, rule_rewards
from rm_rewards.core.kinds import PointwiseReward
from rm_rewards.core.schema import ResponseScore, Sample
from rm_rewards.datasets.convert import convert_rows
from rm_rewards.llm.cache import ResponseCache
from rm_rewards.llm.client import LLMClient
from rm_rewards.llm.config import LLMConfig
from tests.conftest import CANARY_API_KEY
from tests.test_judging_assets import model_responder
from tests.test_rules_code import make_sample

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

TWO_WORKERS = RayScoring(workers=2, batch_size=7)  # small batches: many tasks, both math paths


@pytest.fixture(scope="module")
def local_ray():
    import ray

    previous = os.environ.get(API_KEY_ENV)
    os.environ[API_KEY_ENV] = CANARY_API_KEY  # before ray.init: the workers inherit it
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop(API_KEY_ENV, None)
        else:
            os.environ[API_KEY_ENV] = previous


# --- samples ----------------------------------------------------------------------------------


def _bundled(dataset: str, limit: int) -> list[Sample]:
    source = DatasetSourceResource(mode="bundled", limit=limit)
    return convert_rows(dataset, source.load_rows(dataset), format=source.info(dataset).format).samples


ADD_META = {"test": "def check(candidate):\n    assert candidate(2, 3) == 5\n", "entry_point": "add"}
# Each "escape" returns the right answer only if it got out: a score of 1 would be a leak.
ESCAPES = {
    "right": "def add(a, b):\n    return a + b\n",
    "timeout": "def add(a, b):\n    while True:\n        pass\n",
    "loopback": "def add(a, b):\n    import socket\n    socket.create_connection(('127.0.0.1', PORT), timeout=1).close()\n"
    "    return a + b\n",
    "api_key": f"def add(a, b):\n    import os\n    if {API_KEY_ENV!r} in os.environ:\n        return a + b\n"
    "    raise RuntimeError('no key in sight')\n",
}
PATHOLOGICAL_MATH = "$9^{9^{9^{9^{9}}}}$"  # sympy would work on this for far longer than the limit


def hostile_samples(port: int, *, pathological_math: bool = True) -> list[Sample]:
    code = make_sample(
        *(f"```python\n{body.replace('PORT', str(port))}```\n" for body in ESCAPES.values()),
        metadata=ADD_META, sample_id="code-escapes",
    )
    math = [make_sample(f"The answer is {k}.", f"The answer is {k + 1}.", reference=str(k), sample_id=f"math-{k}")
            for k in range(6)]
    if pathological_math:
        math.append(make_sample("The answer is 5.", PATHOLOGICAL_MATH, reference="5", sample_id="math-hang"))
    return [code, *math]


def limited_rule_rewards():
    """Every rule reward, the sandbox with a 1 s limit (the looping program hits it).

    math_verify keeps its 5 s default here: a batch of at most 4 math samples is judged inline,
    and a cold worker's first inline judgement imports sympy inside the time limit (a 1 s limit
    can expire on that under load). The pathological input has its own test, through the pool,
    whose workers import sympy before their first task."""
    return [registry.get(r.name, timeout_s=1.0) if r.name == "code_execution" else r for r in rule_rewards()]


def _table_rows(tmp_path: Path, table: str, results, samples, **columns) -> list[str]:
    """The score table's rows exactly as the store writes them (less the run id), as JSON."""
    frame = Store(str(tmp_path / "scores.duckdb")).write_scores(table, "p", results, samples, "run", **columns)
    return [json.dumps(row, sort_keys=True, default=str) for row in frame.drop(columns=["run_id"]).to_dict("records")]


# --- no Ray: the batching helpers -------------------------------------------------------------


def test_batched_scoring_merges_back_to_the_whole_batch_order():
    samples = _bundled("helpsteer2", 8) + hostile_samples(9)[1:4]
    rewards = [r for r in rule_rewards() if r.name not in ("code_execution", "math_verify")]
    assert [len(b) for b in contiguous_batches(samples, 5)] == [5, 5, 5, 4]
    per_batch = [apply_rewards(batch, rewards) for batch in contiguous_batches(samples, 5)]
    assert merge_batch_results(rewards, per_batch) == apply_rewards(samples, rewards)
    with pytest.raises(ValueError, match="unique names"):
        merge_batch_results([rewards[0], rewards[0]], per_batch)


def test_each_worker_gets_its_share_of_the_llm_limits_and_no_key():
    config = LLMConfig(base_url="http://127.0.0.1:1/v1", model="m", api_key=CANARY_API_KEY,
                       max_concurrency=5, requests_per_minute=600, tokens_per_minute=90_000)
    settings = worker_llm_settings(config, 2)
    assert (settings["max_concurrency"], settings["requests_per_minute"], settings["tokens_per_minute"]) == (
        3, 300, 45_000)
    assert "api_key" not in settings and CANARY_API_KEY not in json.dumps(settings)


def test_a_worker_without_the_key_fails_before_any_request(fake_openai, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    settings = worker_llm_settings(LLMConfig(base_url=fake_openai.base_url, model="m"), 1)
    with pytest.raises(RuntimeError, match=f"{API_KEY_ENV} is not set in this Ray worker"):
        _judge_batch(_bundled("helpsteer2", 2), settings, None, True, {})
    assert fake_openai.request_count == 0


# --- on the local Ray -------------------------------------------------------------------------


class WorkerProbe(PointwiseReward):
    """Says which process and thread scored each response."""

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        main = threading.current_thread() is threading.main_thread()
        return ResponseScore(score=1.0, reason=f"{os.getpid()} main_thread={main}")


def test_rule_scores_on_ray_equal_the_in_process_table_row_for_row(local_ray, tmp_path, fake_openai):
    samples = (_bundled("helpsteer2", 8) + _bundled("hh_rlhf_helpful", 20)
               + hostile_samples(fake_openai.port, pathological_math=False))
    rewards = limited_rule_rewards()

    here = _table_rows(tmp_path, "rule_scores", apply_rewards(samples, rewards), samples)
    on_ray = _table_rows(tmp_path, "rule_scores", score_rules(samples, rewards, on_ray=TWO_WORKERS), samples)
    assert len(here) > 300
    assert on_ray == here

    probes = score_rules(samples, [WorkerProbe()], on_ray=TWO_WORKERS)
    places = {score.reason for result in probes for score in result.scores}
    assert {place.split()[1] for place in places} == {"main_thread=True"}  # SIGALRM limits work there
    assert len({place.split()[0] for place in places}) == 2  # both workers scored
    assert str(os.getpid()) not in {place.split()[0] for place in places}


def test_tasks_run_a_window_at_a_time_and_come_back_in_order(local_ray):
    """The Ray path of rule scoring streams: batches are read only as the window frees up, results
    come back in the batches' order whatever order the tasks finish in, and a failing task raises
    after the rest are cancelled."""
    import time

    @local_ray.remote(num_cpus=1)
    def slow_double(k: int) -> int:
        time.sleep(0.3 if k % 3 == 0 else 0.02)  # the first of every three finishes last
        if k == -1:
            raise ValueError("task failed")
        return 2 * k

    pulled: list[int] = []

    def items(n: int):
        for k in range(n):
            pulled.append(k)
            yield k

    seen = []
    for k, result in run_in_order(items(12), slow_double.remote, window=2):
        # Never more read than the one handed on and 2 × 2 submitted after it (2 of them running).
        assert len(pulled) <= k + 1 + 4, (k, pulled)
        seen.append((k, result))
    assert seen == [(k, 2 * k) for k in range(12)]

    with pytest.raises(Exception, match="task failed"):
        list(run_in_order([0, -1, 2, 3], slow_double.remote, window=2))


def test_sandbox_and_math_time_limits_hold_inside_ray_workers(local_ray, fake_openai):
    samples = hostile_samples(fake_openai.port)
    rewards = [registry.get("code_execution", timeout_s=1.0), registry.get("math_verify", timeout_s=1.0)]
    # One batch: math_verify's 7 samples go through its process pool, spawned inside the worker.
    results = {(r.reward_name, r.sample_id): r for r in score_rules(samples, rewards, on_ray=RayScoring(workers=1))}

    code = results["code_execution", "code-escapes"]
    assert code.error is None
    right, looped, loopback, key = code.scores
    assert (right.score, right.reason) == (1.0, "1/1 tests passed")
    assert looped.score == 0.0 and "timeout" in looped.reason
    assert loopback.score == 0.0 and "error" in loopback.reason  # no connection to 127.0.0.1
    assert key.score == 0.0 and "no key in sight" in key.reason  # the worker's env stayed outside
    assert fake_openai.request_count == 0

    hang = results["math_verify", "math-hang"]
    assert [s.score for s in hang.scores] == [1.0, None]
    assert hang.scores[1].error == "math-verify timed out after 1.0s"
    assert all(results["math_verify", f"math-{k}"].values() == [1.0, 0.0] for k in range(6))


def _client(fake_openai, cache_path: Path | None = None, **limits) -> LLMClient:
    config = LLMConfig(base_url=fake_openai.base_url, model="fake-model", api_key=CANARY_API_KEY,
                       timeout_s=5.0, max_retries=1, **limits)
    return LLMClient(config, ResponseCache(cache_path) if cache_path else None)


def _ray_session_files():
    from ray._private import worker

    session = Path(worker._global_node.get_session_dir_path())
    return [p for p in session.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_size < 50_000_000]


def test_llm_scores_on_ray_equal_in_process_and_the_key_stays_out_of_ray(local_ray, tmp_path, fake_openai):
    fake_openai.set_responder(model_responder)
    samples = _bundled("helpsteer2", 8)
    principles = {"scenario": "Be helpful.", "principles": ["Answer the question that was asked."]}
    columns = dict(principle_set_id="ps", principles_source="learned", model="fake-model", template_version="t")

    here = judge(samples, _client(fake_openai), principles)  # no cache: every call is a request
    in_process_requests = fake_openai.request_count
    fake_openai.reset()
    fake_openai.set_responder(model_responder)
    driver = _client(fake_openai)
    on_ray = judge(samples, driver, principles, on_ray=TWO_WORKERS)

    assert _table_rows(tmp_path, "llm_scores", on_ray.results, samples, **columns) == _table_rows(
        tmp_path, "llm_scores", here.results, samples, **columns)
    assert all(r.ok for r in on_ray.results) and len(on_ray.results) == len(samples)
    assert (on_ray.model, on_ray.template_version) == (here.model, here.template_version)
    # Every request came from the workers, with the key they read from their own environment.
    assert fake_openai.request_count == in_process_requests == on_ray.usage.requests > 0
    assert driver.stats.snapshot().calls == 0
    assert {r["headers"].get("Authorization") for r in fake_openai.requests} == {f"Bearer {CANARY_API_KEY}"}
    leaks = [str(p) for p in _ray_session_files() if CANARY_API_KEY.encode() in p.read_bytes()]
    assert leaks == []

    # The workers use the step process's cache file: a rerun on Ray makes no request.
    cached = _client(fake_openai, tmp_path / "cache.sqlite")
    first = judge(samples, cached, principles, on_ray=TWO_WORKERS)
    requests_before = fake_openai.request_count
    again = judge(samples, cached, principles, on_ray=TWO_WORKERS)
    assert first.usage.requests > 0 and again.usage.requests == 0
    assert again.usage.cache_hits == again.usage.calls > 0 and fake_openai.request_count == requests_before
    assert [r.model_dump() for r in again.results] == [r.model_dump() for r in on_ray.results]


def test_llm_rate_limit_on_ray_is_the_configured_total_not_per_worker(local_ray, fake_openai):
    fake_openai.set_responder(model_responder)
    fake_openai.set_latency(0.05)
    samples = _bundled("helpsteer2", 8)  # 24 requests: 8 pairs in both orders, 8 grades
    run = judge(samples, _client(fake_openai, max_concurrency=2, requests_per_minute=600), {}, on_ray=TWO_WORKERS)

    assert run.usage.requests == fake_openai.request_count == 24
    arrivals = sorted(r["at"] for r in fake_openai.requests)
    # 10/s in all: each worker 5/s after a burst of 5, so its 12 requests span >= 1.4 s; had each
    # worker taken the whole limit (10/s, burst 10) they would span 0.2 s.
    assert arrivals[-1] - arrivals[0] >= 1.2
    assert fake_openai.max_in_flight <= 2  # max_concurrency 2 split as 1 per worker


def test_the_assets_score_on_ray_when_the_resource_says_so(local_ray, tmp_path, fake_openai):
    fake_openai.set_responder(model_responder)
    tables = {}
    for mode in ("in_process", "ray"):
        database = str(tmp_path / f"{mode}.duckdb")
        resources = {
            "datasets": DatasetSourceResource(mode="bundled", limit=8),
            "warehouse": WarehouseResource(database=database),
            "llm": LLMClientResource(base_url=fake_openai.base_url, model="fake-model", api_key=CANARY_API_KEY,
                                     timeout_s=5.0, max_retries=1, cache_path=""),
            "ray": RayClusterResource(scoring=mode, scoring_workers=2, scoring_batch_size=5),
        }
        result = dg.materialize([raw_rows, converted_samples, rule_scores, llm_scores], resources=resources,
                                partition_key="helpsteer2")
        assert result.success
        scoring = {
            key.path[-1]: [m.metadata["scoring"].value for m in result.asset_materializations_for_node(key.path[-1])]
            for key in (rule_scores.key, llm_scores.key)
        }
        assert scoring == {name: ["in process" if mode == "in_process" else "Ray (local, 2 workers)"]
                           for name in ("rule_scores", "llm_scores")}
        store = Store(database)
        tables[mode] = {
            table: store.read_partition(table, "helpsteer2").drop(columns=["run_id"]).astype(str).to_dict("records")
            for table in ("rule_scores", "llm_scores")
        }
    assert tables["ray"] == tables["in_process"]
    assert len(tables["ray"]["rule_scores"]) > 50 and len(tables["ray"]["llm_scores"]) == 6
