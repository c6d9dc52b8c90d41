"""Smoke test of the code location: it loads, and its lineage is what we meant it to be.

The snapshot below changes only deliberately: a new asset, dependency, partition set or job shows
up here as a diff in review.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.definitions import defs


def _lineage() -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): sorted(dep.to_user_string() for dep in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }


def test_definitions_load_and_lineage_snapshot():
    assert _lineage() == {
        "raw_rows": [],
        "converted_samples": ["raw_rows"],
        "rule_scores": ["converted_samples"],
        "rm_checkpoints": ["converted_samples"],
        "grm_checkpoints": ["converted_samples"],
        "auto_principles": ["converted_samples"],
        "llm_scores": ["auto_principles", "converted_samples"],
        "refined_samples": ["auto_principles", "converted_samples"],
        "benchmark_reports": ["rm_checkpoints"],
    }


def test_dataset_partitions_and_jobs():
    graph = defs.resolve_asset_graph()
    for name in ("raw_rows", "converted_samples", "rule_scores"):
        partitions = graph.get(dg.AssetKey(name)).partitions_def
        assert partitions is not None
        assert {"helpsteer2", "hh_rlhf_helpful", "hh_rlhf_harmless"} <= set(partitions.get_partition_keys())
    assert defs.resolve_job_def("main_job") is not None
    training = graph.get(dg.AssetKey("rm_checkpoints")).partitions_def
    assert isinstance(training, dg.DynamicPartitionsDefinition) and training.name == "training_runs"
    assert defs.resolve_job_def("train_job") is not None
    benchmarks = graph.get(dg.AssetKey("benchmark_reports")).partitions_def
    assert isinstance(benchmarks, dg.MultiPartitionsDefinition)
    assert [d.name for d in benchmarks.partitions_defs] == ["benchmark", "model"]
    assert {s.name for s in defs.schedules} == {"benchmark_schedule"}
    assert {s.name for s in defs.sensors} == {"new_checkpoint_sensor"}


def test_quarantine_check_is_blocking():
    specs = {spec.name: spec for checks in defs.asset_checks for spec in checks.check_specs}
    assert specs["quarantine_rate_below_threshold"].blocking
    assert specs["quarantine_rate_below_threshold"].asset_key == dg.AssetKey("converted_samples")
