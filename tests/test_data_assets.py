"""The data slice through Dagster: raw rows → converted samples → rule scores, with quarantine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from rm_assets.data.assets import converted_samples, raw_rows, rule_scores
from rm_assets.data.checks import quarantine_rate_below_threshold
from rm_resources.datasets import DatasetSourceResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.store import Store
from rm_resources.warehouse import WarehouseResource

ROOT = Path(__file__).resolve().parent.parent

GOOD_ROWS = [
    {"prompt": "What is 2+2?", "response": "2+2 is 4.", "helpfulness": 4, "correctness": 4,
     "coherence": 4, "complexity": 1, "verbosity": 1},
    {"prompt": "What is 2+2?", "response": "It is 5.", "helpfulness": 0, "correctness": 0,
     "coherence": 3, "complexity": 1, "verbosity": 1},
    {"prompt": "Name a color.", "response": "Blue. Contact me at jane.doe@example.com", "helpfulness": 3,
     "correctness": 4, "coherence": 4, "complexity": 0, "verbosity": 1},
    # Text that was never cleaned to valid UTF-8 (a lone surrogate) must still flow through.
    {"prompt": "Name a color.", "response": "Red \ud800 broken", "helpfulness": 1,
     "correctness": 1, "coherence": 1, "complexity": 0, "verbosity": 1},
]
BAD_ROWS = [
    {"prompt": "Missing the response field", "helpfulness": 2, "correctness": 2, "coherence": 2,
     "complexity": 2, "verbosity": 2},
    {"prompt": "Empty response", "response": "   ", "helpfulness": 2, "correctness": 2, "coherence": 2,
     "complexity": 2, "verbosity": 2},
]


def _write_local(directory: Path, rows: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "helpsteer2.jsonl", "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def _materialize(tmp_path: Path, *, max_rate: float = 0.5, instance=None):
    resources = {
        "datasets": DatasetSourceResource(mode="local", local_dir=str(tmp_path / "in")),
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
        "ray": RayClusterResource(),  # rule_scores scores in process (no address)
    }
    return dg.materialize(
        [raw_rows, converted_samples, rule_scores, quarantine_rate_below_threshold],
        resources=resources,
        partition_key="helpsteer2",
        instance=instance,
        run_config=dg.RunConfig(
            ops={"converted_samples_quarantine_rate_below_threshold": {"config": {"max_quarantine_rate": max_rate}}}
        ),
        raise_on_error=False,
    )


def test_slice_materializes_and_quarantines_bad_rows(tmp_path):
    _write_local(tmp_path / "in", GOOD_ROWS[:1] + BAD_ROWS[:1] + GOOD_ROWS[1:] + BAD_ROWS[1:])
    result = _materialize(tmp_path)
    assert result.success

    store = Store(str(tmp_path / "w.duckdb"))
    assert store.count_by_partition("raw_rows") == {"helpsteer2": 6}
    quarantine = store.read_partition("quarantine", "helpsteer2", order_by="row_index")
    assert list(quarantine["row_index"]) == [1, 5]
    assert list(quarantine["field"]) == ["response", "response"]
    assert all(quarantine["reason"].str.len() > 0)

    samples = store.read_partition("converted_samples", "helpsteer2")
    # 4 pointwise samples + two same-prompt pairs, each in both orders; valid rows all kept.
    assert sorted(samples["task"].value_counts().items()) == [("pairwise", 4), ("pointwise", 4)]
    texts = [r["message"]["content"] for cell in samples["responses_json"] for r in json.loads(cell)]
    assert "Red \ud800 broken" in texts

    scores = store.read_partition("rule_scores", "helpsteer2")
    assert len(scores) > 0
    assert set(scores["sample_id"]) <= set(samples["sample_id"])
    privacy = scores[scores["reward_name"] == "privacy_leakage"]
    leaked = [s for s, ids in zip(privacy["scores"], privacy["sample_id"]) if "pointwise" in ids]
    assert any(min(values) < 1.0 for values in leaked), "the e-mail address must be penalised"
    assert not scores.duplicated(["sample_id", "reward_name"]).any()

    materialization = result.asset_materializations_for_node("converted_samples")[0]
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == 8
    assert metadata["quarantined_rows"].value == 2
    assert "dagster/column_schema" in metadata and "preview" in metadata


def test_rematerializing_replaces_the_partition_without_duplicates(tmp_path):
    _write_local(tmp_path / "in", GOOD_ROWS)
    assert _materialize(tmp_path).success
    store = Store(str(tmp_path / "w.duckdb"))
    first = {t: store.count_by_partition(t) for t in ("raw_rows", "converted_samples", "rule_scores")}
    assert _materialize(tmp_path).success
    second = {t: store.count_by_partition(t) for t in ("raw_rows", "converted_samples", "rule_scores")}
    assert first == second

    _write_local(tmp_path / "in", GOOD_ROWS[:1])
    assert _materialize(tmp_path).success
    assert store.count_by_partition("converted_samples") == {"helpsteer2": 1}


def test_quarantine_check_blocks_scoring_above_threshold(tmp_path):
    _write_local(tmp_path / "in", GOOD_ROWS[:1] + BAD_ROWS)
    with dg.instance_for_test() as instance:
        result = _materialize(tmp_path, max_rate=0.2, instance=instance)
        check = result.get_asset_check_evaluations()[0]
        assert not check.passed
        assert check.metadata["quarantine_rate"].value == pytest.approx(2 / 3, abs=1e-3)
        assert not result.asset_materializations_for_node("rule_scores")
    store = Store(str(tmp_path / "w.duckdb"))
    assert store.count_by_partition("rule_scores") == {}


def test_raw_rows_data_version_follows_content(tmp_path):
    _write_local(tmp_path / "in", GOOD_ROWS)
    first = _materialize(tmp_path).asset_materializations_for_node("raw_rows")[0]
    again = _materialize(tmp_path).asset_materializations_for_node("raw_rows")[0]
    _write_local(tmp_path / "in", GOOD_ROWS[:2])
    changed = _materialize(tmp_path).asset_materializations_for_node("raw_rows")[0]
    version = lambda m: m.tags["dagster/data_version"]  # noqa: E731
    assert version(first) == version(again) != version(changed)


@pytest.mark.slow
def test_two_partitions_in_parallel_runs_both_land(tmp_path):
    """Separate runs in separate processes (multiprocess executor) writing one DuckDB file."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "RMFORGE_DATA_DIR": str(tmp_path / "data")}
    # Create the instance's storage once first: two processes migrating a fresh SQLite run
    # storage at the same moment race (that is Dagster's set-up, not the warehouse under test).
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.from_config(str(tmp_path / "home")):
        pass
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "dagster_project.cli", "run", "--skip-training", "--skip-llm", "--skip-benchmarks", "--partition", partition],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for partition in ("helpsteer2", "hh_rlhf_helpful")
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
    store = Store(str(tmp_path / "data" / "rmforge.duckdb"))
    counts = store.count_by_partition("converted_samples")
    assert set(counts) == {"helpsteer2", "hh_rlhf_helpful"}
    assert counts["helpsteer2"] == 16
    assert set(store.count_by_partition("rule_scores")) == {"helpsteer2", "hh_rlhf_helpful"}
