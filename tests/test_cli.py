"""The `rmforge` command line."""

from __future__ import annotations

import subprocess
import sys

from dagster_project.cli import main
from rm_rewards import registry


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


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", "rewards", "list", "--source", "llm"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "helpfulness_pointwise" in done.stdout and "llm" in done.stdout


def test_unknown_partition_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["run", "--partition", "nope", "--skip-llm"]) == 2
    assert "unknown partitions ['nope']" in capsys.readouterr().err
