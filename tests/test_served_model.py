"""served_model and its blocking gate check, materialized in Dagster on a hand-written leaderboard."""

from __future__ import annotations

import dagster as dg

from rm_assets.serving.assets import served_model
from rm_assets.serving.checks import promotion_passes_gate
from rm_resources.warehouse import WarehouseResource
from rm_rewards.benchmarks.leaderboard import LeaderboardEntry


def _entries(scores: dict[str, dict[str, float]]) -> list[LeaderboardEntry]:
    return [LeaderboardEntry(model_key=m, benchmark=b, headline=v, status="scored")
            for m, by_benchmark in scores.items() for b, v in by_benchmark.items()]


def _run(warehouse, **config):
    return dg.materialize(
        [served_model, promotion_passes_gate], resources={"warehouse": warehouse},
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
