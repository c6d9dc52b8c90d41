"""JudgeBench: hand-written rows in its schema (no rows are bundled), the loader, and scoring as
JudgeBench's `compute_final_metrics` does, checked against hand-computed values: both orders with
the second decision flipped, +1/-1 per decision, failures adding 0, ties, categories by `source`
prefix; score-based models, pairwise judges (one and both orders) and an LLM judge over HTTP."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from rm_rewards.benchmarks.evaluate import aevaluate_model, evaluate
from rm_rewards.benchmarks.judge_bench import (
    category_of,
    flip,
    judge_bench_report,
    pair_sum,
)
from rm_rewards.benchmarks.loaders import (
    BenchmarkFormatError,
    NoBenchmarkSource,
    benchmark_source,
    load_benchmark,
    load_files,
    load_from_hub,
)
from rm_rewards.benchmarks.metrics import score_benchmark
from rm_rewards.benchmarks.model_keys import RewardModel
from rm_rewards.core import registry
from rm_rewards.core.kinds import PairwiseReward, PairwiseVerdict
from rm_rewards.core.schema import Sample
from rm_rewards.llm.client import LLMClient

GPT, CLAUDE = "gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620"


def row(pair_id: str, source: str, label: str, a: str, b: str, model: str = GPT) -> dict[str, Any]:
    return {"pair_id": pair_id, "original_id": f"orig-{pair_id}", "source": source,
            "question": f"Question {pair_id}?", "response_model": model,
            "response_A": a, "response_B": b, "label": label}


# Six pairs over the four categories; the labelled better answer says CORRECT (for the fake judge)
# and is longer, except in p6 where both answers have the same length.
ROWS = [
    row("p1", "mmlu-pro-physics", "A>B", "CORRECT: the answer is (B) 4 m/s", "(C)"),
    row("p2", "mmlu-pro-law", "B>A", "(A)", "CORRECT: the answer is (D) hearsay"),
    row("p3", "livebench-reasoning", "A>B", "CORRECT: the third person lies", "the first"),
    row("p4", "livebench-math", "B>A", "x = 3", "CORRECT: x = 7, check: 7*7=49"),
    row("p5", "livecodebench", "A>B", "CORRECT: def f(n): return n * 2", "pass", model=CLAUDE),
    row("p6", "livebench-math", "B>A", "wrong: 12", "CORRECT 21", model=CLAUDE),
]


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "judge_bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest.fixture
def items(rows_file: Path) -> list:
    return load_files("judge_bench", [rows_file])


# --- loading ---------------------------------------------------------------------------------------


def test_rows_load_correct_first_with_their_order_label_and_category(items) -> None:
    assert [i.id for i in items] == ["p1", "p2", "p3", "p4", "p5", "p6"]
    p1, p2 = items[0], items[1]
    assert p1.responses == [ROWS[0]["response_A"], ROWS[0]["response_B"]] and p1.metadata["a_index"] == 0
    assert p2.responses == [ROWS[1]["response_B"], ROWS[1]["response_A"]] and p2.metadata["a_index"] == 1
    assert (p1.n_correct, p1.domain, p1.metadata["source"], p1.metadata["label"]) == (
        1, "mmlu-pro", "mmlu-pro-physics", "A>B")
    assert [i.domain for i in items] == ["mmlu-pro", "mmlu-pro", "livebench-reasoning", "livebench-math",
                                         "livecodebench", "livebench-math"]
    assert items[4].metadata["response_model"] == CLAUDE and p1.input[0].content == "Question p1?"


def test_category_is_the_source_prefix_as_run_judge_filters_it() -> None:
    assert category_of("mmlu-pro-computer science") == "mmlu-pro"
    assert category_of("mmlu-pro-math") == "mmlu-pro"  # not livebench-math
    assert category_of("livebench-reasoning") == "livebench-reasoning"
    assert category_of("something-else") == "something-else"


def test_bad_rows_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({**ROWS[0], "label": "A=B"}) + "\n")
    with pytest.raises(BenchmarkFormatError, match=r"bad.jsonl row 0, field 'label'.*'A>B', 'B>A'"):
        load_files("judge_bench", [path])
    path.write_text(json.dumps({k: v for k, v in ROWS[0].items() if k != "response_B"}) + "\n")
    with pytest.raises(BenchmarkFormatError, match="field 'response_B': missing"):
        load_files("judge_bench", [path])


def test_hub_loads_both_response_model_splits() -> None:
    asked = []

    def loader(repo_id: str, split: str) -> list[dict[str, Any]]:
        asked.append((repo_id, split))
        return [r for r in ROWS if (r["response_model"] == GPT) == (split == "gpt")]

    loaded = load_from_hub("judge_bench", dataset_loader=loader)
    assert asked == [("ScalerLab/JudgeBench", "gpt"), ("ScalerLab/JudgeBench", "claude")]
    assert sorted(i.id for i in loaded) == [r["pair_id"] for r in ROWS]


def test_no_rows_are_bundled_and_no_source_says_how_to_configure_one(rows_file: Path) -> None:
    with pytest.raises(NoBenchmarkSource, match=r"judge_bench has no bundled rows.*benchmark_files.*mode: hub"):
        load_benchmark("judge_bench")
    with pytest.raises(NoBenchmarkSource, match="benchmark_files"):
        benchmark_source("judge_bench", mode="bundled")
    assert benchmark_source("judge_bench", mode="hub").describe() == "hub: ScalerLab/JudgeBench [gpt+claude]"
    source = benchmark_source("judge_bench", files={"judge_bench": [str(rows_file)]})
    assert source.kind == "files" and [i.id for i in source.load()] == [r["pair_id"] for r in ROWS]
    # RMB has no hub dataset: in hub mode it has no source unless files are given
    with pytest.raises(NoBenchmarkSource, match="rmb_bon has no hub dataset"):
        benchmark_source("rmb_bon", mode="hub")
    assert benchmark_source("rm_bench").kind == "bundled"


# --- the scoring rule, decision by decision ---------------------------------------------------------


def test_flip_and_the_decision_sum() -> None:
    assert (flip("A>B"), flip("B>A"), flip("A=B"), flip(None)) == ("B>A", "A>B", "A=B", None)
    assert pair_sum("A>B", ["A>B", "A>B"]) == 2
    assert pair_sum("A>B", ["A>B", "B>A"]) == 0
    assert pair_sum("A>B", ["A>B", None]) == 1  # a failed judgement adds 0
    assert pair_sum("A>B", ["A=B", "B>A"]) == -1  # a tie verdict adds 0
    assert pair_sum("B>A", [None, None]) == 0


def test_report_from_decisions_matches_hand_computed_values(items) -> None:
    # decisions in JudgeBench's orientation: [on (A, B), flip(on (B, A))]
    decisions = {
        "p1": ["A>B", "A>B"],  # label A>B: +2 correct
        "p2": ["B>A", "A>B"],  # label B>A: +1 -1 = 0, undecided, inconsistent
        "p3": ["A>B", None],  # +1 + 0: correct although one judgement failed
        "p4": [None, None],  # 0: failed, undecided
        "p5": ["A=B", "B>A"],  # label A>B: 0 - 1: incorrect
        # p6 absent: never judged, both None
    }
    report = judge_bench_report(items, decisions, reverse_order=True, method="verdicts")
    assert (report.n_correct, report.n_incorrect, report.n_undecided) == (2, 1, 3)
    assert report.accuracy == pytest.approx(2 / 6)
    # failed: p3, p4, p6; inconsistent (decision 1 != decision 2, None included): p2, p3, p5
    assert (report.n_failed, report.n_inconsistent) == (3, 3)
    by = {c.group: (c.n_items, c.n_correct) for c in report.categories}
    assert by == {"mmlu-pro": (2, 1), "livebench-reasoning": (1, 1), "livebench-math": (2, 0),
                  "livecodebench": (1, 0)}
    assert [(m.group, m.n_items, m.n_correct) for m in report.response_models] == [(CLAUDE, 2, 0), (GPT, 4, 2)]
    assert not report.coverage.is_partial and report.headline == pytest.approx(2 / 6)

    once = judge_bench_report(items, {k: v[:1] for k, v in decisions.items()}, reverse_order=False,
                              method="verdicts")
    # one order: correct when the decision equals the label: p1, p2, p3
    assert once.n_correct == 3 and once.n_inconsistent is None and once.n_undecided == 0


def test_missing_categories_make_the_accuracy_partial(items) -> None:
    math_only = [i for i in items if i.domain == "livebench-math"]
    report = judge_bench_report(math_only, {"p4": ["B>A", "B>A"], "p6": ["A>B", "A>B"]},
                                reverse_order=True, method="verdicts")
    assert report.accuracy == 0.5 and report.headline is None and report.partial_headline == 0.5
    assert report.coverage.describe() == (
        "1 of 4 categories (missing: mmlu-pro, livebench-reasoning, livecodebench)")
    summary = report.summary()
    assert summary["accuracy"] is None and summary["accuracy_over_present"] == 0.5
    assert "**overall (partial)**" in report.to_markdown()


# --- score-based models -----------------------------------------------------------------------------


def test_scores_decide_each_order_and_ties_go_to_b_in_both(items) -> None:
    # one score per response in item order (correct first)
    table = {
        "p1": [2.0, 1.0],  # correct higher: A>B in (A,B), B>A flipped back to A>B: +2
        "p2": [0.0, 3.0],  # correct lower: -2
        "p3": [1.0, 1.0],  # tie, label A>B: B>A then flip(B>A)=A>B: 0, not correct
        "p4": [1.0, 1.0],  # tie, label B>A: also 0 (asked once it would have been correct)
        "p5": [None, 1.0],  # failed in both orders: 0
        "p6": [5.0, 4.0],  # +2
    }
    report = score_benchmark("judge_bench", items, table)
    assert (report.n_correct, report.n_incorrect, report.n_undecided) == (2, 1, 3)
    assert (report.n_score_ties, report.n_failed, report.method) == (2, 1, "scores")
    assert report.accuracy == pytest.approx(2 / 6) and report.reverse_order
    by = {c.group: c.accuracy for c in report.categories}
    assert by == {"mmlu-pro": 0.5, "livebench-reasoning": 0.0, "livebench-math": 0.5, "livecodebench": 0.0}
    text = report.to_markdown()
    assert "2 pairs had exactly equal scores" in text and "sum to 0" in text


def test_a_rule_reward_on_judge_bench(items) -> None:
    result = evaluate("judge_bench", items, RewardModel(reward="length_penalty").build())
    assert result.method == "scores" and result.report.n_items == 6
    assert result.headline_metric == "accuracy" and not result.is_partial
    assert result.headline == result.report.accuracy


# --- pairwise judges --------------------------------------------------------------------------------


class SaysCorrect(PairwiseReward):
    """Picks the answer that says CORRECT, except: p3 always "a" (position bias), p5 fails when
    the correct answer is shown second."""

    def compare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        item = sample.metadata["item_id"]
        if item == "p3":
            return PairwiseVerdict(winner="a")
        if item == "p5" and j == 0:
            return PairwiseVerdict(error="unreadable")
        return PairwiseVerdict(winner="a" if "CORRECT" in sample.responses[i].text else "b")


def test_pairwise_judge_both_orders_flips_failures_and_consistency(items) -> None:
    result = evaluate("judge_bench", items, SaysCorrect())
    assert result.method == "pair_verdicts" and len(result.verdicts) == 12
    # asked in JudgeBench's order: response_A first (p2's A is the incorrect answer, index 1)
    first_asked = {v.item_id: (v.first, v.second) for v in result.verdicts[::2]}
    assert first_asked["p1"] == (0, 1) and first_asked["p2"] == (1, 0)
    report = result.report
    # p1 p2 p4 p6: +2; p3: A>B then flip(A>B)=B>A: 0; p5: +1 and a failure (0): correct
    assert (report.n_correct, report.n_undecided, report.n_failed) == (5, 1, 1)
    assert result.headline == pytest.approx(5 / 6)
    assert result.consistency.position_flips == 1 and result.consistency.flipped_pairs == [("p3", 0, 1)]
    assert result.consistency.n_failed_verdicts == 1

    once = evaluate("judge_bench", items, SaysCorrect(), pair_orders="one")
    assert len(once.verdicts) == 6 and not once.report.reverse_order
    # p3's bias goes unseen asked once (its A is the correct one); p5 asked (A, B) is fine
    assert once.report.n_correct == 6


def winner_by_marker(body: dict[str, Any]) -> str:
    """The fake LLM judge: the answer that says CORRECT wins; p3's prompts get "A" (position bias)."""
    text = body["messages"][-1]["content"]
    answers = dict(re.findall(r'<answer label="([AB])">\n(.*?)\n</answer>', text, flags=re.DOTALL))
    if "the third person lies" in text:
        return json.dumps({"critique": "first one", "winner": "A"})
    return json.dumps({"critique": "", "winner": "A" if "CORRECT" in answers["A"] else "B"})


def test_llm_pairwise_judge_over_http(items, fake_openai: Any, llm_config: Any) -> None:
    registry.specs()
    fake_openai.set_responder(winner_by_marker)
    client = LLMClient(llm_config(fake_openai))
    result = asyncio.run(aevaluate_model("judge_bench", items, RewardModel(reward="llm_pairwise_judge"),
                                         client=client))
    assert fake_openai.request_count == 12
    assert result.report.n_correct == 5 and result.report.n_undecided == 1  # p3 flips
    assert result.consistency.flipped_pairs == [("p3", 0, 1)]
    assert result.headline == pytest.approx(5 / 6)
