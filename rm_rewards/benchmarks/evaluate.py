"""Evaluate one model on one benchmark: per-item scores, the benchmark's report, failures, timings.

An evaluated model (`rm_rewards.benchmarks.model_keys`: specs, keys, `model_from_key`) is a
registered reward (a rule, or an LLM judge that gets its `LLMClient` at call time), a trained
Bradley-Terry checkpoint, or the pointwise judge with a dataset's learned principles.
`rm_rewards` never imports `training`, so a checkpoint is scored through a callable the caller
passes, e.g. `functools.partial(training.bt_scoring.score_with_checkpoint, path)`:

    model = RewardModel(reward="length_penalty")                 # key "reward:length_penalty"
    result = evaluate_model("rm_bench", items, model)
    ckpt = CheckpointModel(run_id="bt-0001", path="/data/ckpt")  # key "checkpoint:bt-0001"
    result = evaluate_model("rm_bench", items, ckpt, checkpoint_scorer=partial(score_with_checkpoint, ckpt.path))
    result.headline, result.summary(), result.report.to_markdown()
    spec = PrinciplesModel(dataset="helpsteer2")                 # key "principles:helpsteer2"
    built = spec.build(client, scenario, principles)             # built.principles_source
    result = evaluate("rm_bench", items, built.judge, model_key=spec.key)

How each kind is scored:

- pointwise / listwise / stepwise rewards and checkpoint scorers give one score per response; the
  benchmark's own rule scores that table (`score_benchmark`);
- pairwise rewards are asked the benchmark's (correct, incorrect) pairs (`pair_judging`), in both
  orders by default, and their verdicts also go to `consistency_report` (position flips).

An item the reward does not apply to (`reward.applies_to(sample)` is false, e.g. a rule that needs
a reference answer) is not applicable: it is left out of the metric and listed, so the result says
"metric over 0 of 221 items" instead of a silent 0% or a silently smaller benchmark. A failed
judgement is never left out: it counts as wrong (`n_failed`).
"""

from __future__ import annotations

import asyncio
import math
import numbers
import time
import typing
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rm_rewards.benchmarks.consistency import ConsistencyReport, JudgedPair, consistency_report
from rm_rewards.benchmarks.items import (
    BENCHMARK_NAMES,
    BenchmarkItem,
    BenchmarkName,
    item_to_sample,
    sample_id_for,
)
from rm_rewards.benchmarks.metrics import score_benchmark
from rm_rewards.benchmarks.model_keys import (  # noqa: F401 - the model specs, re-exported for callers
    CheckpointModel,
    EvaluatedModel,
    ModelKey,
    PrinciplesModel,
    RewardModel,
    model_from_key,
    parse_evaluated_model,
    parse_model_key,
)
from rm_rewards.benchmarks.pair_judging import (
    PairOrders,
    ajudge_items,
    judge_items,
    report_from_verdicts,
    unsupported_reason,
)
from rm_rewards.benchmarks.report_models import (
    BenchmarkReport,
    HeadlineCoverage,
    JudgeBenchReport,
    RewardBench2Report,
    RMBenchReport,
    RMBReport,
)
from rm_rewards.core.kinds import DEFAULT_MAX_CONCURRENCY, PairwiseReward, Reward, describe_error
from rm_rewards.core.schema import RewardResult, Sample

if typing.TYPE_CHECKING:
    from rm_rewards.llm.client import LLMClient

# One score per response of each sample, in order; None = no score for that response.
SampleScorer = Callable[[list[Sample]], Sequence[Sequence[float | None]]]
ItemStatus = Literal["scored", "failed", "not_applicable"]

HEADLINE_METRICS: dict[str, str] = {
    "rm_bench": "total",
    "reward_bench_2": "leaderboard",
    "rmb_pairwise": "accuracy",
    "rmb_bon": "accuracy",
    "judge_bench": "accuracy",
}
NOT_APPLICABLE = "the reward does not apply to this item (applies_to is false)"

