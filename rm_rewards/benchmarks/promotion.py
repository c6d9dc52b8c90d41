"""Which model to serve: a promotion rule over the leaderboard, and its gate.

The rule picks the best eligible model (by default: trained checkpoints) on one benchmark. The gate
lets it replace the model served now only when it beats that model on the benchmark by `margin`
and falls by no more than `max_regression` on any other benchmark both are scored on. An explicit
`override` model key skips the selection but not the gate (unless `force`).

Every decision is a value with its reason and numbers, never an exception:

- `promoted`: the candidate replaces the current model (or is the first one served);
- `kept`: the current model stays (already the best, or the candidate does not beat it by the
  margin, or is not scored yet on a benchmark the current model is scored on, or nothing is
  eligible);
- `blocked`: a candidate beat the current model, or was named by `override`, but failed the gate
  on another benchmark (or the margin, for an override); the current model stays. The blocking asset
  check fails on this status.

Partial headlines (`allow_partial`, off by default). A `partial` leaderboard cell is a benchmark's
number over the parts present only (RM-Bench without math, 2 of RewardBench 2's 6 subsets): not the
official headline, so by default nothing is chosen or gated on it. On bundled benchmark samples
every headline of some benchmarks is partial by construction; there `allow_partial` lets the rule
choose and gate on those numbers, with three safeguards: a full (`scored`) headline always wins
over partial ones (partial cells are ranked only when no eligible model has a full one); partial
numbers are compared only with partial numbers over exactly the same parts (`headline_parts`),
else the comparison is "not comparable", which keeps the current model like a missing report; and
the decision says so: `candidate_parts` / `current_parts`, each comparison's parts, and the reason
("on a partial headline: 3 of 4 domains (missing: math)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rm_rewards.benchmarks.leaderboard import LeaderboardEntry

PromotionStatus = Literal["promoted", "kept", "blocked"]


class PromotionRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    benchmark: str = "rm_bench"  # the benchmark the best model is chosen on
    margin: float = Field(0.0, ge=0.0)  # a candidate must beat the current model by more than this
    max_regression: float = Field(0.02, ge=0.0)  # largest drop allowed on any other benchmark
    eligible_kinds: tuple[str, ...] = ("checkpoint",)  # model-key kinds the rule chooses among
    override: str | None = None  # an explicit model key: skips the selection, not the gate
    force: bool = False  # with override: serve it even when it fails the gate (said so)
    # choose and gate on partial headlines too (numbers over the parts present; see the module doc)
    allow_partial: bool = False


class BenchmarkComparison(BaseModel):
    benchmark: str
    candidate: float | None
    current: float | None
    # None: a full headline; else the parts a partial headline covers ("3 of 4 domains (missing: math)")
    candidate_parts: str | None = None
    current_parts: str | None = None

    @property
    def comparable(self) -> bool:
        """Both numbers present and of one kind: full headlines, or partial over the same parts."""
        return self.candidate is not None and self.current is not None and self.candidate_parts == self.current_parts

    @property
    def delta(self) -> float | None:
        return self.candidate - self.current if self.comparable else None


class PromotionDecision(BaseModel):
    served: str | None  # the model served after this decision
    candidate: str | None
    current: str | None  # the model served before
    status: PromotionStatus
    gate_passed: bool  # the candidate passed the gate (True when there was nothing to gate)
    forced: bool = False
    reason: str
    benchmark: str
    candidate_headline: float | None = None
    current_headline: float | None = None
    # None: the headline above is the full one; else the parts its partial number covers
    candidate_parts: str | None = None
    current_parts: str | None = None
    comparisons: list[BenchmarkComparison] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)  # why the gate failed, with the numbers

    @property
    def on_partial_headline(self) -> bool:
        """The candidate was chosen (or compared) on a partial headline of the rule's benchmark."""
        return self.candidate_parts is not None


@dataclass(frozen=True)
class Cell:
    """A number the rule may use: a full headline (parts None) or, with allow_partial, a partial one."""

    value: float
    parts: str | None = None


