"""Benchmark results as pydantic models, with markdown tables for reports.

Every result keeps its counts next to its numbers: `n_items`, `n_failed` (items with at least one
failed judgement, which count as wrong) and `n_missing` (items the score table had no row for,
also wrong and also included in `n_failed`). Scores are fractions in [0, 1] (Ties: its weighted
sum); the markdown shows them as percentages.
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
    benchmark: Literal["rm_bench"] = "rm_bench"
    domains: list[RMBenchDomainResult]
    missing_domains: list[str]
    hard: float
    normal: float
    easy: float
    total: float

    @property
    def headline(self) -> float:
        return self.total

    def summary(self) -> dict[str, float | int | None]:
        flat: dict[str, float | int | None] = {
            "total": self.total,
            "hard": self.hard,
            "normal": self.normal,
            "easy": self.easy,
            "n_items": self.n_items,
            "n_failed": self.n_failed,
            "n_missing": self.n_missing,
        }
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
        rows.append(
            [
                "**overall**",
                self.n_items,
                self.n_failed,
                fmt_pct(self.hard),
                fmt_pct(self.normal),
                fmt_pct(self.easy),
                fmt_pct(self.total),
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
    benchmark: Literal["reward_bench_2"] = "reward_bench_2"
    subsets: list[RewardBench2SubsetResult]
    missing_subsets: list[str]
    extra_subsets: list[str]
    leaderboard: float | None

    @property
    def headline(self) -> float | None:
        return self.leaderboard

    def summary(self) -> dict[str, float | int | None]:
        flat: dict[str, float | int | None] = {
            "leaderboard": self.leaderboard,
            "n_items": self.n_items,
            "n_failed": self.n_failed,
            "n_missing": self.n_missing,
            "n_missing_subsets": len(self.missing_subsets),
        }
        flat.update({s.subset: s.score for s in self.subsets})
        return flat

    def to_markdown(self) -> str:
        rows = [[s.subset, s.n_items, s.n_failed, fmt_pct(s.score)] for s in self.subsets]
        rows.append(["**leaderboard**", self.n_items, self.n_failed, fmt_pct(self.leaderboard)])
        parts = [
            "## RewardBench 2",
            markdown_table(["subset", "items", "failed", "score (%)"], rows),
            self._failure_note(),
        ]
        if self.missing_subsets:
            parts.append(
                f"Missing subsets (leaderboard is the mean of those present): "
                f"{', '.join(self.missing_subsets)}."
            )
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


class RMBReport(_Result):
    """`categories`: Helpfulness / Harmlessness; `scenarios`: the full category path."""

    benchmark: Literal["rmb_pairwise", "rmb_bon"]
    n_correct: int
    accuracy: float
    categories: list[RMBGroupResult]
    scenarios: list[RMBGroupResult]

    @property
    def headline(self) -> float:
        return self.accuracy

    def summary(self) -> dict[str, float | int | None]:
        flat: dict[str, float | int | None] = {
            "accuracy": self.accuracy,
            "n_items": self.n_items,
            "n_failed": self.n_failed,
            "n_missing": self.n_missing,
        }
        flat.update({c.group: c.accuracy for c in self.categories})
        return flat

    def to_markdown(self) -> str:
        title = "RMB pairwise" if self.benchmark == "rmb_pairwise" else "RMB best-of-N"

        def rows(groups: list[RMBGroupResult]) -> list[list[object]]:
            return [[g.group, g.n_items, g.n_failed, g.n_correct, fmt_pct(g.accuracy)] for g in groups]

        headers = ["category", "items", "failed", "correct", "accuracy (%)"]
        overall = rows(self.categories) + [
            ["**all**", self.n_items, self.n_failed, self.n_correct, fmt_pct(self.accuracy)]
        ]
        return (
            "\n\n".join(
                [
                    f"## {title}",
                    markdown_table(headers, overall),
                    self._failure_note(),
                    f"### {title} by scenario",
                    markdown_table(["scenario"] + headers[1:], rows(self.scenarios)),
                ]
            )
            + "\n"
        )


BenchmarkReport = RMBenchReport | RewardBench2Report | RMBReport
