"""A dataset registered in a datasets file, with no code change, runs through the whole chain:
`rmforge run --partition <it> --train-on <it>` lands raw rows, samples, scores, principles,
refinements, training pairs, a checkpoint trained on it and its benchmark reports.

The LLM is the fake OpenAI-compatible server over real HTTP on loopback (its answers are not
judgements, so LLM scores carry parse errors: the chain records them and goes on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_openai import ThreadedFakeOpenAI

ROOT = Path(__file__).resolve().parent.parent

TOPICS = ["tea", "bicycles", "tides", "compilers", "bread", "volcanoes", "chess", "rain", "maps", "bees"]


def _trl_rows() -> list[dict]:
    """TRL's standard explicit-prompt form: prompt, chosen, rejected strings."""
    rows = []
    for i in range(48):
        topic = TOPICS[i % len(TOPICS)]
        rows.append({
            "prompt": f"Question {i}: explain {topic} to a curious student.",
            "chosen": f"{topic.capitalize()} are worth understanding. Here is a clear explanation with an "
                      f"example, step {i}, and a short summary at the end.",
            "rejected": "no idea",
        })
    return rows


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_configured_dataset_runs_through_the_whole_chain(tmp_path):
    data = tmp_path / "team_prefs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in _trl_rows()), encoding="utf-8")
    config = tmp_path / "datasets.yaml"
    config.write_text("datasets:\n  team_prefs:\n    format: trl\n    path: team_prefs.jsonl\n", encoding="utf-8")

    with ThreadedFakeOpenAI() as server:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(tmp_path / "home"),
            "RMFORGE_DATA_DIR": str(tmp_path / "data"),
            "RMFORGE_DATASETS_FILE": str(config),
            "RMFORGE_PROFILE": "local",
            "RMFORGE_LLM_BASE_URL": server.base_url,
            "RMFORGE_LLM_MODEL": "fake-model",
            "RMFORGE_BENCHMARK_MODELS": "reward:length_penalty",
        }
        run = subprocess.run(
            [sys.executable, "-m", "dagster_project.cli", "run", "--partition", "team_prefs", "--train-on", "team_prefs",
             "--training-steps", "2", "--judge-items", "1"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1100,
        )
        assert server.request_count > 0  # the LLM stages really called the endpoint
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-4000:]

    from rm_resources.store import Store

    store = Store(str(tmp_path / "data" / "rmforge.duckdb"))
    for table in ("raw_rows", "converted_samples", "rule_scores", "principle_sets", "llm_scores",
                  "refined_samples", "training_pairs"):
        counts = store.count_by_partition(table)
        assert counts.get("team_prefs", 0) > 0, f"{table}: {counts}"
    assert set(store.count_by_partition("raw_rows")) == {"team_prefs"}  # only the configured dataset ran
    samples = store.read_samples("team_prefs")
    assert samples and all(s.source == "team_prefs" and s.task == "pairwise" for s in samples)
    assert sum(store.count_by_partition("rm_checkpoints").values()) == 1
    trained = store.read_leaderboard()
    assert any(key.startswith("checkpoint:") for key in trained["model_key"])
    assert any(key == "principles:team_prefs" for key in trained["model_key"]), trained
