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


CANARY_KEY = "sk-canary-0c4e1d7b-must-never-be-printed"


def test_settings_prints_every_setting_with_the_secrets_masked(capsys, monkeypatch):
    from dagster_project.settings import SETTINGS

    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setenv("RMFORGE_LLM_API_KEY", CANARY_KEY)
    monkeypatch.setenv("RMFORGE_DATASET_LIMIT", "12")
    assert main(["settings", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert CANARY_KEY not in captured.out + captured.err
    lines = {line.split()[0]: line for line in captured.out.splitlines() if line.startswith("RMFORGE_")}
    assert set(lines) == {s.env for s in SETTINGS}
    assert lines["RMFORGE_LLM_API_KEY"].split()[1:] == ["set", "(masked)", "environment"]
    assert lines["RMFORGE_SERVE_API_KEY"].split()[1:] == ["not", "set", "default"]
    assert lines["RMFORGE_DATASET_LIMIT"].split()[1:] == ["12", "environment"]
    assert lines["RMFORGE_PROFILE"].split()[1:] == ["local", "default"]
    assert "(production profile only)" in lines["RMFORGE_LLM_MAX_CONCURRENCY"]
    assert "RMFORGE_LLM_API_KEY: Dagster, through dg.EnvVar" in captured.out  # --verbose: who reads it


def test_settings_in_a_subprocess_never_print_the_key():
    """The console script's whole output (stdout and stderr), both secrets set."""
    import os

    env = {**os.environ, "RMFORGE_LLM_API_KEY": CANARY_KEY, "RMFORGE_SERVE_API_KEY": CANARY_KEY + "-serve",
           "RMFORGE_PROFILE": "production", "RMFORGE_LLM_BASE_URL": "https://llm.example/v1"}
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", "settings", "--verbose"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert CANARY_KEY not in done.stdout + done.stderr
    assert done.stdout.count("set (masked)") == 2 and "https://llm.example/v1" in done.stdout


def test_settings_refuses_a_bad_value_naming_the_variable(capsys, monkeypatch):
    monkeypatch.setenv("RMFORGE_TRAIN_WORKERS", "many")
    assert main(["settings"]) == 2
    assert "RMFORGE_TRAIN_WORKERS='many'" in capsys.readouterr().err


def test_the_embedded_endpoint_reaches_the_llm_resource_as_config(monkeypatch):
    """rmforge run rebuilds each job with the embedded server's URL as arguments: the llm
    resource gets it as config, and the environment is left as it was."""
    import os

    from dagster_project.cli import _endpoint, job_definition, run_settings

    monkeypatch.delenv("RMFORGE_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("RMFORGE_LLM_MODEL", raising=False)
    settings = run_settings("http://127.0.0.1:5123/v1", "smollm2-135m-instruct")
    assert _endpoint(settings) == {"llm_base_url": "http://127.0.0.1:5123/v1", "llm_model": "smollm2-135m-instruct"}
    job = job_definition("main_job", **_endpoint(settings))
    config = job.resource_defs["llm"].config_schema.default_value  # the llm resource's config in a run
    assert (config["base_url"], config["model"]) == ("http://127.0.0.1:5123/v1", "smollm2-135m-instruct")
    assert "RMFORGE_LLM_BASE_URL" not in os.environ
    assert job_definition("main_job").resource_defs["llm"].config_schema.default_value["base_url"] is None
    monkeypatch.setenv("RMFORGE_LLM_BASE_URL", "https://llm.example/v1")
    assert _endpoint(run_settings()) == {}  # a configured endpoint: every process reads it itself


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


def test_the_run_summary_names_the_served_model_and_why(tmp_path):
    from dagster_project.cli import _summary
    from rm_resources.store import Store
    from rm_rewards.benchmarks.promotion import PromotionDecision, PromotionRule

    store = Store(str(tmp_path / "w.duckdb"))
    assert "Served model" not in _summary(store, ["helpsteer2"])  # nothing decided yet: nothing claimed
    decision = PromotionDecision(served="checkpoint:bt-1", candidate="checkpoint:bt-1", current=None,
                                 status="promoted", gate_passed=True, reason="the best on rm_bench",
                                 benchmark="rm_bench", candidate_headline=0.6)
    store.write_promotion(decision, PromotionRule(), leaderboard_run_id=None, run_id="r1")
    summary = _summary(store, ["helpsteer2"])
    assert "Served model: checkpoint:bt-1 (promoted: the best on rm_bench)" in summary
    assert "rmforge serve" in summary
