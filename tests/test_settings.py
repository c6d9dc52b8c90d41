"""Profiles read their settings from the environment with clear errors for bad values."""

from __future__ import annotations

import pytest

from dagster_project.profiles import resources_for


def test_benchmark_files_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RMFORGE_BENCHMARK_FILES", f"judge_bench={tmp_path}/a.jsonl, judge_bench={tmp_path}/b.jsonl")
    datasets = resources_for("local")["datasets"]
    assert datasets.benchmark_files == {"judge_bench": [f"{tmp_path}/a.jsonl", f"{tmp_path}/b.jsonl"]}


def test_no_benchmark_files_by_default(monkeypatch):
    monkeypatch.delenv("RMFORGE_BENCHMARK_FILES", raising=False)
    assert resources_for("local")["datasets"].benchmark_files == {}


@pytest.mark.parametrize(("value", "message"), [
    ("judge_bench", "is not name=path"),
    ("judge_bench=", "is not name=path"),
    ("judgebench=/x.jsonl", "unknown benchmark 'judgebench'"),
])
def test_bad_benchmark_files_are_named(monkeypatch, value, message):
    monkeypatch.setenv("RMFORGE_BENCHMARK_FILES", value)
    with pytest.raises(ValueError, match=message):
        resources_for("local")
