"""Smoke test of the code location: it loads, and its lineage is what we meant it to be.

The snapshot below changes only deliberately: a new asset, dependency, partition set or job shows
up here as a diff in review.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.definitions import defs as load_definitions

# What Dagster loads: the lazy definitions, built from this process's settings.
defs = load_definitions()


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
        "auto_principles": ["converted_samples"],
        "llm_scores": ["auto_principles", "converted_samples"],
        "refined_samples": ["auto_principles", "converted_samples"],
        "training_pairs": ["converted_samples", "llm_scores", "refined_samples", "rule_scores"],
        "rm_checkpoints": ["training_pairs"],
        "grm_checkpoints": ["training_pairs"],
        "benchmark_reports": ["rm_checkpoints"],
        "principles_benchmark_reports": ["auto_principles"],
        "baseline_benchmark_reports": [],
        "leaderboard": ["baseline_benchmark_reports", "benchmark_reports", "principles_benchmark_reports"],
        "served_model": ["leaderboard"],
    }


def test_every_stage_feeds_the_next():
    """No dead ends: only the served model and the GPU-only generative RM end a branch."""
    graph = defs.resolve_asset_graph()
    sinks = {k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).child_keys}
    assert sinks == {"served_model", "grm_checkpoints"}


def test_code_versions_are_derived_from_the_code():
    graph = defs.resolve_asset_graph()
    versions = {k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()}
    assert all(v and len(v) == 12 and v != "1" for v in versions.values()), versions


def test_dataset_partitions_and_jobs():
    graph = defs.resolve_asset_graph()
    for name in ("raw_rows", "converted_samples", "rule_scores", "training_pairs"):
        partitions = graph.get(dg.AssetKey(name)).partitions_def
        assert partitions is not None
        assert {"helpsteer2", "hh_rlhf_helpful", "hh_rlhf_harmless"} <= set(partitions.get_partition_keys())
    for job in ("main_job", "train_job", "benchmark_job", "principles_benchmark_job", "baseline_benchmark_job",
                "leaderboard_job", "grm_train_job"):
        assert defs.resolve_job_def(job) is not None
    training = graph.get(dg.AssetKey("rm_checkpoints")).partitions_def
    assert isinstance(training, dg.DynamicPartitionsDefinition) and training.name == "training_runs"
    dimensions = {
        "benchmark_reports": ["benchmark", "run"],
        "principles_benchmark_reports": ["benchmark", "dataset"],
        "baseline_benchmark_reports": ["benchmark", "model"],
    }
    for name, expected in dimensions.items():
        partitions = graph.get(dg.AssetKey(name)).partitions_def
        assert isinstance(partitions, dg.MultiPartitionsDefinition)
        assert [d.name for d in partitions.partitions_defs] == expected
    assert {s.name for s in defs.schedules} == {
        "benchmark_schedule", "principles_benchmark_schedule", "baseline_benchmark_schedule"}
    assert {s.name for s in defs.sensors} == {"new_checkpoint_sensor", "leaderboard_sensor"}


def test_quarantine_check_is_blocking():
    specs = {spec.name: spec for checks in defs.asset_checks for spec in checks.check_specs}
    assert specs["quarantine_rate_below_threshold"].blocking
    assert specs["quarantine_rate_below_threshold"].asset_key == dg.AssetKey("converted_samples")
    assert specs["promotion_passes_gate"].blocking
    assert specs["promotion_passes_gate"].asset_key == dg.AssetKey("served_model")


def test_leaderboard_job_decides_the_promotion():
    job = defs.resolve_job_def("leaderboard_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"leaderboard", "served_model"}


def test_code_version_changes_with_the_code(tmp_path, monkeypatch):
    from rm_assets import versions

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(versions, "PROJECT_ROOT", tmp_path)
    versions.code_version.cache_clear()
    before = versions.code_version("pkg")
    (package / "a.py").write_text("x = 2\n")
    versions.code_version.cache_clear()
    assert versions.code_version("pkg") != before
    with __import__("pytest").raises(ValueError, match="no module or package"):
        versions.code_version("pkg.missing")
    versions.code_version.cache_clear()
