"""JudgeBench (ScalerLab/JudgeBench), scored as its `utils/metrics.py` `compute_final_metrics` does.

Each pair has a label, `A>B` or `B>A`, saying which of response_A / response_B is objectively
correct. A judge is asked the pair as (A, B) and, by default, again as (B, A); the second decision
is flipped (`A>B` <-> `B>A`; anything else, e.g. `A=B` or a failed None, stays as it is). Then:

    sum = Σ over the decisions of (+1 if decision == label, -1 if decision == flip(label), else 0)
    correct when sum > 0

so a failed (None) or tied (`A=B`) judgement adds 0: one correct decision and one failed still
make a correct pair; one correct and one wrong make a sum of 0, which is not correct. Asked in one
order only (JudgeBench's `--single_game`), a pair is correct when its decision equals the label.
Accuracy is the share of correct pairs, overall and per category, a category being the first of
`CATEGORIES` that the row's `source` starts with (`run_judge.py` filters with
`source.startswith(category)`; "mmlu-pro-physics" is "mmlu-pro").

Score-based models (rule rewards, checkpoints, pointwise judges) decide each order as JudgeBench's
reward-model judges do: `A>B` if score(shown first) > score(shown second) else `B>A`. JudgeBench's
published reward-model results ask both orders (two judgements per pair in its outputs), so a
score-based model is scored in both orders: a strict win is +2 or -2, and an exact tie is `B>A` in
each order, i.e. B then (flipped) A, which sums to 0 and is not correct whatever the label. Ties
are counted (`n_score_ties`). A None score is a failed judgement in both orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from rm_rewards.benchmarks.consistency import JudgedPair
from rm_rewards.benchmarks.items import BenchmarkItem
from rm_rewards.benchmarks.report_models import HeadlineCoverage, JudgeBenchGroupResult, JudgeBenchReport

CATEGORIES = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")
LABELS = ("A>B", "B>A")

Decision = str | None  # "A>B", "B>A", "A=B" (some judges), or None: no judgement


def category_of(source: str) -> str:
    """The JudgeBench category a `source` value belongs to; an unknown source is its own."""
    return next((c for c in CATEGORIES if source.startswith(c)), source)


def flip(decision: Decision) -> Decision:
    """JudgeBench's `flip_judgment`: swaps `A>B` and `B>A`, leaves anything else unchanged."""
    return {"A>B": "B>A", "B>A": "A>B"}.get(decision, decision) if decision is not None else None


def pair_sum(label: str, decisions: Sequence[Decision]) -> int:
    """+1 per decision equal to the label, -1 per decision equal to the flipped label."""
    return sum(1 if d == label else -1 if d == flip(label) else 0 for d in decisions)


def is_correct(label: str, decisions: Sequence[Decision], reverse_order: bool) -> bool:
    """Both orders: the sum is positive. One order: the one decision equals the label."""
    return pair_sum(label, decisions) > 0 if reverse_order else decisions[0] == label


def label_of(item: BenchmarkItem) -> str:
    return item.metadata["label"]


def a_index(item: BenchmarkItem) -> int:
    """Which of the item's responses (correct first) was JudgeBench's response_A."""
    return int(item.metadata["a_index"])


def decision_from_scores(first: float | None, second: float | None) -> Decision:
    """One order of a score-based model: `A>B` if the first shown scores higher, else `B>A`."""
    if first is None or second is None:
        return None
    return "A>B" if first > second else "B>A"


def decisions_from_scores(item: BenchmarkItem, scores: Sequence[float | None]) -> list[Decision]:
    """(A, B) then (B, A) flipped, from one score per response (item order)."""
    a = a_index(item)
    score_a, score_b = scores[a], scores[1 - a]
    return [decision_from_scores(score_a, score_b), flip(decision_from_scores(score_b, score_a))]


WINNER_DECISIONS: dict[str, str] = {"a": "A>B", "b": "B>A", "tie": "A=B"}


def _group(name: str, correct: list[bool]) -> JudgeBenchGroupResult:
    n = len(correct)
    return JudgeBenchGroupResult(group=name, n_items=n, n_correct=sum(correct), accuracy=sum(correct) / n)


