"""`rmforge run` end to end on the embedded defaults (llama.cpp server, bundled data, DuckDB, Ray),
with a tiny training budget, one dataset partition and a few rows: what `make run` does, in a few minutes.
It must exit 0, land every stage, and a benchmark number of the trained checkpoint must audit back
to raw HH-RLHF rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.embedded_llm
@pytest.mark.timeout(1500)  # ~4 min on 2 free cores: two runs, the first with the LLM stages and training
def test_rmforge_run_lands_every_stage_and_audits_to_raw_rows(tmp_path):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "RMFORGE_DATA_DIR": str(tmp_path / "data"),
        "RMFORGE_DATASET_LIMIT": "40",
        "RMFORGE_PROFILE": "local",
        # Baselines: the rule only; the LLM judge is benchmarked with the learned principles.
        "RMFORGE_BENCHMARK_MODELS": "reward:length_penalty",
    }
    env.pop("RMFORGE_LLM_BASE_URL", None)
    run = subprocess.run(
        # One dataset partition (the one the default checkpoint trains on) keeps the LLM stages short.
        [sys.executable, "-m", "dagster_project.cli", "run", "--training-steps", "2", "--partition", "hh_rlhf_harmless",
         "--judge-items", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-4000:]
    assert "Traceback" not in console, console[-4000:]
    for noise in ("Some weights of", "Tip:", "DeprecationWarning", "FutureWarning"):
        assert noise not in console, f"library noise {noise!r} on the console:\n{console[-4000:]}"
    assert "Leaderboard" in console and "Stages" in console

    from rm_resources.store import Store

    store = Store(str(tmp_path / "data" / "rmforge.duckdb"))
    for table in ("raw_rows", "converted_samples", "rule_scores", "principle_sets", "llm_scores",
                  "refined_samples", "training_pairs", "rm_checkpoints", "benchmark_scores",
                  "benchmark_summaries", "leaderboard"):
        assert sum(store.count_by_partition(table).values()) > 0, f"{table} is empty"
    leaderboard = store.read_leaderboard()
    assert any(key.startswith("checkpoint:") for key in leaderboard["model_key"])
    assert any(key.startswith("principles:") for key in leaderboard["model_key"])

    # A warm rerun recomputes nothing: same rows, same code, same training pairs.
    rerun = subprocess.run(run.args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "main_job [hh_rlhf_harmless]: up to date" in rerun.stdout
    assert "already trained on these pairs with this config, skipped" in rerun.stdout
    assert "done in" not in rerun.stdout.replace("leaderboard_job: done in", ""), rerun.stdout

    match = re.search(r"rmforge audit benchmark_reports '([^']+)'", console)
    assert match, console[-2000:]
    audit = subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "audit", "benchmark_reports", match.group(1), "--limit", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    raw_hashes = set(store.raw_row_hashes("hh_rlhf_harmless"))
    named = set(re.findall(r"\b[0-9a-f]{32}\b", audit.stdout))
    assert named & raw_hashes, audit.stdout[-3000:]
    for asset in ("benchmark_reports", "rm_checkpoints", "training_pairs", "converted_samples", "raw_rows"):
        assert asset in audit.stdout
