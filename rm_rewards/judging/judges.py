"""Principle-based LLM judges as reward kinds: pointwise, pairwise, listwise and stepwise.

Every judge is a reward (`evaluate`, `aevaluate_batch`, ...) whose fields are its configuration:
`client` (the one `LLMClient`; not part of the reward version), `scenario`, `principles`,
`examples`, `template` (prompt text + version) and sampling parameters. Every call goes through
the client, so answers are cached, rate-limited and retried there; a batch runs concurrently.

Failures are values, never defaults: a failed call or an answer that does not parse into the
template's output model becomes an error on that response (or pair), and the other items go on.

Pairwise scoring asks every pair in both orders (i shown as A, then j shown as A; see
`PairwiseJudge.acompare_both`; `acompare` is one order, for callers that pick orders themselves,
like the benchmarks' pair judging). When the two orders agree, that is the verdict. When they disagree the judge is position-inconsistent on that
pair; with `on_inconsistent="tie"` (the default) the pair counts as a tie and its reason starts
with "position-inconsistent", with `"error"` the pair is an error. Either way it is counted: each
response's `dimensions["position_inconsistent"]` holds how many of its pairs were inconsistent,
and the result's metadata holds totals and every single-order verdict (`orders`, shaped like
`benchmarks.consistency.JudgedPair`). Scoring never takes one order's verdict on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from rm_rewards.core.kinds import (
    ListwiseReward,
    PairwiseReward,
    PairwiseVerdict,
    PointwiseReward,
    Reward,
    StepwiseReward,
    describe_error,
    error_score,
)
from rm_rewards.core.schema import DimensionScore, ResponseScore, RewardResult, Sample
from rm_rewards.judging.templates import (
    LISTWISE_TEMPLATE,
    PAIRWISE_TEMPLATE,
    POINTWISE_TEMPLATE,
    STEPWISE_TEMPLATE,
    JudgeTemplate,
    PairwiseJudgement,
    listwise_output_model,
    pointwise_output_model,
    render_answers,
    render_prompt,
    render_steps,
    stepwise_output_model,
)
from rm_rewards.llm.client import ChatResult, LLMClient

POSITION_INCONSISTENT = "position-inconsistent"


class JudgeCallError(RuntimeError):
    """The judge got no usable answer (failed call or unparseable output); the message says why."""


class LLMJudge(Reward):
    """What every principle-based judge has: a client, the prompt's content, sampling parameters."""

    is_llm: ClassVar[bool] = True

    client: LLMClient = Field(description="The LLM client; not part of the reward version")
    scenario: str = Field(default="", description="What kind of request is judged (shown as # Scenario)")
    principles: list[str] = Field(
        default_factory=list, description="Most important first; [] = overall quality"
    )
    examples: list[str] = Field(default_factory=list, description="Optional worked examples for the prompt")
    template: JudgeTemplate
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None

    @field_validator("principles", "examples")
    @classmethod
    def _no_blank_entries(cls, value: list[str]) -> list[str]:
        stripped = [text.strip() for text in value]
        blank = [index for index, text in enumerate(stripped) if not text]
        if blank:
            raise ValueError(f"entries {blank} are blank")
        return stripped

    @model_validator(mode="after")
    def _template_fits_kind(self) -> LLMJudge:
        # The output model is chosen by kind; a template asking for another shape would turn every
        # answer into a parse error, so say so at construction instead.
        if not self.template.name.startswith(self.kind):
            raise ValueError(
                f"template {self.template.id!r} does not fit a {self.kind} judge "
                f"(its name must start with {self.kind!r})"
            )
        return self

    def _unversioned_fields(self) -> set[str]:
        return {"client"}

    def _prompt(self, sample: Sample, heading: str, answers_text: str, **values: Any) -> list[dict[str, str]]:
        return render_prompt(
            self.template,
            scenario=self.scenario,
            principles=self.principles,
            examples=self.examples,
            conversation=sample.input,
            answers_heading=heading,
            answers_text=answers_text,
            output_values=values,
        )

    async def _ask(self, messages: list[dict[str, str]], output_model: type[BaseModel]) -> BaseModel:
        """The parsed answer, or `JudgeCallError` naming the client's failure reason."""
        result: ChatResult = await self.client.chat(
            messages,
            output_model=output_model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            template_version=self.template.id,
        )
        if not result.ok:
            raise JudgeCallError(f"judge call failed: {result.error}")
        return result.parsed


# --- pointwise -----------------------------------------------------------------------------------


