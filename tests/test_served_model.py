"""served_model and its blocking gate check, materialized in Dagster on a hand-written leaderboard."""

from __future__ import annotations

import json

import dagster as dg

from rm_assets.serving.assets import served_model
from rm_assets.serving.checks import promotion_passes_gate
from rm_resources.datasets import DatasetSourceResource
from rm_resources.warehouse import WarehouseResource
from rm_rewards.benchmarks.leaderboard import LeaderboardEntry


def _entries(scores: dict[str, dict[str, float]]) -> list[LeaderboardEntry]:
    return [LeaderboardEntry(model_key=m, benchmark=b, headline=v, status="scored")
            for m, by_benchmark in scores.items() for b, v in by_benchmark.items()]


def _run(warehouse, datasets=None, **config):
    return dg.materialize(
        [served_model, promotion_passes_gate],
        resources={"warehouse": warehouse, "datasets": datasets or DatasetSourceResource(mode="bundled")},
        run_config={"ops": {"served_model": {"config": config}}}, raise_on_error=False,
    )


def test_promotion_history_and_a_blocked_override_fails_the_blocking_check(tmp_path):
    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    store = warehouse.get_store()
    store.write_leaderboard(_entries({
        "checkpoint:a": {"rm_bench": 0.6, "reward_bench_2": 0.5},
        "checkpoint:b": {"rm_bench": 0.7, "reward_bench_2": 0.3},
    }), run_id="board-1")

    first = _run(warehouse)
    assert first.success
    materialization = first.asset_materializations_for_node("served_model")[0]
    assert materialization.metadata["served"].value == "checkpoint:b"
    assert materialization.metadata["status"].value == "promoted"
    assert "first model served" in materialization.metadata["reason"].value

    blocked = _run(warehouse, override="checkpoint:a")
    assert not blocked.success  # the blocking check failed the run
    (check,) = blocked.get_asset_check_evaluations()
    assert not check.passed and check.metadata["status"].value == "blocked"
    assert check.metadata["failures"].value == [
        "rm_bench: 0.6000 vs 0.7000 (-0.1000) does not beat the current model by more than the margin 0"]
    assert store.served_model() == "checkpoint:b"  # the blocked promotion changed nothing

    forced = _run(warehouse, override="checkpoint:a", force=True)
    assert forced.success and store.served_model() == "checkpoint:a"
    history = store.promotions()
    assert [(r["status"], r["served"], r["forced"]) for r in history] == [
        ("promoted", "checkpoint:a", True), ("blocked", "checkpoint:b", False), ("promoted", "checkpoint:b", False)]
    assert all(r["leaderboard_run_id"] == "board-1" for r in history)


RM_BENCH_PARTS = "3 of 4 domains (missing: math)"


def _partial_entries(scores: dict[str, float]) -> list[LeaderboardEntry]:
    """RM-Bench as the embedded defaults leave it: partial for every model (no math items bundled)."""
    return [LeaderboardEntry(model_key=m, benchmark="rm_bench", partial_headline=v, headline_parts=RM_BENCH_PARTS,
                             status="partial") for m, v in scores.items()]


def test_bundled_benchmarks_promote_on_a_partial_headline_and_say_so(tmp_path):
    from rm_assets.lineage import promotion_history_text

    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    store = warehouse.get_store()
    store.write_leaderboard(_partial_entries({"checkpoint:a": 0.52, "checkpoint:b": 0.55, "reward:x": 0.9}),
                            run_id="board-1")

    # benchmarks from the hub: a partial headline is missing data, nothing is promoted
    hub = _run(warehouse, DatasetSourceResource(mode="hub"))
    assert hub.success and store.served_model() is None
    metadata = hub.asset_materializations_for_node("served_model")[0].metadata
    assert metadata["status"].value == "kept" and "partial ones not allowed" in metadata["reason"].value
    assert metadata["partial_headlines"].value.startswith("not allowed: rm_bench is read from hub")

    # the embedded defaults (bundled benchmark samples): promoted, on a partial headline, said so
    bundled = _run(warehouse)
    assert bundled.success and store.served_model() == "checkpoint:b"
    metadata = bundled.asset_materializations_for_node("served_model")[0].metadata
    assert metadata["status"].value == "promoted" and metadata["on_partial_headline"].value is True
    assert metadata["headline_parts"].value == RM_BENCH_PARTS
    assert metadata["candidate_headline"].value == 0.55
    assert f"on a partial headline ({RM_BENCH_PARTS})" in metadata["reason"].value
    assert "bundled sample, partial by construction" in metadata["partial_headlines"].value
    latest = store.promotions(limit=1)[0]
    assert json.loads(latest["rule_json"])["allow_partial"] is True
    assert json.loads(latest["decision_json"])["candidate_parts"] == RM_BENCH_PARTS
    assert "on a partial headline" in promotion_history_text(store)  # what `rmforge audit served_model` prints

    # configured off, even on bundled samples: the served model stays, nothing new is chosen
    off = _run(warehouse, allow_partial=False)
    assert off.success and store.served_model() == "checkpoint:b"
    assert off.asset_materializations_for_node("served_model")[0].metadata["status"].value == "kept"
