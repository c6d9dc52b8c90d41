"""The `rmforge` command line."""

from __future__ import annotations

import subprocess
import sys

from dagster_project.cli import main
from rm_rewards.core import registry


def test_rewards_list_prints_every_registered_reward(capsys):
    assert main(["rewards", "list"]) == 0
    out = capsys.readouterr().out
    names = [spec.name for spec in registry.specs()]
    assert len(names) >= 38  # at least the seed's set
    for spec in registry.specs():
        line = next(line for line in out.splitlines() if line.startswith(spec.name + " "))
        assert spec.kind in line and spec.source in line and spec.description in line
    assert f"{len(names)} rewards" in out


def test_rewards_list_filters(capsys):
    assert main(["rewards", "list", "--source", "rule", "--tag", "code"]) == 0
    out = capsys.readouterr().out
    assert "code_execution" in out and "helpfulness_pointwise" not in out and "token_f1" not in out


def test_rewards_list_rm_gallery_shows_every_name_its_reward_and_the_differences(capsys):
    from rm_rewards.core.rm_gallery_names import RM_GALLERY_NAMES

    assert main(["rewards", "list", "--rm-gallery"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["RM-Gallery", "name", "rmforge", "reward", "differences"]
    for entry in RM_GALLERY_NAMES.values():
        line = next(line for line in lines if line.startswith(entry.name + " "))
        assert line.split()[1].startswith(entry.rmforge or "(unsupported)") and line.endswith(entry.note)
    assert "reasoning_tool_call_format" in out and "tool_call_format(require_think=True)" in out
    reasoning = next(line for line in lines if line.startswith("reasoning_format "))
    assert "strict" in reasoning
    assert "[-0.5, 1]" in next(line for line in lines if line.startswith("code_syntax_check "))
    assert "Detoxify" in next(line for line in lines if line.startswith("detoxify_reward "))
    assert f"{len(RM_GALLERY_NAMES)} RM-Gallery 0.1.7 reward names: {len(RM_GALLERY_NAMES)} resolve" in out


def test_rewards_list_rm_gallery_filters_by_the_rmforge_reward(capsys):
    assert main(["rewards", "list", "--rm-gallery", "--source", "rule", "--tag", "code"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()[1:] if line.strip() and not line[0].isdigit()]
    assert names == ["code_execution", "code_patch_similarity", "code_style", "code_syntax_check"]
    assert "4 RM-Gallery 0.1.7 reward names: 4 resolve to an rmforge reward, 0 unsupported" in out


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", "rewards", "list", "--source", "llm"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "helpfulness_pointwise" in done.stdout and "llm" in done.stdout


def test_unknown_partition_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["run", "--partition", "nope", "--skip-llm"]) == 2
    assert "unknown partitions ['nope']" in capsys.readouterr().err


def test_run_without_the_llm_still_benchmarks_and_ranks(tmp_path):
    """--skip-llm leaves out the LLM assets and judges; the rule baseline is still reported and the
    leaderboard built."""
    import os

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "RMFORGE_DATA_DIR": str(tmp_path / "data"),
           "RMFORGE_BENCHMARK_MODELS": "reward:length_penalty,judge:helpfulness_pointwise"}
    done = subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "run", "--skip-llm", "--skip-training", "--partition", "helpsteer2"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "baseline_benchmark_job [rm_bench|reward:length_penalty]: done" in out
    assert "judge:" not in out  # no judge was run
    assert "leaderboard_job: done" in out
    from rm_resources.store import Store

    board = Store(str(tmp_path / "data" / "rmforge.duckdb")).read_leaderboard()
    assert set(board["model_key"]) == {"reward:length_penalty"} and len(board) == 4
