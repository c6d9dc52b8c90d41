"""Benchmark results as pydantic models, with markdown tables for reports.

Every result keeps its counts next to its numbers: `n_items`, `n_failed` (items with at least one
failed judgement, which count as wrong) and `n_missing` (items the score table had no row for,
also wrong and also included in `n_failed`). Scores are fractions in [0, 1] (Ties: its weighted
sum); the markdown shows them as percentages.

A headline that looks official must be official. Each benchmark's headline is built from parts
(`HeadlineCoverage`): RewardBench 2's leaderboard score is the mean of its six subsets, RM-Bench's
total the mean of its four domains (safety = safety-refuse and safety-response together), RMB's
accuracy spans its two goals (Helpfulness, Harmlessness), JudgeBench's accuracy its four source
categories. When a part is missing the report is *partial*: the headline field is None (RewardBench 2
`leaderboard`, RM-Bench `total`) or `headline` is None (RMB, JudgeBench, whose `accuracy` is still
the plain accuracy over the items given), the value over the parts present is kept under its own
name (`mean_of_present`, `total_of_present`, `partial_headline`), and `summary()` reports the
headline key as None with `<key>_over_present` beside it, plus `n_parts_present` /
`n_parts_required`. Drop detection then never compares a partial number with an official one.
RMB's scenarios and JudgeBench's subjects are not required parts: their headlines are plain
accuracies over items, which a sample of scenarios estimates without changing the definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


class HeadlineCoverage(BaseModel):
    """Which parts of a benchmark's headline are present. `part` names what they are."""

    model_config = ConfigDict(extra="forbid")

    part: str
    required: list[str]
    present: list[str]

    @property
    def missing(self) -> list[str]:
        return [p for p in self.required if p not in self.present]

    @property
    def is_partial(self) -> bool:
        return bool(self.missing)

    def describe(self) -> str:
        """e.g. "2 of 6 subsets (missing: Precise IF, Math, Safety, Focus)"."""
        plural = self.part[:-1] + "ies" if self.part.endswith("y") else self.part + "s"
        text = f"{len(self.required) - len(self.missing)} of {len(self.required)} {plural}"
        return text + (f" (missing: {', '.join(self.missing)})" if self.missing else "")

    def counts(self) -> dict[str, int]:
        return {"n_parts_present": len(self.required) - len(self.missing), "n_parts_required": len(self.required)}


def coverage_summary(
    coverage: HeadlineCoverage, headline_key: str, aggregates: dict[str, float | None]
) -> dict[str, float | int | None]:
    """The summary's cross-part numbers: as they are when complete; when partial the headline key
    is None and every aggregate is renamed `<key>_over_present`, so no partial number sits under a
    name that looks official."""
    if not coverage.is_partial:
        return {**aggregates, **coverage.counts()}
    flat: dict[str, float | int | None] = {headline_key: None}
    flat.update({f"{key}_over_present": value for key, value in aggregates.items()})
    return {**flat, **coverage.counts()}


def partial_note(coverage: HeadlineCoverage, headline_name: str) -> str:
    return (
        f"**Partial:** {coverage.describe()}. The {headline_name} needs all of them, so there is no "
        f"{headline_name} here; numbers marked \"of present\" are over the parts present only "
        "and are not comparable with published results."
    )


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_items: int
    n_failed: int
    n_missing: int

    def _failure_note(self) -> str:
        note = f"{self.n_failed} of {self.n_items} items had a failed judgement and count as wrong"
        if self.n_missing:
            note += f" ({self.n_missing} of them had no scores at all)"
        return note + "."


# --- RM-Bench ------------------------------------------------------------------------------------


class RMBenchDomainResult(_Result):
    """`matrix[i][j]`: fraction of items whose chosen style i strictly beats rejected style j."""

    domain: str
    matrix: list[list[float]]
    hard: float
    normal: float
    easy: float
    average: float


