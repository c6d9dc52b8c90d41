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
"""

from __future__ import annotations

from collections.abc import Sequence
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


class BenchmarkComparison(BaseModel):
    benchmark: str
    candidate: float | None
    current: float | None

    @property
    def delta(self) -> float | None:
        if self.candidate is None or self.current is None:
            return None
        return self.candidate - self.current


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
    comparisons: list[BenchmarkComparison] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)  # why the gate failed, with the numbers


def _scores(entries: Sequence[LeaderboardEntry]) -> dict[str, dict[str, float]]:
    """model -> benchmark -> headline, scored cells only."""
    scores: dict[str, dict[str, float]] = {}
    for entry in entries:
        if entry.status == "scored" and entry.headline is not None:
            scores.setdefault(entry.model_key, {})[entry.benchmark] = entry.headline
    return scores


def best_model(entries: Sequence[LeaderboardEntry], rule: PromotionRule) -> str | None:
    """The eligible model with the highest headline on the rule's benchmark (ties: the first key)."""
    scores = _scores(entries)
    eligible = [
        (-by_benchmark[rule.benchmark], model)
        for model, by_benchmark in scores.items()
        if model.split(":", 1)[0] in rule.eligible_kinds and rule.benchmark in by_benchmark
    ]
    return min(eligible)[1] if eligible else None


def gate_failures(
    candidate: dict[str, float], current: dict[str, float], rule: PromotionRule
) -> tuple[list[BenchmarkComparison], list[str]]:
    """Per-benchmark comparisons, and each way the candidate fails the gate against `current`."""
    benchmarks = sorted(set(candidate) | set(current))
    comparisons = [BenchmarkComparison(benchmark=b, candidate=candidate.get(b), current=current.get(b))
                   for b in benchmarks]
    failures = []
    if rule.benchmark not in candidate:
        failures.append(f"not scored on {rule.benchmark}")
    elif rule.benchmark in current:
        delta = candidate[rule.benchmark] - current[rule.benchmark]
        if delta <= rule.margin:
            failures.append(
                f"{rule.benchmark}: {candidate[rule.benchmark]:.4f} vs {current[rule.benchmark]:.4f} "
                f"({delta:+.4f}) does not beat the current model by more than the margin {rule.margin:g}"
            )
    for comparison in comparisons:
        if comparison.candidate is None and comparison.benchmark != rule.benchmark:
            # Reports arrive one benchmark at a time: an unknown number is not a pass.
            failures.append(f"{comparison.benchmark}: not scored yet (the current model is: {comparison.current:.4f})")
            continue
        delta = comparison.delta
        if comparison.benchmark != rule.benchmark and delta is not None and -delta > rule.max_regression:
            failures.append(
                f"{comparison.benchmark}: {comparison.candidate:.4f} vs {comparison.current:.4f} "
                f"({delta:+.4f}) regresses by more than {rule.max_regression:g}"
            )
    return comparisons, failures


def decide_promotion(
    entries: Sequence[LeaderboardEntry], current: str | None, rule: PromotionRule
) -> PromotionDecision:
    """The model to serve given the leaderboard and the model served now (None: nothing yet)."""
    scores = _scores(entries)
    candidate = rule.override or best_model(entries, rule)
    base = {"candidate": candidate, "current": current, "benchmark": rule.benchmark,
            "candidate_headline": scores.get(candidate or "", {}).get(rule.benchmark),
            "current_headline": scores.get(current or "", {}).get(rule.benchmark)}
    if candidate is None:
        return PromotionDecision(served=current, status="kept", gate_passed=True, **base,
                                 reason=f"no {'/'.join(rule.eligible_kinds)} model is scored on {rule.benchmark}")
    if candidate == current:
        why = "named by the override" if rule.override else f"still the best on {rule.benchmark}"
        return PromotionDecision(served=current, status="kept", gate_passed=True, **base,
                                 reason=f"{current} is already served and {why}")
    comparisons, failures = gate_failures(scores.get(candidate, {}), scores.get(current or "", {}), rule)
    if current is None and not rule.override:
        failures = []  # nothing served yet: the best model is served, there is nothing to regress from
    base["comparisons"] = comparisons
    if not failures:
        chosen = "named by the override" if rule.override else f"the best on {rule.benchmark}"
        against = f"replaces {current}" if current else "is the first model served"
        return PromotionDecision(served=candidate, status="promoted", gate_passed=True, **base,
                                 reason=f"{candidate}, {chosen}, {against}: passes the gate")
    if rule.override and rule.force:
        return PromotionDecision(served=candidate, status="promoted", gate_passed=False, forced=True,
                                 failures=failures, **base,
                                 reason=f"{candidate} forced by the override past the gate: " + "; ".join(failures))
    margin_only = all("margin" in f or "not scored" in f for f in failures)  # not (yet) better: no attempt
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
