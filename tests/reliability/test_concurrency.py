"""Concurrency: eight dataset partitions materialized as eight parallel Dagster runs against one
DAGSTER_HOME and one DuckDB warehouse, each run with the multiprocess executor (every step its own
process), as a backfill from the UI launches them: all land, with no lock error and no lost or
duplicated row. Two runs racing on the same partition leave one whole version of each table.

The datasets are eight small local files registered in a datasets file (RMFORGE_DATASETS_FILE),
of different sizes so a row landing in the wrong partition shows. Only the cheap assets run
(raw_rows, converted_samples, rule_scores: no LLM). The store serialises writers with a file lock
beside the database (rm_resources/store.py); this is the test that it holds under real runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.support.dagster_dev import ROOT, dagster_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ASSETS = "raw_rows,converted_samples,rule_scores"
N_DATASETS = 8
# The multiprocess executor, its step processes forked from a server that imported the code
# location once (a spawned step re-imports it: ~3 s of CPU each, 40 of them on 2 cores).
RUN_CONFIG = {"execution": {"config": {"multiprocess": {
    "start_method": {"forkserver": {"preload_modules": ["dagster_project.definitions"]}}}}}}


def _rows(n: int, tag: str) -> list[dict]:
    return [{"prompt": f"[{tag}] question {i}: how do tides work?",
             "chosen": f"Tides follow the moon's pull; here is why, step {i}, with an example.",
             "rejected": "no idea"} for i in range(n)]


def _datasets(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    sizes = {f"par{i}": 12 + 3 * i for i in range(N_DATASETS)}
    lines = ["datasets:"]
    for name, n in sizes.items():
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(n, name)), encoding="utf-8")
        lines += [f"  {name}:", "    format: trl", f"    path: {name}.jsonl"]
    config = tmp_path / "datasets.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config, sizes


def _materialize(env: dict[str, str], partition: str) -> subprocess.Popen:
    """`dagster asset materialize`: a run on the instance with the code location's executor
    (multiprocess), as a launched run executes."""
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
         "--select", ASSETS, "--partition", partition, "--config-json", json.dumps(RUN_CONFIG)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _finish(processes: dict[str, subprocess.Popen]) -> dict[str, str]:
    outputs = {}
    for key, process in processes.items():
        out, _ = process.communicate(timeout=360)
        assert process.returncode == 0, f"{key}:\n{out[-4000:]}"
        outputs[key] = out
    return outputs


def _check_partition(store, partition: str, n_rows: int, k_samples: int | None) -> tuple[int, int]:
    """Counts of one partition against its input file: raw rows exactly the file's lines, samples
    and score rows without duplicates. Returns (samples, score rows)."""
    raw = store.read_partition("raw_rows", partition, order_by="row_index")
    assert len(raw) == n_rows and list(raw["row_index"]) == list(range(n_rows)), partition
    assert all(f"[{partition}]" in text for text in raw["row_json"]), f"{partition} holds another dataset's rows"
    samples = store.read_partition("converted_samples", partition)
    assert len(samples) > 0 and samples["sample_id"].is_unique, partition
    if k_samples is not None:
        assert len(samples) == k_samples * n_rows, (partition, len(samples), n_rows)
    scores = store.read_partition("rule_scores", partition)
    assert len(scores) > 0 and not scores.duplicated(["sample_id", "reward_name"]).any(), partition
    assert set(scores["sample_id"]) == set(samples["sample_id"]), partition
    for table in ("raw_rows", "converted_samples", "rule_scores"):
        assert len(store.run_ids(table, partition)) == 1, (table, partition, store.run_ids(table, partition))
    return len(samples), len(scores)


def test_eight_parallel_partition_runs_all_land_and_a_race_leaves_one_version(tmp_path):
    from rm_resources.store import Store

    config, sizes = _datasets(tmp_path)
    env = dagster_env(tmp_path / "home", tmp_path / "data", RMFORGE_DATASETS_FILE=str(config))
    # The instance exists before the runs, as under a running `dagster dev`: eight processes
    # creating a fresh DAGSTER_HOME's SQLite storage at once race on its schema stamp (Dagster's
    # alembic "more than one head"), which is not what this test is about.
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home"))
    instance.get_run_records()
    began = time.monotonic()
    outputs = _finish({name: _materialize(env, name) for name in sizes})
    parallel_s = time.monotonic() - began
    for name, out in outputs.items():
        assert "WarehouseBusy" not in out and "database is locked" not in out.lower(), f"{name}:\n{out[-3000:]}"
        assert "Could not set lock" not in out, f"{name}:\n{out[-3000:]}"

    runs = instance.get_run_records()
    assert len(runs) == N_DATASETS
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in runs) == sorted(sizes)
    # Each run's steps ran in processes of their own (the multiprocess executor), not in the run's.
    for record in runs:
        run_id = record.dagster_run.run_id
        start_pid = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START).records[0]
        step_pids = {r.event_log_entry.dagster_event.pid for r in
                     instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records}
        assert len(step_pids) >= 3 and start_pid.event_log_entry.dagster_event.pid not in step_pids

    store = Store(str(tmp_path / "data" / "rmforge.duckdb"))
    assert store.count_by_partition("raw_rows") == sizes  # rows lost or duplicated: none
    first = sizes["par0"]
    k = store.row_count("converted_samples", "par0") // first  # samples per input row (same format)
    assert k >= 1
    landed = {name: _check_partition(store, name, n, k) for name, n in sizes.items()}
    per_sample = {name: scores / samples for name, (samples, scores) in landed.items()}
    assert len(set(per_sample.values())) == 1, per_sample  # the same rewards applied everywhere

    # Two writers racing on one partition: each table ends as one run's whole version.
    race = {f"writer-{i}": _materialize(env, "par3") for i in range(2)}
    _finish(race)
    race_ids = {r.dagster_run.run_id for r in instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": "par3"}))}
    assert len(race_ids) == 3
    assert _check_partition(store, "par3", sizes["par3"], k) == landed["par3"]
    for table in ("raw_rows", "converted_samples", "rule_scores"):
        assert store.run_ids(table, "par3")[0] in race_ids
    assert store.count_by_partition("raw_rows") == sizes
    rows = sum(sizes.values())
    print(f"{N_DATASETS} parallel partition runs (multiprocess executor) landed in {parallel_s:.0f}s: "
          f"{rows} raw rows, {sum(s for s, _ in landed.values())} samples, "
          f"{sum(r for _, r in landed.values())} score rows, 0 lost or duplicated; 2 racing runs "
          f"left one whole version; {time.monotonic() - began:.0f}s in all")