# --- the result --------------------------------------------------------------------------------


class ResponseScoreRow(BaseModel):
    """One response of one item: its score (None when it has none) and why not."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    domain: str
    response_index: int
    is_correct: bool
    score: float | None
    error: str | None
    status: ItemStatus


class EvaluationTimings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scoring_s: float
    report_s: float
    total_s: float
    items_per_s: float | None  # items judged per second of scoring (not-applicable items excluded)


ReportModel = Annotated[
    RMBenchReport | RewardBench2Report | RMBReport | JudgeBenchReport, Field(discriminator="benchmark")
]


class EvaluationResult(BaseModel):
    """Everything one (benchmark, model) evaluation produced.

    `method` is "scores" (a score per response: `scores` rows) or "pair_verdicts" (a pairwise
    judge: `verdicts` rows and `consistency`). `report` is over the `n_evaluated` applicable items
    and is None when no item applies; `n_failed` of them had a failed judgement (counted wrong).
    """

    model_config = ConfigDict(extra="forbid")

    benchmark: BenchmarkName
    model_key: str
    method: Literal["scores", "pair_verdicts"]
    n_items: int
    n_evaluated: int
    n_failed: int
    n_not_applicable: int
    not_applicable_ids: list[str]
    not_applicable_reasons: dict[str, int]
    report: ReportModel | None
    consistency: ConsistencyReport | None = None
    scores: list[ResponseScoreRow] = Field(default_factory=list)
    verdicts: list[JudgedPair] = Field(default_factory=list)
    timings: EvaluationTimings

    @property
    def headline_metric(self) -> str:
        return HEADLINE_METRICS[self.benchmark]

    @property
    def headline(self) -> float | None:
        """The benchmark's official headline; None when nothing applied or the report is partial."""
        return None if self.report is None else self.report.headline

    @property
    def headline_coverage(self) -> HeadlineCoverage | None:
        """Which parts of the headline the report has (None when nothing applied)."""
        return None if self.report is None else self.report.coverage

    @property
    def is_partial(self) -> bool:
        return self.report is not None and self.report.coverage.is_partial

    @property
    def partial_headline(self) -> float | None:
        """The headline's value over the parts present, when the report is partial."""
        return None if self.report is None else self.report.partial_headline

    @property
    def coverage(self) -> float:
        """The share of items evaluated (the rest were not applicable)."""
        return self.n_evaluated / self.n_items if self.n_items else 0.0

    def summary(self) -> dict[str, float | int | None]:
        """Flat metrics for asset metadata and drop checks: the report's summary (None headline
        when nothing applied), coverage and counts, and the judge's consistency rates."""
        flat: dict[str, float | int | None] = (
            self.report.summary() if self.report is not None else {self.headline_metric: None}
        )
        flat.update(
            n_items_total=self.n_items,
            n_evaluated=self.n_evaluated,
            n_not_applicable=self.n_not_applicable,
            coverage=self.coverage,
        )
        if self.consistency is not None:
            for name in ("position_flip_rate", "symmetry_violation_rate", "transitivity_violation_rate"):
                flat[f"consistency_{name}"] = getattr(self.consistency, name)
            flat["n_failed_verdicts"] = self.consistency.n_failed_verdicts
        return flat

    def error_counts(self, limit: int = 5) -> list[tuple[str, int]]:
        """The most common error texts of failed judgements, with how often each occurred."""
        texts = [row.error for row in self.scores if row.status == "failed" and row.error]
        texts += [v.error or "no verdict" for v in self.verdicts if v.winner is None]
        return Counter(text[:200] for text in texts).most_common(limit)


# --- shared steps ------------------------------------------------------------------------------