class PointwiseJudge(LLMJudge, PointwiseReward):
    """Grades each response on its own: critique, violated principles, score 0..max_score."""

    template: JudgeTemplate = POINTWISE_TEMPLATE
    max_score: int = Field(default=4, ge=1, le=100)

    async def ascore_response(self, sample: Sample, index: int) -> ResponseScore:
        output_model = pointwise_output_model(len(self.principles), self.max_score)
        answers = render_answers([("answer", sample.responses[index].text)])
        messages = self._prompt(sample, "Answer", answers, max_score=self.max_score)
        try:
            judgement = await self._ask(messages, output_model)
        except JudgeCallError as exc:
            return error_score(str(exc))
        violated = judgement.violated
        reason = judgement.critique
        if violated:
            reason += f"\nViolated principles: {', '.join(str(v) for v in violated)}"
        return ResponseScore(
            score=float(judgement.score),
            reason=reason.strip(),
            dimensions={"violations": DimensionScore(score=float(len(violated)))},
        )


# --- pairwise ------------------------------------------------------------------------------------


class OrderVerdict(BaseModel):
    """One question as asked: `first` was shown as A, `second` as B; `winner` is positional."""

    first: int
    second: int
    winner: Literal["a", "b", "tie"] | None = None
    critique: str = ""
    error: str | None = None

    def winning_response(self) -> int | Literal["tie"] | None:
        if self.winner is None:
            return None
        if self.winner == "tie":
            return "tie"
        return self.first if self.winner == "a" else self.second


class JudgePairVerdict(PairwiseVerdict):
    """A verdict from both orders; `position_consistent` is None when an order had no verdict."""

    orders: list[OrderVerdict] = Field(default_factory=list)
    position_consistent: bool | None = None


class PairwiseJudge(LLMJudge, PairwiseReward):
    """Compares responses two at a time, each pair in both orders; see the module doc."""

    template: JudgeTemplate = PAIRWISE_TEMPLATE
    on_inconsistent: Literal["tie", "error"] = "tie"

    async def ajudge_order(self, sample: Sample, first: int, second: int) -> OrderVerdict:
        """Ask once with response `first` as A and `second` as B."""
        if first == second:
            raise ValueError(f"sample {sample.id}: cannot compare response {first} with itself")
        answers = render_answers([("A", sample.responses[first].text), ("B", sample.responses[second].text)])
        messages = self._prompt(sample, "Answers", answers)
        try:
            judgement: PairwiseJudgement = await self._ask(messages, PairwiseJudgement)
        except JudgeCallError as exc:
            return OrderVerdict(first=first, second=second, error=str(exc))
        winner = judgement.winner.lower() if judgement.winner != "tie" else "tie"
        return OrderVerdict(first=first, second=second, winner=winner, critique=judgement.critique)

    async def acompare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        """One question exactly as asked: response `i` shown as A, `j` as B.

        This is the primitive for callers that choose the orders themselves (the benchmarks'
        pair judging asks both and counts flips). Scoring a sample never uses it alone: it
        goes through `acompare_both`.
        """
        order = await self.ajudge_order(sample, i, j)
        return PairwiseVerdict(winner=order.winner, reason=order.critique, error=order.error)

    async def acompare_both(self, sample: Sample, i: int, j: int) -> JudgePairVerdict:
        """The verdict on responses `i` and `j` from both orders (see the module doc)."""
        forward, backward = await asyncio.gather(
            self.ajudge_order(sample, i, j), self.ajudge_order(sample, j, i)
        )
        orders = [forward, backward]
        failed = [o for o in orders if o.error is not None]
        if failed:
            message = "; ".join(f"order ({o.first} as A, {o.second} as B): {o.error}" for o in failed)
            return JudgePairVerdict(error=message, orders=orders)
        outcome = forward.winning_response()
        if outcome == backward.winning_response():
            winner = "tie" if outcome == "tie" else ("a" if outcome == i else "b")
            return JudgePairVerdict(
                winner=winner, reason=forward.critique, orders=orders, position_consistent=True
            )
        said = f"with {i} as A: {_said(forward)}; with {j} as A: {_said(backward)}"
        if self.on_inconsistent == "error":
            return JudgePairVerdict(
                error=f"{POSITION_INCONSISTENT}: {said}", orders=orders, position_consistent=False
            )
        return JudgePairVerdict(
            winner="tie",
            reason=f"{POSITION_INCONSISTENT} (counted as a tie): {said}",
            orders=orders,
            position_consistent=False,
        )

    async def _judge_sample(self, sample: Sample) -> tuple[list[ResponseScore], list[JudgePairVerdict]]:
        if len(sample.responses) < 2:
            raise ValueError(
                f"pairwise judging needs at least 2 responses, sample has {len(sample.responses)}"
            )
        pairs = self._pairs(len(sample.responses))
        verdicts = list(await asyncio.gather(*(self._safe_compare_both(sample, i, j) for i, j in pairs)))
        scores = self._tally(sample, dict(zip(pairs, verdicts)))
        return _with_inconsistency_counts(scores, pairs, verdicts), verdicts

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        scores, _verdicts = await self._judge_sample(sample)
        return scores

    async def aevaluate(self, sample: Sample) -> RewardResult:
        """Scores as `PairwiseReward` tallies them (both orders per pair), plus consistency metadata."""
        try:
            scores, verdicts = await self._judge_sample(sample)
            result = self._checked(sample, scores)
        except Exception as exc:  # noqa: BLE001 - a reward never takes the batch down
            return self._result(sample, None, describe_error(exc))
        result.metadata.update(pair_metadata(verdicts))
        return result

    async def _safe_compare_both(self, sample: Sample, i: int, j: int) -> JudgePairVerdict:
        try:
            return await self.acompare_both(sample, i, j)
        except Exception as exc:  # noqa: BLE001 - one pair's failure is that pair's error
            return JudgePairVerdict(error=describe_error(exc))