def _cells(entries: Sequence[LeaderboardEntry], rule: PromotionRule) -> dict[str, dict[str, Cell]]:
    """model -> benchmark -> cell: scored cells, and partial ones when the rule allows them."""
    cells: dict[str, dict[str, Cell]] = {}
    for entry in entries:
        if entry.status == "scored" and entry.headline is not None:
            cells.setdefault(entry.model_key, {})[entry.benchmark] = Cell(entry.headline)
        elif rule.allow_partial and entry.status == "partial" and entry.partial_headline is not None:
            parts = entry.headline_parts or "some parts"
            cells.setdefault(entry.model_key, {})[entry.benchmark] = Cell(entry.partial_headline, parts)
    return cells


def _parts_present(parts: str) -> int:
    """"3 of 4 domains (missing: math)" -> 3 (0 when the text does not say)."""
    first = parts.split(" ", 1)[0]
    return int(first) if first.isdigit() else 0


def best_model(entries: Sequence[LeaderboardEntry], rule: PromotionRule) -> str | None:
    """The eligible model with the highest headline on the rule's benchmark (ties: the first key).

    Full headlines only, unless the rule allows partial ones and no eligible model has a full one:
    then the partial numbers over the most parts present (one `headline_parts` text, so the
    numbers are over the same parts) are ranked."""
    on_benchmark = [
        (model, by_benchmark[rule.benchmark])
        for model, by_benchmark in _cells(entries, rule).items()
        if model.split(":", 1)[0] in rule.eligible_kinds and rule.benchmark in by_benchmark
    ]
    full = [(model, cell) for model, cell in on_benchmark if cell.parts is None]
    if full:
        ranked = full
    elif on_benchmark:
        widest = min({cell.parts for _, cell in on_benchmark}, key=lambda p: (-_parts_present(p), p))
        ranked = [(model, cell) for model, cell in on_benchmark if cell.parts == widest]
    else:
        return None
    return min((-cell.value, model) for model, cell in ranked)[1]


def _value(cell: Cell | None) -> str:
    if cell is None:
        return "not scored"
    return f"{cell.value:.4f}" + ("" if cell.parts is None else f" (partial: {cell.parts})")


def gate_failures(
    candidate: dict[str, Cell], current: dict[str, Cell], rule: PromotionRule
) -> tuple[list[BenchmarkComparison], list[str]]:
    """Per-benchmark comparisons, and each way the candidate fails the gate against `current`."""
    benchmarks = sorted(set(candidate) | set(current))
    comparisons = []
    for b in benchmarks:
        ours, theirs = candidate.get(b), current.get(b)
        comparisons.append(BenchmarkComparison(
            benchmark=b, candidate=None if ours is None else ours.value, current=None if theirs is None else theirs.value,
            candidate_parts=None if ours is None else ours.parts, current_parts=None if theirs is None else theirs.parts,
        ))
    failures = [] if rule.benchmark in candidate else [f"not scored on {rule.benchmark}"]
    for comparison in comparisons:
        b, delta = comparison.benchmark, comparison.delta
        ours, theirs = candidate.get(b), current.get(b)
        if b == rule.benchmark:
            if ours is None:
                continue  # said above
            if theirs is not None and delta is None:
                failures.append(f"{b}: not comparable: {_value(ours)} vs the current model's {_value(theirs)}")
            elif delta is not None and delta <= rule.margin:
                failures.append(
                    f"{b}: {ours.value:.4f} vs {theirs.value:.4f} ({delta:+.4f}) does not beat the current "
                    f"model by more than the margin {rule.margin:g}"
                )
            continue
        if ours is None:
            # Reports arrive one benchmark at a time: an unknown number is not a pass.
            failures.append(f"{b}: not scored yet (the current model is: {_value(theirs)})")
        elif theirs is not None and delta is None:
            failures.append(f"{b}: not comparable: {_value(ours)} vs the current model's {_value(theirs)}")
        elif delta is not None and -delta > rule.max_regression:
            failures.append(
                f"{b}: {ours.value:.4f} vs {theirs.value:.4f} ({delta:+.4f}) regresses by more than "
                f"{rule.max_regression:g}"
            )
    return comparisons, failures


