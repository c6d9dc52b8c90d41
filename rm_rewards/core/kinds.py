"""The four reward kinds behind one interface.

Every reward is a pydantic model (its fields are its parameters, validated on construction) with:

- `evaluate(sample)` / `await aevaluate(sample)`: one `RewardResult`, never an exception: a
  failure becomes an error on that response or that sample, and a batch goes on.
- `evaluate_batch(samples)` / `await aevaluate_batch(samples)`: many samples; async rewards
  (LLM judges) run concurrently up to `max_concurrency`. `evaluate_batch` is safe to call from
  inside a running event loop: it then runs the batch on a private loop in a worker thread
  instead of calling `asyncio.run` on the caller's loop. It leaves the garbage collector alone: a
  caller scoring many samples with cheap rules wraps the call in `gc_paused()` (see there).

A kind only decides what the unit of judgement is:

- pointwise: one response at a time (`score_response`),
- pairwise: two responses at a time (`compare`); scores are wins over all unordered pairs,
- listwise: all responses at once (`rank`),
- stepwise: each step of a response (`score_steps`), aggregated into the response score.

Sync rewards implement the sync method; async ones (LLM judges) implement the `a`-prefixed one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import itertools
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

# Results are built without validation on the hot path (how and why: `_fast_models`).
from rm_rewards.core._fast_models import (
    error_score,
    float_score,
    fused_pointwise_batch,
    response_score,
    reward_result,
    trusted_model,
)
from rm_rewards.core.schema import ResponseScore, RewardResult, Sample

RewardKind = Literal["pointwise", "pairwise", "listwise", "stepwise"]
T = TypeVar("T")

DEFAULT_MAX_CONCURRENCY = 256


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, whether or not a loop is already running.

    Takes a factory so the coroutine is created on the loop that runs it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector for a large sync batch: `with gc_paused(): ...`.

    Opt-in, for callers that score many samples with cheap rules (the rule_scores path, the
    rule-rewards bench): each sample leaves ~13 container objects (a result, its scores, their
    dicts) that survive, so the collector runs full passes over every live sample mid-batch,
    about half of a cheap rule's per-sample cost. Results form no cycles, so nothing is missed;
    collection resumes (if it was on) when the block ends. Garbage cycles made inside the block
    wait until then, which is why `evaluate_batch` never pauses on its own: the collector is
    process-wide state, and an async batch (failed requests make cycles) or a caller's threads
    should not find it switched off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def score_value(value: float | ResponseScore) -> ResponseScore:
    """Accept a bare float from simple rules; reject NaN/inf as an error, not a score."""
    if type(value) is float and value - value == 0.0:  # the common case: a finite float
        return float_score(value)
    if isinstance(value, ResponseScore):
        return value
    value = float(value)
    if not math.isfinite(value):
        return error_score(f"non-finite score {value}")
    return float_score(value)


class Reward(BaseModel):
    """Base of every reward. Subclass one of the kinds below, not this."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    kind: ClassVar[RewardKind]
    is_llm: ClassVar[bool] = False
    # Bump when the scoring logic changes; stored with every score row.
    code_version: ClassVar[str] = "1"

    _name: str = PrivateAttr(default="")

    @property
    def name(self) -> str:
        return self._name or type(self).__name__

    def named(self, name: str) -> Reward:
        self._name = name
        return self

    @property
    def version(self) -> str:
        """Code version plus a hash of the parameters: two configurations never share a version."""
        params = self.model_dump_json(exclude=self._unversioned_fields())
        return f"{self.code_version}-{hashlib.sha256(params.encode()).hexdigest()[:8]}"

    def _unversioned_fields(self) -> set[str]:
        """Fields that do not change scores (clients, caches); overridden by LLM rewards."""
        return set()

    @property
    def is_async(self) -> bool:
        return type(self)._ascore is not Reward._ascore

    # --- the one thing a kind provides --------------------------------------------------------

    def _score(self, sample: Sample) -> list[ResponseScore]:
        return run_sync(lambda: self._ascore(sample))

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        return self._score(sample)

    def applies_to(self, sample: Sample) -> bool:
        """Whether this reward can score the sample at all (e.g. it needs a reference)."""
        return True

    # --- public interface ---------------------------------------------------------------------

    def _result(
        self,
        sample: Sample,
        scores: list[ResponseScore] | None,
        error: str | None,
        label: tuple[str, str] | None = None,
    ) -> RewardResult:
        name, version = label or (self.name, self.version)
        return reward_result(name, version, sample.id, scores or [], error)

    def _checked(
        self, sample: Sample, scores: list[ResponseScore], label: tuple[str, str] | None = None
    ) -> RewardResult:
        if len(scores) != len(sample.responses):
            return self._result(
                sample, None, f"reward returned {len(scores)} scores for {len(sample.responses)} responses", label
            )
        return self._result(sample, scores, None, label)

    def _evaluate_sync(self, sample: Sample, label: tuple[str, str]) -> RewardResult:
        try:
            return self._checked(sample, self._score(sample), label)
        except Exception as exc:  # a reward never takes the batch down
            return self._result(sample, None, describe_error(exc), label)

    def evaluate(self, sample: Sample) -> RewardResult:
        if self.is_async:
            return run_sync(lambda: self.aevaluate(sample))
        return self._evaluate_sync(sample, (self.name, self.version))

    async def aevaluate(self, sample: Sample) -> RewardResult:
        if not self.is_async:
            return self.evaluate(sample)
        try:
            return self._checked(sample, await self._ascore(sample))
        except Exception as exc:
            return self._result(sample, None, describe_error(exc))

    def evaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        if self.is_async:
            return run_sync(lambda: self.aevaluate_batch(samples, max_concurrency=max_concurrency))
        if type(self).evaluate is not Reward.evaluate:  # a subclass's own evaluate wins
            return [self.evaluate(s) for s in samples]
        # Name and version (a JSON dump and a hash) are computed once per batch, not per sample.
        return self._evaluate_sync_batch(samples, (self.name, self.version))

    def _evaluate_sync_batch(self, samples: Sequence[Sample], label: tuple[str, str]) -> list[RewardResult]:
        """`_evaluate_sync` over a batch; a kind may fuse the steps (see PointwiseReward)."""
        return [self._evaluate_sync(s, label) for s in samples]

    async def aevaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        if not self.is_async:
            return self.evaluate_batch(samples)
        limit = asyncio.Semaphore(max(1, max_concurrency))

        async def one(sample: Sample) -> RewardResult:
            async with limit:
                return await self.aevaluate(sample)

        return list(await asyncio.gather(*(one(s) for s in samples)))


