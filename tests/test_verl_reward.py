"""verl reward function: verdict / score parsing, rewards, and recorded parse failures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from training.verl_reward import compute_score, parse_score, parse_verdict, task_of

PAIRWISE = "rmforge/pairwise/hh_rlhf"
POINTWISE = "rmforge/pointwise/helpsteer2"


@pytest.mark.parametrize(
    ("answer", "truth", "score", "parsed"),
    [
        ("B is more careful. <verdict>B</verdict>", "B", 1.0, "B"),
        ("<verdict> a </verdict>", "A", 1.0, "A"),
        ("<verdict>A</verdict>", "B", 0.0, "A"),
        ("Both fine. <VERDICT>Tie</VERDICT>", "tie", 1.0, "tie"),
        ("<verdict>tie</verdict>", "A", 0.0, "tie"),
        ("first <verdict>A</verdict>, on reflection <verdict>B</verdict>", "B", 1.0, "B"),
    ],
)
def test_pairwise_reward_is_one_exactly_on_a_matching_verdict(answer, truth, score, parsed):
    result = compute_score(PAIRWISE, answer, truth, {"task": "pairwise"})
    assert result == {"score": score, "parsed": parsed, "error": "", "parse_ok": 1.0}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [("A is better.", "no <verdict>"), ("<verdict>C</verdict>", "not A, B or tie"), ("", "no <verdict>")],
)
def test_unreadable_verdicts_score_zero_and_say_why(answer, reason):
    result = compute_score(PAIRWISE, answer, "A")
    assert result["score"] == 0.0 and result["parse_ok"] == 0.0 and reason in result["error"]


@pytest.mark.parametrize(("predicted", "truth"), [("3", "3"), ("4", "0"), ("2.5", "1"), ("0", "4")])
def test_pointwise_reward_decays_with_the_distance_to_the_label(predicted, truth):
    result = compute_score(POINTWISE, f"Helpful overall. <score>{predicted}</score>", truth)
    assert result["score"] == pytest.approx(math.exp(-2 * abs(float(predicted) - float(truth)) / 4))
    assert result["error"] == "" and float(result["parsed"]) == float(predicted)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("<score>five</score>", "not a number"),
        ("<score>7</score>", "outside 0..4"),
        ("<score>-1</score>", "outside"),
        ("I'd say 3", "no <score>"),
    ],
)
def test_unreadable_scores_score_zero_and_say_why(answer, reason):
    result = compute_score(POINTWISE, answer, "3")
    assert result["score"] == 0.0 and reason in result["error"]


def test_bad_labels_and_unknown_sources_are_errors_not_crashes():
    assert "bad ground truth" in compute_score(PAIRWISE, "<verdict>A</verdict>", "C")["error"]
    assert "bad ground truth" in compute_score(POINTWISE, "<score>2</score>", "n/a")["error"]
    assert "unknown task" in compute_score("openai/gsm8k", "<verdict>A</verdict>", "A")["error"]


def test_task_comes_from_extra_info_first_then_the_data_source():
    assert task_of("anything", {"task": "pointwise"}) == "pointwise"
    assert task_of(PAIRWISE, None) == "pairwise" and task_of("rmforge", None) == ""
    assert parse_verdict("<verdict>b</verdict>") == ("B", "")
    assert parse_score("<score>3.5</score>") == (3.5, "")


def test_reward_module_runs_on_the_standard_library_alone():
    # verl imports the file by path in its own venv: no rmforge, no pydantic. -S drops site-packages.
    path = Path(__file__).resolve().parent.parent / "training" / "verl_reward.py"
    code = (
        f"import runpy, json; f = runpy.run_path({str(path)!r})['compute_score'];"
        "print(json.dumps(f(data_source='rmforge/pairwise/x', solution_str='<verdict>A</verdict>',"
        " ground_truth='A', extra_info={'index': 3})))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], check=False, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["score"] == 1.0