def _said(order: OrderVerdict) -> str:
    outcome = order.winning_response()
    return "tie" if outcome == "tie" else f"{outcome} wins"


def _with_inconsistency_counts(
    scores: list[ResponseScore], pairs: list[tuple[int, int]], verdicts: list[JudgePairVerdict]
) -> list[ResponseScore]:
    counts = [0] * len(scores)
    for (i, j), verdict in zip(pairs, verdicts):
        if verdict.position_consistent is False:
            counts[i] += 1
            counts[j] += 1
    out = []
    for score, count in zip(scores, counts):
        dimensions = dict(score.dimensions)
        dimensions["position_inconsistent"] = DimensionScore(score=float(count))
        out.append(score.model_copy(update={"dimensions": dimensions}))
    return out


def pair_metadata(verdicts: Sequence[JudgePairVerdict]) -> dict[str, Any]:
    """Totals for a sample's pairs and every single-order verdict (as `JudgedPair` fields)."""
    return {
        "pairs": len(verdicts),
        "position_consistent": sum(1 for v in verdicts if v.position_consistent is True),
        "position_inconsistent": sum(1 for v in verdicts if v.position_consistent is False),
        "failed_pairs": sum(
            1 for v in verdicts if v.error is not None and v.position_consistent is not False
        ),
        "orders": [
            o.model_dump(include={"first", "second", "winner", "error"}) for v in verdicts for o in v.orders
        ],
    }


# --- listwise ------------------------------------------------------------------------------------


def presentation_order(sample: Sample, shuffle: bool) -> list[int]:
    """The order answers are shown in: a fixed shuffle per sample id (so re-runs hit the cache).

    Datasets often list the preferred answer first; showing that order would reward a judge's
    position bias.
    """
    order = list(range(len(sample.responses)))
    if shuffle:
        seed = int.from_bytes(hashlib.sha256(sample.id.encode()).digest()[:8], "big")
        random.Random(seed).shuffle(order)
    return order


class ListwiseJudge(LLMJudge, ListwiseReward):
    """Ranks all responses at once; a response at rank r of n scores (n - r) / (n - 1), best = 1."""

    template: JudgeTemplate = LISTWISE_TEMPLATE
    shuffle: bool = Field(default=True, description="Show answers in a fixed per-sample shuffled order")

    def applies_to(self, sample: Sample) -> bool:
        return len(sample.responses) >= 2

    async def arank(self, sample: Sample) -> list[ResponseScore]:
        n = len(sample.responses)
        if n < 2:
            raise ValueError(f"listwise judging needs at least 2 responses, sample has {n}")
        shown = presentation_order(sample, self.shuffle)
        answers = render_answers(
            [(str(k + 1), sample.responses[index].text) for k, index in enumerate(shown)]
        )
        messages = self._prompt(sample, "Answers", answers, n_answers=n)
        try:
            judgement = await self._ask(messages, listwise_output_model(n))
        except JudgeCallError as exc:
            return [error_score(str(exc))] * n
        scores: list[ResponseScore | None] = [None] * n
        for rank, number in enumerate(judgement.ranking):
            index = shown[number - 1]
            reason = f"rank {rank + 1} of {n}. {judgement.critique}".strip()
            scores[index] = ResponseScore(score=(n - 1 - rank) / (n - 1), reason=reason)
        return scores  # every slot is filled: the ranking is a validated permutation


# --- stepwise ------------------------------------------------------------------------------------


class StepwiseJudge(LLMJudge, StepwiseReward):
    """Judges every step of a response (1 correct, 0 not); the response score aggregates them."""

    template: JudgeTemplate = STEPWISE_TEMPLATE

    async def ascore_steps(self, sample: Sample, index: int, steps: list[str]) -> list[float]:
        if not steps:
            raise ValueError(f"sample {sample.id} response {index} has no steps")
        messages = self._prompt(sample, "Answer steps", render_steps(steps), n_steps=len(steps))
        judgement = await self._ask(messages, stepwise_output_model(len(steps)))
        return [1.0 if verdict.correct else 0.0 for verdict in judgement.steps]


__all__ = [
    "POSITION_INCONSISTENT",
    "JudgeCallError",
    "JudgePairVerdict",
    "LLMJudge",
    "ListwiseJudge",
    "OrderVerdict",
    "PairwiseJudge",
    "PointwiseJudge",
    "StepwiseJudge",
    "pair_metadata",
    "presentation_order",
]