def partial_allowed(setting: bool | None, benchmark: str, source_kind: str | None) -> tuple[bool, str]:
    """Whether the rule may use partial headlines, and why. `setting` None means: allowed exactly
    when the rule's benchmark is read from its bundled sample (`source_kind` "bundled"), whose
    headline is partial by construction (RM-Bench's bundled rows have no math items); with files
    or the hub a partial headline means missing data, and is not chosen on."""
    if setting is not None:
        return setting, f"allow_partial={setting} (configured)"
    if source_kind == "bundled":
        return True, f"allowed: {benchmark} is read from its bundled sample, partial by construction"
    where = f"read from {source_kind}" if source_kind else "without a source"
    return False, f"not allowed: {benchmark} is {where} (a partial headline there is missing data)"


def decide_promotion(
    entries: Sequence[LeaderboardEntry], current: str | None, rule: PromotionRule
) -> PromotionDecision:
    """The model to serve given the leaderboard and the model served now (None: nothing yet)."""
    cells = _cells(entries, rule)
    candidate = rule.override or best_model(entries, rule)
    ours, theirs = cells.get(candidate or "", {}).get(rule.benchmark), cells.get(current or "", {}).get(rule.benchmark)
    base = {"candidate": candidate, "current": current, "benchmark": rule.benchmark,
            "candidate_headline": None if ours is None else ours.value,
            "current_headline": None if theirs is None else theirs.value,
            "candidate_parts": None if ours is None else ours.parts,
            "current_parts": None if theirs is None else theirs.parts}
    on_partial = "" if ours is None or ours.parts is None else f" on a partial headline ({ours.parts})"
    if candidate is None:
        what = "a full or partial headline" if rule.allow_partial else "a full headline (partial ones not allowed)"
        return PromotionDecision(served=current, status="kept", gate_passed=True, **base,
                                 reason=f"no {'/'.join(rule.eligible_kinds)} model has {what} on {rule.benchmark}")
    if candidate == current:
        why = "named by the override" if rule.override else f"still the best on {rule.benchmark}{on_partial}"
        return PromotionDecision(served=current, status="kept", gate_passed=True, **base,
                                 reason=f"{current} is already served and {why}")
    comparisons, failures = gate_failures(cells.get(candidate, {}), cells.get(current or "", {}), rule)
    if current is None and not rule.override:
        failures = []  # nothing served yet: the best model is served, there is nothing to regress from
    base["comparisons"] = comparisons
    if not failures:
        chosen = "named by the override" if rule.override else f"the best on {rule.benchmark}{on_partial}"
        against = f"replaces {current}" if current else "is the first model served"
        return PromotionDecision(served=candidate, status="promoted", gate_passed=True, **base,
                                 reason=f"{candidate}, {chosen}, {against}: passes the gate")
    if rule.override and rule.force:
        return PromotionDecision(served=candidate, status="promoted", gate_passed=False, forced=True,
                                 failures=failures, **base,
                                 reason=f"{candidate} forced by the override past the gate: " + "; ".join(failures))
    # not (yet) better, or not comparable: no attempt
    margin_only = all("margin" in f or "not scored" in f or "not comparable" in f for f in failures)
    status: PromotionStatus = "kept" if margin_only and not rule.override else "blocked"
    return PromotionDecision(served=current, status=status, gate_passed=False, failures=failures,
                             **base, reason=f"{current or 'nothing'} stays; {candidate}: " + "; ".join(failures))


def entries_from_rows(rows: Sequence[dict]) -> list[LeaderboardEntry]:
    """Leaderboard entries from stored leaderboard rows (extra columns ignored, NaN read as None)."""
    fields = LeaderboardEntry.model_fields
    return [
        LeaderboardEntry(**{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items() if k in fields})
        for row in rows
    ]