class PointwiseReward(Reward):
    """Judges each response on its own."""

    kind: ClassVar[RewardKind] = "pointwise"

    def score_response(self, sample: Sample, index: int) -> float | ResponseScore:
        raise NotImplementedError

    async def ascore_response(self, sample: Sample, index: int) -> float | ResponseScore:
        raise NotImplementedError

    @property
    def is_async(self) -> bool:
        return type(self).ascore_response is not PointwiseReward.ascore_response

    def _score(self, sample: Sample) -> list[ResponseScore]:
        score_response = self.score_response
        out = []
        for index in range(len(sample.responses)):
            try:
                out.append(score_value(score_response(sample, index)))
            except Exception as exc:  # one bad response does not void its siblings
                out.append(error_score(describe_error(exc)))
        return out

    def _evaluate_sync_batch(self, samples: Sequence[Sample], label: tuple[str, str]) -> list[RewardResult]:
        """The steps fused into one loop (`_fast_models.fused_pointwise_batch`: the same results),
        unless the class overrides one of them: then it gets the steps."""
        cls = type(self)
        if (
            cls._score is PointwiseReward._score
            and cls._evaluate_sync is Reward._evaluate_sync
            and cls._checked is Reward._checked
            and cls._result is Reward._result
        ):
            return fused_pointwise_batch(self, samples, label)
        return super()._evaluate_sync_batch(samples, label)

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        async def one(index: int) -> ResponseScore:
            try:
                return score_value(await self.ascore_response(sample, index))
            except Exception as exc:
                return error_score(describe_error(exc))

        return list(await asyncio.gather(*(one(i) for i in range(len(sample.responses)))))


class PairwiseVerdict(BaseModel):
    """Which of two responses is better: "a", "b" or "tie"; `error` when no verdict was reached."""

    winner: Literal["a", "b", "tie"] | None = None
    reason: str = ""
    error: str | None = None


