"""Reward function for GRPO training of a generative reward model with verl (stdlib only).

verl imports this file by path inside its own venv (`reward.custom_reward_function.path`) and calls
`compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)` once per
rollout. It must import nothing beyond the standard library: the verl venv has no rmforge.

The policy is asked (see training/verl_export.py for the prompts) to end its answer with
  pairwise:  <verdict>A</verdict> | <verdict>B</verdict> | <verdict>tie</verdict>
  pointwise: <score>N</score>   with N a helpfulness score from 0 to 4
The last tag in the answer counts. Rewards: pairwise 1.0 when the verdict equals the label, else
0.0; pointwise exp(-2 * |predicted - true| / 4). An answer without a readable tag scores 0.0 and
says why in "error"; verl logs every key of the returned dict per rollout.
"""

from __future__ import annotations

import math
import re
from typing import Any

PAIRWISE = "pairwise"
POINTWISE = "pointwise"
DATA_SOURCE_PREFIX = "rmforge"
SCORE_RANGE = (0.0, 4.0)

_VERDICT_TAG = re.compile(r"<verdict>\s*(.*?)\s*</verdict>", re.IGNORECASE | re.DOTALL)
_SCORE_TAG = re.compile(r"<score>\s*(.*?)\s*</score>", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_VERDICTS = {"a": "A", "b": "B", "tie": "tie"}


def task_of(data_source: str, extra_info: dict[str, Any] | None = None) -> str:
    """`extra_info["task"]` when present, else the task in a data source named 'rmforge/<task>/<dataset>'."""
    if extra_info and extra_info.get("task"):
        return str(extra_info["task"])
    parts = str(data_source).split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == DATA_SOURCE_PREFIX else ""


def parse_verdict(text: str) -> tuple[str | None, str]:
    """('A' | 'B' | 'tie', '') from the last <verdict> tag, or (None, reason)."""
    found = _VERDICT_TAG.findall(text or "")
    if not found:
        return None, "no <verdict>...</verdict> tag"
    verdict = _VERDICTS.get(found[-1].strip().lower())
    if verdict is None:
        return None, f"verdict {found[-1][:40]!r} is not A, B or tie"
    return verdict, ""


def parse_score(text: str) -> tuple[float | None, str]:
    """(score, '') from the last <score> tag if it is a number in 0..4, or (None, reason)."""
    found = _SCORE_TAG.findall(text or "")
    if not found:
        return None, "no <score>...</score> tag"
    raw = found[-1].strip()
    if not _NUMBER.match(raw):
        return None, f"score {raw[:40]!r} is not a number"
    value = float(raw)
    if not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:
        return None, f"score {value:g} is outside {SCORE_RANGE[0]:g}..{SCORE_RANGE[1]:g}"
    return value, ""


def _result(score: float, parsed: str = "", error: str = "") -> dict[str, Any]:
    # Same keys and types for every rollout: verl stacks them into arrays across the batch.
    return {"score": score, "parsed": parsed, "error": error, "parse_ok": 0.0 if error else 1.0}


def _pairwise(solution_str: str, ground_truth: Any) -> dict[str, Any]:
    label = _VERDICTS.get(str(ground_truth).strip().lower())
    if label is None:
        return _result(0.0, error=f"bad ground truth {ground_truth!r} for a pairwise row")
    verdict, reason = parse_verdict(solution_str)
    if verdict is None:
        return _result(0.0, error=reason)
    return _result(1.0 if verdict == label else 0.0, parsed=verdict)


def _pointwise(solution_str: str, ground_truth: Any) -> dict[str, Any]:
    try:
        truth = float(ground_truth)
    except (TypeError, ValueError):
        return _result(0.0, error=f"bad ground truth {ground_truth!r} for a pointwise row")
    predicted, reason = parse_score(solution_str)
    if predicted is None:
        return _result(0.0, error=reason)
    span = SCORE_RANGE[1] - SCORE_RANGE[0]
    return _result(math.exp(-2.0 * abs(predicted - truth) / span), parsed=f"{predicted:g}")


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **_: Any
) -> dict[str, Any]:
    """verl's reward-function signature; returns {"score", "parsed", "error", "parse_ok"}."""
    task = task_of(data_source, extra_info)
    if task == PAIRWISE:
        return _pairwise(solution_str, ground_truth)
    if task == POINTWISE:
        return _pointwise(solution_str, ground_truth)
    return _result(0.0, error=f"unknown task for data source {data_source!r}")