def _check_inputs(benchmark: str, items: Sequence[BenchmarkItem]) -> None:
    if benchmark not in BENCHMARK_NAMES:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARK_NAMES}")
    if not items:
        raise ValueError(f"{benchmark}: no items to evaluate")
    wrong = [item.id for item in items if item.benchmark != benchmark]
    if wrong:
        raise ValueError(f"{benchmark}: items {wrong[:3]} belong to another benchmark")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i, n in Counter(ids).items() if n > 1)
        raise ValueError(f"{benchmark}: item id {duplicate!r} appears more than once")


def _default_key(scorer: Reward | SampleScorer) -> str:
    if isinstance(scorer, Reward):
        return f"{'judge' if scorer.is_llm else 'reward'}:{scorer.name}"
    return f"scorer:{getattr(scorer, '__name__', type(scorer).__name__)}"


class _Run:
    """One evaluation in progress: the checked inputs, which items the scorer applies to (an
    `applies_to` that raises is a failure, not a skip), the samples to score, and the clock."""

    def __init__(
        self,
        benchmark: str,
        items: Sequence[BenchmarkItem],
        scorer: Reward | SampleScorer,
        model_key: str | None,
    ) -> None:
        _check_inputs(benchmark, items)
        self.started = time.perf_counter()
        self.benchmark, self.items = benchmark, items
        self.model_key = model_key or _default_key(scorer)
        self.pairwise = isinstance(scorer, PairwiseReward)
        reward = scorer if isinstance(scorer, Reward) else None
        self.evaluated: list[BenchmarkItem] = []
        self.not_applicable: dict[str, str] = {}  # item id -> reason
        self.check_errors: dict[str, str] = {}  # item id -> applies_to error
        for item in items:
            reason = self._reason(reward, item)
            if reason is None:
                self.evaluated.append(item)
            else:
                self.not_applicable[item.id] = reason
        self.samples = [item_to_sample(item) for item in self.evaluated]

    def _reason(self, reward: Reward | None, item: BenchmarkItem) -> str | None:
        if self.pairwise and (unsupported := unsupported_reason(item)):
            return unsupported
        if reward is None:
            return None
        try:
            return None if reward.applies_to(item_to_sample(item)) else NOT_APPLICABLE
        except Exception as exc:
            self.check_errors[item.id] = f"applies_to failed: {describe_error(exc)}"
            return None

    def finish(
        self, scored_at: float, report: BenchmarkReport | None, **parts: Any
    ) -> EvaluationResult:
        scoring_s = scored_at - self.started
        evaluated = len(self.evaluated)
        return EvaluationResult(
            benchmark=self.benchmark,
            model_key=self.model_key,
            n_items=len(self.items),
            n_evaluated=evaluated,
            n_failed=0 if report is None else report.n_failed,
            n_not_applicable=len(self.not_applicable),
            not_applicable_ids=list(self.not_applicable),
            not_applicable_reasons=dict(Counter(self.not_applicable.values())),
            report=report,
            timings=EvaluationTimings(
                scoring_s=scoring_s,
                report_s=time.perf_counter() - scored_at,
                total_s=time.perf_counter() - self.started,
                items_per_s=evaluated / scoring_s if evaluated and scoring_s > 0 else None,
            ),
            **parts,
        )

    def from_reward_results(self, results: Sequence[RewardResult]) -> EvaluationResult:
        return self._from_judgements(_from_results(self.evaluated, results))

    def from_sample_scores(self, scores: Sequence[Sequence[Any]]) -> EvaluationResult:
        return self._from_judgements(_from_scorer(self.evaluated, scores))

    def _from_judgements(self, judgements: Judgements) -> EvaluationResult:
        scored_at = time.perf_counter()
        for item_id, error in self.check_errors.items():
            scores, errors = judgements[item_id]
            judgements[item_id] = ([None] * len(scores), [error] * len(errors))
        table = {item_id: scores for item_id, (scores, _) in judgements.items()}
        report = score_benchmark(self.benchmark, self.evaluated, table) if self.evaluated else None
        rows = _rows(self.items, judgements, self.not_applicable)
        return self.finish(scored_at, report, method="scores", scores=rows)

    def from_verdicts(self, verdicts: list[JudgedPair], orders: PairOrders) -> EvaluationResult:
        scored_at = time.perf_counter()
        verdicts = [
            v.model_copy(update={"winner": None, "error": self.check_errors[v.item_id]})
            if v.item_id in self.check_errors
            else v
            for v in verdicts
        ]
        report = report_from_verdicts(self.benchmark, self.evaluated, verdicts, orders) if self.evaluated else None
        consistency = consistency_report(verdicts) if verdicts else None
        return self.finish(
            scored_at, report, method="pair_verdicts", verdicts=verdicts, consistency=consistency
        )