class PairwiseReward(Reward):
    """Judges responses two at a time; each response's score is its share of wins.

    Every unordered pair (i < j) is judged once: a win counts 1, a tie 1/2 to each, so scores
    are comparable across samples with the same number of responses. A pair without a verdict
    marks both of its responses as errors: it is never counted as a win or a tie.
    """

    kind: ClassVar[RewardKind] = "pairwise"

    def compare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        raise NotImplementedError

    async def acompare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        raise NotImplementedError

    @property
    def is_async(self) -> bool:
        return type(self).acompare is not PairwiseReward.acompare

    def applies_to(self, sample: Sample) -> bool:
        return len(sample.responses) >= 2

    @staticmethod
    def _pairs(n: int) -> list[tuple[int, int]]:
        return list(itertools.combinations(range(n), 2))

    def _tally(self, sample: Sample, verdicts: dict[tuple[int, int], PairwiseVerdict]) -> list[ResponseScore]:
        n = len(sample.responses)
        wins = [0.0] * n
        errors: dict[int, str] = {}
        reasons: list[list[str]] = [[] for _ in range(n)]
        for (i, j), verdict in verdicts.items():
            if verdict.error or verdict.winner is None:
                message = f"pair ({i},{j}): {verdict.error or 'no verdict'}"
                errors.setdefault(i, message)
                errors.setdefault(j, message)
                continue
            if verdict.winner == "a":
                wins[i] += 1
            elif verdict.winner == "b":
                wins[j] += 1
            else:
                wins[i] += 0.5
                wins[j] += 0.5
            if verdict.reason:
                reasons[i].append(f"vs {j}: {verdict.reason}")
                reasons[j].append(f"vs {i}: {verdict.reason}")
        denominator = max(1, n - 1)
        return [
            error_score(errors[k])
            if k in errors
            else ResponseScore(score=wins[k] / denominator, reason="\n".join(reasons[k]))
            for k in range(n)
        ]

    def _score(self, sample: Sample) -> list[ResponseScore]:
        verdicts = {}
        for i, j in self._pairs(len(sample.responses)):
            try:
                verdicts[(i, j)] = self.compare(sample, i, j)
            except Exception as exc:
                verdicts[(i, j)] = PairwiseVerdict(error=describe_error(exc))
        return self._tally(sample, verdicts)

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        pairs = self._pairs(len(sample.responses))

        async def one(i: int, j: int) -> PairwiseVerdict:
            try:
                return await self.acompare(sample, i, j)
            except Exception as exc:
                return PairwiseVerdict(error=describe_error(exc))

        verdicts = await asyncio.gather(*(one(i, j) for i, j in pairs))
        return self._tally(sample, dict(zip(pairs, verdicts)))


class ListwiseReward(Reward):
    """Judges all responses together (e.g. a ranking); returns one score per response."""

    kind: ClassVar[RewardKind] = "listwise"

    def rank(self, sample: Sample) -> list[float | ResponseScore]:
        raise NotImplementedError

    async def arank(self, sample: Sample) -> list[float | ResponseScore]:
        raise NotImplementedError

    @property
    def is_async(self) -> bool:
        return type(self).arank is not ListwiseReward.arank

    def _score(self, sample: Sample) -> list[ResponseScore]:
        return [score_value(v) for v in self.rank(sample)]

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        return [score_value(v) for v in await self.arank(sample)]


def response_steps(sample: Sample, index: int) -> list[str]:
    """The steps of a response: its explicit steps, else its non-empty paragraphs."""
    response = sample.responses[index]
    if response.steps:
        return [s.content for s in response.steps]
    paragraphs = [p.strip() for p in response.text.split("\n\n")]
    return [p for p in paragraphs if p] or [response.text]


class StepwiseReward(Reward):
    """Judges each step of each response; the response score aggregates its step scores.

    `aggregate="min"` (the default) follows process reward models: a chain is as good as its
    weakest step.
    """

    kind: ClassVar[RewardKind] = "stepwise"
    aggregate: Literal["min", "mean", "last"] = "min"

    def score_steps(self, sample: Sample, index: int, steps: list[str]) -> list[float]:
        raise NotImplementedError

    async def ascore_steps(self, sample: Sample, index: int, steps: list[str]) -> list[float]:
        raise NotImplementedError

    @property
    def is_async(self) -> bool:
        return type(self).ascore_steps is not StepwiseReward.ascore_steps

    def _combine(self, step_scores: list[float]) -> ResponseScore:
        if not step_scores:
            return error_score("no steps to score")
        if self.aggregate == "min":
            total = min(step_scores)
        elif self.aggregate == "mean":
            total = sum(step_scores) / len(step_scores)
        else:
            total = step_scores[-1]
        return ResponseScore(score=total, steps=[float(s) for s in step_scores])

    def _score(self, sample: Sample) -> list[ResponseScore]:
        out = []
        for index in range(len(sample.responses)):
            try:
                out.append(self._combine(self.score_steps(sample, index, response_steps(sample, index))))
            except Exception as exc:
                out.append(error_score(describe_error(exc)))
        return out

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        async def one(index: int) -> ResponseScore:
            try:
                steps = response_steps(sample, index)
                return self._combine(await self.ascore_steps(sample, index, steps))
            except Exception as exc:
                return error_score(describe_error(exc))

        return list(await asyncio.gather(*(one(i) for i in range(len(sample.responses)))))


__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "ListwiseReward",
    "PairwiseReward",
    "PairwiseVerdict",
    "PointwiseReward",
    "Reward",
    "RewardKind",
    "StepwiseReward",
    "describe_error",
    "error_score",
    "gc_paused",
    "response_score",
    "response_steps",
    "reward_result",
    "run_sync",
    "score_value",
    "trusted_model",
]