def judge_bench_report(
    items: Sequence[BenchmarkItem],
    decisions: Mapping[str, Sequence[Decision]],
    *,
    reverse_order: bool,
    method: Literal["scores", "verdicts"],
    n_score_ties: int | None = None,
    missing: set[str] | frozenset[str] = frozenset(),
) -> JudgeBenchReport:
    """The report from each pair's decisions in JudgeBench's own orientation: `[decision on (A, B),
    flip(decision on (B, A))]` (one element for one order). A pair absent from `decisions` was not
    judged: its decisions are None (JudgeBench: a judgement that raised)."""
    if not items:
        raise ValueError("judge_bench: no items to score")
    n_orders = 2 if reverse_order else 1
    correct: dict[str, bool] = {}
    sums: dict[str, int] = {}
    failed = inconsistent = 0
    for item in items:
        pair = list(decisions.get(item.id, [None] * n_orders))
        if len(pair) != n_orders:
            raise ValueError(f"judge_bench: item {item.id!r} has {len(pair)} decisions for {n_orders} order(s)")
        failed += any(d is None for d in pair)
        inconsistent += reverse_order and pair[0] != pair[1]
        sums[item.id] = pair_sum(label_of(item), pair)
        correct[item.id] = is_correct(label_of(item), pair, reverse_order)
    by_category: dict[str, list[bool]] = {}
    by_model: dict[str, list[bool]] = {}
    for item in items:
        by_category.setdefault(item.domain, []).append(correct[item.id])
        by_model.setdefault(str(item.metadata.get("response_model", "")), []).append(correct[item.id])
    order = [c for c in CATEGORIES if c in by_category] + sorted(set(by_category) - set(CATEGORIES))
    n_correct = sum(correct.values())
    return JudgeBenchReport(
        reverse_order=reverse_order,
        method=method,
        n_items=len(items),
        n_failed=failed,
        n_missing=sum(1 for item in items if item.id in missing),
        n_correct=n_correct,
        n_incorrect=sum(1 for s in sums.values() if s < 0) if reverse_order else len(items) - n_correct,
        n_undecided=sum(1 for s in sums.values() if s == 0) if reverse_order else 0,
        n_inconsistent=inconsistent if reverse_order else None,
        n_score_ties=n_score_ties,
        accuracy=n_correct / len(items),
        categories=[_group(c, by_category[c]) for c in order],
        response_models=[_group(m, by_model[m]) for m in sorted(by_model)],
        extra_categories=sorted(set(by_category) - set(CATEGORIES)),
        coverage=HeadlineCoverage(part="category", required=list(CATEGORIES),
                                  present=[c for c in CATEGORIES if c in by_category]),
    )


def report_from_scores(
    items: Sequence[BenchmarkItem], rows: Mapping[str, Sequence[float | None]], missing: set[str]
) -> JudgeBenchReport:
    """Score-based models, both orders (see the module docstring); `rows` has every item."""
    decisions = {item.id: decisions_from_scores(item, rows[item.id]) for item in items}
    ties = sum(1 for item in items if None not in rows[item.id] and rows[item.id][0] == rows[item.id][1])
    return judge_bench_report(items, decisions, reverse_order=True, method="scores", n_score_ties=ties,
                              missing=missing)


def _decision(verdict: JudgedPair | None) -> Decision:
    return None if verdict is None or verdict.winner is None else WINNER_DECISIONS[verdict.winner]


def report_from_verdicts(
    items: Sequence[BenchmarkItem], verdicts: Sequence[JudgedPair], *, reverse_order: bool
) -> JudgeBenchReport:
    """Pairwise judges: the verdict on (A, B) is the first decision, the verdict on (B, A) flipped
    the second; a tie verdict is `A=B`, a failed or never-asked one None (both add 0)."""
    asked = {(v.item_id, v.first, v.second): v for v in verdicts}
    decisions = {}
    for item in items:
        a, b = a_index(item), 1 - a_index(item)
        pair = [_decision(asked.get((item.id, a, b)))]
        if reverse_order:
            pair.append(flip(_decision(asked.get((item.id, b, a)))))
        decisions[item.id] = pair
    return judge_bench_report(items, decisions, reverse_order=reverse_order, method="verdicts")