# --- per-response scores: pointwise/listwise/stepwise rewards and checkpoint scorers -------------

Judgements = dict[str, tuple[list[float | None], list[str | None]]]  # item id -> (scores, errors)


def _from_results(items: Sequence[BenchmarkItem], results: Sequence[RewardResult]) -> Judgements:
    if len(results) != len(items):
        raise ValueError(f"reward returned {len(results)} results for {len(items)} samples")
    out: Judgements = {}
    for item, sample_result in zip(items, results):
        if sample_result.sample_id != sample_id_for(item):
            raise ValueError(
                f"result for {sample_result.sample_id!r} where {sample_id_for(item)!r} was expected"
            )
        n = len(item.responses)
        if sample_result.error is not None:
            out[item.id] = ([None] * n, [sample_result.error] * n)
            continue
        if len(sample_result.scores) != n:  # the kinds turn this into an error; kept as a guard
            raise ValueError(f"item {item.id!r}: {len(sample_result.scores)} scores for {n} responses")
        out[item.id] = (
            [s.score if s.error is None else None for s in sample_result.scores],
            [
                s.error if s.error is not None or s.score is not None else "no score"
                for s in sample_result.scores
            ],
        )
    return out


def _checked_score(value: Any, where: str) -> tuple[float | None, str | None]:
    if value is None:
        return None, "scorer returned no score"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: score must be a number or None, got {value!r}")
    if not math.isfinite(float(value)):
        return None, f"non-finite score {value}"
    return float(value), None


def _from_scorer(items: Sequence[BenchmarkItem], scores: Sequence[Sequence[Any]]) -> Judgements:
    if len(scores) != len(items):
        raise ValueError(f"scorer returned {len(scores)} score lists for {len(items)} samples")
    out: Judgements = {}
    for item, row in zip(items, scores):
        if len(row) != len(item.responses):
            raise ValueError(
                f"scorer: item {item.id!r} got {len(row)} scores for {len(item.responses)} responses"
            )
        checked = [_checked_score(v, f"scorer: item {item.id!r} response {i}") for i, v in enumerate(row)]
        out[item.id] = ([s for s, _ in checked], [e for _, e in checked])
    return out


def _rows(
    items: Sequence[BenchmarkItem], judgements: Judgements, not_applicable: dict[str, str]
) -> list[ResponseScoreRow]:
    rows = []
    for item in items:
        scores, errors = judgements.get(item.id, ([None] * len(item.responses), [None] * len(item.responses)))
        for index, (score, error) in enumerate(zip(scores, errors)):
            status: ItemStatus = "scored" if score is not None else "failed"
            if item.id in not_applicable:
                status, error = "not_applicable", not_applicable[item.id]
            rows.append(
                ResponseScoreRow(
                    item_id=item.id,
                    domain=item.domain,
                    response_index=index,
                    is_correct=index < item.n_correct,
                    score=score,
                    error=error,
                    status=status,
                )
            )
    return rows


# --- entry points ------------------------------------------------------------------------------