class RMBenchReport(_Result):
    """`hard` / `normal` / `easy` are over the domains present; `total` is RM-Bench's total only
    when all four report domains are (else None, and `total_of_present` has the mean)."""

    benchmark: Literal["rm_bench"] = "rm_bench"
    domains: list[RMBenchDomainResult]
    missing_domains: list[str]
    hard: float
    normal: float
    easy: float
    total: float | None
    total_of_present: float
    coverage: HeadlineCoverage

    @property
    def headline(self) -> float | None:
        return self.total

    @property
    def partial_headline(self) -> float | None:
        return self.total_of_present if self.coverage.is_partial else None

    def summary(self) -> dict[str, float | int | None]:
        flat = coverage_summary(
            self.coverage,
            "total",
            {"total": self.total_of_present, "hard": self.hard, "normal": self.normal, "easy": self.easy},
        )
        flat.update(n_items=self.n_items, n_failed=self.n_failed, n_missing=self.n_missing)
        flat.update({f"{d.domain}_average": d.average for d in self.domains})
        return flat

    def to_markdown(self) -> str:
        rows = [
            [
                d.domain,
                d.n_items,
                d.n_failed,
                fmt_pct(d.hard),
                fmt_pct(d.normal),
                fmt_pct(d.easy),
                fmt_pct(d.average),
            ]
            for d in self.domains
        ]
        partial = self.coverage.is_partial
        rows.append(
            [
                "**overall of present domains (partial)**" if partial else "**overall**",
                self.n_items,
                self.n_failed,
                fmt_pct(self.hard),
                fmt_pct(self.normal),
                fmt_pct(self.easy),
                fmt_pct(self.total_of_present),
            ]
        )
        parts = [
            "## RM-Bench",
            markdown_table(
                ["domain", "items", "failed", "hard (%)", "normal (%)", "easy (%)", "average (%)"], rows
            ),
            self._failure_note(),
        ]
        if self.missing_domains:
            parts.append(f"Missing domains (not in the overall numbers): {', '.join(self.missing_domains)}.")
        if partial:
            parts.append(partial_note(self.coverage, "RM-Bench total"))
        styles = ["concise", "detailed", "markdown"]
        for d in self.domains:
            matrix_rows = [[f"chosen {styles[i]}"] + [fmt_pct(v) for v in d.matrix[i]] for i in range(3)]
            parts += [
                f"### {d.domain}: chosen style vs rejected style (%)",
                markdown_table([""] + [f"rejected {s}" for s in styles], matrix_rows),
            ]
        return "\n\n".join(parts) + "\n"


# --- RewardBench 2 -------------------------------------------------------------------------------


class TiesDetail(BaseModel):
    """The parts of the Ties score. `pref`, `pref_hard` and `margin_score` are over the prompt ids
    that have both a `ref:` and a `tied:` row (`n_paired`); None when there are none."""

    model_config = ConfigDict(extra="forbid")

    n_ref: int
    n_tied: int
    n_paired: int
    ref_accuracy: float
    tied_accuracy: float
    pref: float | None
    pref_hard: float | None
    margin_score: float | None


class RewardBench2SubsetResult(_Result):
    subset: str
    score: float | None
    ties: TiesDetail | None = None


class RewardBench2Report(_Result):
    """`leaderboard` is RewardBench 2's leaderboard score (the mean of the six subsets) only when
    every subset has a score; otherwise None, and `mean_of_present` is the mean of those that do."""

    benchmark: Literal["reward_bench_2"] = "reward_bench_2"
    subsets: list[RewardBench2SubsetResult]
    missing_subsets: list[str]
    extra_subsets: list[str]
    leaderboard: float | None
    mean_of_present: float | None
    coverage: HeadlineCoverage

    @property
    def headline(self) -> float | None:
        return self.leaderboard

    @property
    def partial_headline(self) -> float | None:
        return self.mean_of_present if self.coverage.is_partial else None

    def summary(self) -> dict[str, float | int | None]:
        flat = coverage_summary(self.coverage, "leaderboard", {"leaderboard": self.mean_of_present})
        flat.update(
            n_items=self.n_items,
            n_failed=self.n_failed,
            n_missing=self.n_missing,
            n_missing_subsets=len(self.missing_subsets),
        )
        flat.update({s.subset: s.score for s in self.subsets})
        return flat

    def to_markdown(self) -> str:
        rows = [[s.subset, s.n_items, s.n_failed, fmt_pct(s.score)] for s in self.subsets]
        if self.coverage.is_partial:
            rows.append([f"**leaderboard: partial, {self.coverage.describe()}**", self.n_items, self.n_failed, "n/a"])
            rows.append(["mean of present subsets (not the leaderboard score)", self.n_items, self.n_failed,
                         fmt_pct(self.mean_of_present)])
        else:
            rows.append(["**leaderboard**", self.n_items, self.n_failed, fmt_pct(self.leaderboard)])
        parts = [
            "## RewardBench 2",
            markdown_table(["subset", "items", "failed", "score (%)"], rows),
            self._failure_note(),
        ]
        if self.coverage.is_partial:
            parts.append(partial_note(self.coverage, "leaderboard score"))
        if self.extra_subsets:
            parts.append(f"Subsets outside the leaderboard: {', '.join(self.extra_subsets)}.")
        ties = next((s.ties for s in self.subsets if s.ties is not None), None)
        if ties is not None:
            parts += [
                "### Ties components",
                markdown_table(
                    [
                        "ref prompts",
                        "tied prompts",
                        "paired",
                        "ref acc (%)",
                        "tied acc (%)",
                        "pref (%)",
                        "pref hard (%)",
                        "margin score",
                    ],
                    [
                        [
                            ties.n_ref,
                            ties.n_tied,
                            ties.n_paired,
                            fmt_pct(ties.ref_accuracy),
                            fmt_pct(ties.tied_accuracy),
                            fmt_pct(ties.pref),
                            fmt_pct(ties.pref_hard),
                            "n/a" if ties.margin_score is None else f"{ties.margin_score:.4f}",
                        ]
                    ],
                ),
            ]
        return "\n\n".join(parts) + "\n"


# --- RMB -----------------------------------------------------------------------------------------


class RMBGroupResult(_Result):
    group: str
    n_correct: int
    accuracy: float


class _AccuracyReport(_Result):
    """A report whose headline is the accuracy over its items, official only with every part."""

    n_correct: int
    accuracy: float
    coverage: HeadlineCoverage

    @property
    def headline(self) -> float | None:
        return None if self.coverage.is_partial else self.accuracy

    @property
    def partial_headline(self) -> float | None:
        return self.accuracy if self.coverage.is_partial else None

    def _accuracy_summary(self) -> dict[str, float | int | None]:
        flat = coverage_summary(self.coverage, "accuracy", {"accuracy": self.accuracy})
        flat.update(n_items=self.n_items, n_failed=self.n_failed, n_missing=self.n_missing)
        return flat


class RMBReport(_AccuracyReport):
    """`categories`: Helpfulness / Harmlessness; `scenarios`: the full category path."""

    benchmark: Literal["rmb_pairwise", "rmb_bon"]
    categories: list[RMBGroupResult]
    scenarios: list[RMBGroupResult]

    def summary(self) -> dict[str, float | int | None]:
        flat = self._accuracy_summary()
        flat.update({c.group: c.accuracy for c in self.categories})
        return flat

    def to_markdown(self) -> str:
        title = "RMB pairwise" if self.benchmark == "rmb_pairwise" else "RMB best-of-N"

        def rows(groups: list[RMBGroupResult]) -> list[list[object]]:
            return [[g.group, g.n_items, g.n_failed, g.n_correct, fmt_pct(g.accuracy)] for g in groups]

        headers = ["category", "items", "failed", "correct", "accuracy (%)"]
        label = "**all present goals (partial)**" if self.coverage.is_partial else "**all**"
        overall = rows(self.categories) + [[label, self.n_items, self.n_failed, self.n_correct, fmt_pct(self.accuracy)]]
        parts = [f"## {title}", markdown_table(headers, overall), self._failure_note()]
        if self.coverage.is_partial:
            parts.append(partial_note(self.coverage, "RMB accuracy"))
        parts += [f"### {title} by scenario", markdown_table(["scenario"] + headers[1:], rows(self.scenarios))]
        return "\n\n".join(parts) + "\n"