def evaluate(
    benchmark: str,
    items: Sequence[BenchmarkItem],
    scorer: Reward | SampleScorer,
    *,
    model_key: str | None = None,
    pair_orders: PairOrders = "both",
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> EvaluationResult:
    """Score `items` of `benchmark` with a reward or a sample scorer (one score per response,
    None for none; e.g. a checkpoint's `score_with_checkpoint`). An exception from a sample scorer (a
    checkpoint that will not load) propagates: the evaluation did not happen."""
    run = _Run(benchmark, items, scorer, model_key)
    if isinstance(scorer, PairwiseReward):
        return run.from_verdicts(judge_items(scorer, run.evaluated, pair_orders, max_concurrency), pair_orders)
    if isinstance(scorer, Reward):
        return run.from_reward_results(scorer.evaluate_batch(run.samples, max_concurrency=max_concurrency))
    return run.from_sample_scores(scorer(run.samples))


async def aevaluate(
    benchmark: str,
    items: Sequence[BenchmarkItem],
    scorer: Reward | SampleScorer,
    *,
    model_key: str | None = None,
    pair_orders: PairOrders = "both",
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> EvaluationResult:
    """`evaluate` for event loops: LLM judges run concurrently (up to `max_concurrency` calls in
    flight); sync rewards and sample scorers run in a worker thread so the loop stays free."""
    run = _Run(benchmark, items, scorer, model_key)
    if isinstance(scorer, PairwiseReward):
        return run.from_verdicts(await ajudge_items(scorer, run.evaluated, pair_orders, max_concurrency), pair_orders)
    if isinstance(scorer, Reward) and scorer.is_async:
        return run.from_reward_results(
            await scorer.aevaluate_batch(run.samples, max_concurrency=max_concurrency)
        )
    if isinstance(scorer, Reward):
        return run.from_reward_results(await asyncio.to_thread(scorer.evaluate_batch, run.samples))
    return run.from_sample_scores(await asyncio.to_thread(scorer, run.samples))


def _resolve(
    model: RewardModel | CheckpointModel | PrinciplesModel,
    client: LLMClient | None,
    checkpoint_scorer: SampleScorer | None,
) -> Reward | SampleScorer:
    if isinstance(model, CheckpointModel):
        if checkpoint_scorer is None:
            raise ValueError(
                f"model {model.key}: a checkpoint needs checkpoint_scorer=, e.g. "
                f"functools.partial(training.bt_scoring.score_with_checkpoint, {model.path or '<path>'!r})"
            )
        return checkpoint_scorer
    if isinstance(model, PrinciplesModel):
        raise ValueError(
            f"model {model.key}: its judge needs the dataset's principle set; build it with "
            f"model.build(client, scenario, principles) and pass built.judge to evaluate(..., model_key=model.key)"
        )
    return model.build(client)


def _options(model: RewardModel | CheckpointModel | PrinciplesModel) -> dict[str, Any]:
    if isinstance(model, RewardModel):
        return {"pair_orders": model.pair_orders, "max_concurrency": model.max_concurrency}
    return {}


def evaluate_model(
    benchmark: str,
    items: Sequence[BenchmarkItem],
    model: RewardModel | CheckpointModel | PrinciplesModel,
    *,
    client: LLMClient | None = None,
    checkpoint_scorer: SampleScorer | None = None,
) -> EvaluationResult:
    """`evaluate` for a reward or checkpoint spec; the result carries the spec's key. A
    `PrinciplesModel` is built from its principle set first (`PrinciplesModel.build`), then
    evaluated with `evaluate(..., built.judge, model_key=model.key)`."""
    scorer = _resolve(model, client, checkpoint_scorer)
    return evaluate(benchmark, items, scorer, model_key=model.key, **_options(model))


async def aevaluate_model(
    benchmark: str,
    items: Sequence[BenchmarkItem],
    model: RewardModel | CheckpointModel | PrinciplesModel,
    *,
    client: LLMClient | None = None,
    checkpoint_scorer: SampleScorer | None = None,
) -> EvaluationResult:
    scorer = _resolve(model, client, checkpoint_scorer)
    return await aevaluate(benchmark, items, scorer, model_key=model.key, **_options(model))