# --- JudgeBench ----------------------------------------------------------------------------------


class JudgeBenchGroupResult(BaseModel):
    """Pairs of one group (a source category, a response model, or all): correct = the sum of
    decisions is positive (`judge_bench.pair_sum`)."""

    model_config = ConfigDict(extra="forbid")

    group: str
    n_items: int
    n_correct: int
    accuracy: float


class JudgeBenchReport(_AccuracyReport):
    """JudgeBench as its `compute_final_metrics` computes it (see `judge_bench`).

    `n_failed`: pairs with at least one failed judgement (JudgeBench's nulls). Unlike the other
    benchmarks a failed judgement is not a loss by itself: it adds 0 to the pair's sum, so a pair
    with one failed and one correct judgement is correct. `n_undecided`: pairs whose sum is 0 (not
    correct). `n_inconsistent`: pairs whose two orders disagree (both orders only). `n_score_ties`:
    for score-based models, pairs with equal scores; the `A>B` if score_A > score_B else `B>A` rule
    gives B in each order, so asked in both orders a tie sums to 0 (not correct), asked once it is
    correct exactly when the label is B>A.
    """

    benchmark: Literal["judge_bench"] = "judge_bench"
    reverse_order: bool
    method: Literal["scores", "verdicts"]
    n_incorrect: int
    n_undecided: int
    n_inconsistent: int | None
    n_score_ties: int | None
    categories: list[JudgeBenchGroupResult]
    response_models: list[JudgeBenchGroupResult]
    extra_categories: list[str]

    def summary(self) -> dict[str, float | int | None]:
        flat = self._accuracy_summary()
        flat["n_undecided"] = self.n_undecided
        if self.n_score_ties is not None:
            flat["n_score_ties"] = self.n_score_ties
        if self.n_inconsistent is not None:
            flat["n_inconsistent"] = self.n_inconsistent
        flat.update({c.group: c.accuracy for c in self.categories})
        return flat

    def to_markdown(self) -> str:
        def rows(groups: list[JudgeBenchGroupResult]) -> list[list[object]]:
            return [[g.group, g.n_items, g.n_correct, fmt_pct(g.accuracy)] for g in groups]

        label = "**overall (partial)**" if self.coverage.is_partial else "**overall**"
        table = rows(self.categories) + [[label, self.n_items, self.n_correct, fmt_pct(self.accuracy)]]
        orders = "both orders (A, B) and (B, A)" if self.reverse_order else "one order (A, B)"
        parts = [
            "## JudgeBench",
            markdown_table(["category", "pairs", "correct", "accuracy (%)"], table),
            f"Judged in {orders}, from {'per-response scores' if self.method == 'scores' else 'pairwise verdicts'}. "
            f"{self.n_incorrect} pairs incorrect, {self.n_undecided} undecided (decisions summing to 0, not "
            f"correct); {self.n_failed} of {self.n_items} pairs had a failed judgement, which adds 0 to the pair's sum."
            + (f" {self.n_inconsistent} pairs got different decisions in the two orders." if self.n_inconsistent else ""),
        ]
        if self.n_score_ties is not None:
            parts.append(
                f"{self.n_score_ties} pairs had exactly equal scores; JudgeBench's reward-model rule (`A>B` if "
                "score_A > score_B else `B>A`) sends a tie to B in each order"
                + (", so they sum to 0 and are not correct." if self.reverse_order else ".")
            )
        if self.coverage.is_partial:
            parts.append(partial_note(self.coverage, "JudgeBench overall accuracy"))
        if self.extra_categories:
            parts.append(f"Sources outside JudgeBench's categories (in the overall numbers): "
                         f"{', '.join(self.extra_categories)}.")
        if len(self.response_models) > 1:
            parts += ["### By response model",
                      markdown_table(["response model", "pairs", "correct", "accuracy (%)"], rows(self.response_models))]
        return "\n\n".join(parts) + "\n"


BenchmarkReport = RMBenchReport | RewardBench2Report | RMBReport | JudgeBenchReport
