"""Refinement: judge a response, feed the critique back, ask for a better one, repeat.

    results = refine_batch(samples, judge, client, RefinementSettings(max_rounds=3))
    better = [refined_sample(s, r) for s, r in zip(samples, results)]

Round 0 scores the original response. Each later round asks the LLM (through `client`) to rewrite
the best response so far using its critique, and scores the rewrite with `judge` (any pointwise
reward: an LLM judge, or a rule whose `reason` serves as the critique). The loop stops after
`max_rounds` rewrites, as soon as a rewrite does not beat the best score by more than
`min_improvement`, when a score reaches `target_score`, or at the first failure. Every round is
kept with its response, score, critique and error, so a failed round is visible, not skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rm_rewards.core.kinds import PointwiseReward, run_sync
from rm_rewards.core.schema import ChatMessage, Response, ResponseScore, Sample
from rm_rewards.judging.templates import JudgeTemplate, render_conversation
from rm_rewards.llm.client import LLMClient
from rm_rewards.llm.structured import strip_think

REFINE_TEMPLATE = JudgeTemplate(
    name="refine",
    version="1",
    task=(
        "You improve an AI assistant's answer. You are given the conversation, the current answer "
        "and a reviewer's critique of it. Write a better answer that fixes every problem the "
        "critique raises and keeps what was already good."
    ),
    output_spec="Reply with the improved answer only: no preface, no notes about what you changed.",
)

StopReason = Literal["max_rounds", "no_improvement", "target_reached", "failed"]


class RefinementSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rounds: int = Field(default=3, ge=1, le=20, description="Rewrites after the original")
    min_improvement: float = Field(default=0.0, ge=0.0, description="A rewrite must beat the best by more")
    target_score: float | None = Field(default=None, description="Stop once a score reaches this")
    response_index: int = Field(default=0, ge=0, description="Which response of each sample to refine")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_concurrency: int = Field(default=32, ge=1)


class RefinementRound(BaseModel):
    round: int = Field(description="0 is the original response")
    response: str | None = Field(description="None when the rewrite itself failed")
    score: float | None = None
    critique: str = ""
    error: str | None = None


class RefinementResult(BaseModel):
    sample_id: str
    response_index: int
    judge: str = Field(description="The judge's name and version")
    rounds: list[RefinementRound]
    best_round: int | None = Field(description="Round with the highest score (earliest on ties)")
    stop_reason: StopReason

    @property
    def best_response(self) -> str | None:
        return None if self.best_round is None else self.rounds[self.best_round].response

    @property
    def improved(self) -> bool:
        return self.best_round is not None and self.best_round > 0


def _with_response(sample: Sample, text: str) -> Sample:
    """The sample reduced to one response with `text`, for the judge."""
    response = Response(message=ChatMessage(role="assistant", content=text))
    return sample.model_copy(update={"responses": [response], "preference": None})


async def _judge(judge: PointwiseReward, sample: Sample, text: str, round_number: int) -> RefinementRound:
    result = await judge.aevaluate(_with_response(sample, text))
    score: ResponseScore | None = result.scores[0] if result.scores else None
    error = result.error or (score.error if score is not None else "no score")
    if error is not None:
        return RefinementRound(round=round_number, response=text, error=f"judge: {error}")
    return RefinementRound(round=round_number, response=text, score=score.score, critique=score.reason)


async def _rewrite(
    client: LLMClient, settings: RefinementSettings, sample: Sample, current: RefinementRound
) -> tuple[str | None, str | None]:
    """(new text, None) or (None, error)."""
    heading, conversation = render_conversation(sample.input)
    body = (
        f"# {heading}\n{conversation}\n\n# Current answer\n{current.response}\n\n"
        f"# Critique (score {current.score:g})\n{current.critique or '(no critique given)'}\n\n"
        f"# Output\n{REFINE_TEMPLATE.output_spec}"
    )
    result = await client.chat(
        [{"role": "system", "content": REFINE_TEMPLATE.task}, {"role": "user", "content": body}],
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        template_version=REFINE_TEMPLATE.id,
    )
    if not result.ok:
        return None, f"rewrite: {result.error}"
    text = strip_think(result.content or "").strip()
    return (text, None) if text else (None, "rewrite: only a <think> block, no answer")


def _reached(settings: RefinementSettings, best: RefinementRound) -> bool:
    return settings.target_score is not None and best.score >= settings.target_score


async def arefine_sample(
    sample: Sample, judge: PointwiseReward, client: LLMClient, settings: RefinementSettings | None = None
) -> RefinementResult:
    """Refine one response of `sample` (see the module doc); failures are recorded, not raised."""
    settings = settings or RefinementSettings()
    index = settings.response_index
    if index >= len(sample.responses):
        raise ValueError(
            f"sample {sample.id}: response_index {index} but only {len(sample.responses)} responses"
        )
    rounds = [await _judge(judge, sample, sample.responses[index].text, 0)]
    if rounds[0].error is not None:  # nothing to improve on without a score and a critique
        return _result(sample.id, index, judge, rounds, None, "failed")
    best: int = 0
    stop: StopReason = "max_rounds"
    for round_number in range(1, settings.max_rounds + 1):
        if _reached(settings, rounds[best]):
            break
        text, error = await _rewrite(client, settings, sample, rounds[best])
        if text is None:
            rounds.append(RefinementRound(round=round_number, response=None, error=error))
            stop = "failed"
            break
        rounds.append(await _judge(judge, sample, text, round_number))
        if rounds[-1].error is not None:
            stop = "failed"
            break
        if rounds[-1].score <= rounds[best].score + settings.min_improvement:
            stop = "no_improvement"
            break
        best = round_number
    if stop == "max_rounds" and _reached(settings, rounds[best]):
        stop = "target_reached"
    return _result(sample.id, index, judge, rounds, best, stop)


def _result(
    sample_id: str,
    index: int,
    judge: PointwiseReward,
    rounds: list[RefinementRound],
    best: int | None,
    stop: StopReason,
) -> RefinementResult:
    return RefinementResult(
        sample_id=sample_id,
        response_index=index,
        judge=f"{judge.name}@{judge.version}",
        rounds=rounds,
        best_round=best,
        stop_reason=stop,
    )


async def arefine_batch(
    samples: Sequence[Sample],
    judge: PointwiseReward,
    client: LLMClient,
    settings: RefinementSettings | None = None,
) -> list[RefinementResult]:
    """`arefine_sample` for each sample, up to `settings.max_concurrency` at once, in order.

    A sample that cannot be refined at all (e.g. no response at `response_index`) gets a result
    with one failed round 0 instead of taking the batch down.
    """
    settings = settings or RefinementSettings()
    limit = asyncio.Semaphore(settings.max_concurrency)

    async def one(sample: Sample) -> RefinementResult:
        async with limit:
            try:
                return await arefine_sample(sample, judge, client, settings)
            except ValueError as exc:
                failed = RefinementRound(round=0, response=None, error=str(exc))
                return _result(sample.id, settings.response_index, judge, [failed], None, "failed")

    return list(await asyncio.gather(*(one(s) for s in samples)))


def refine_batch(
    samples: Sequence[Sample],
    judge: PointwiseReward,
    client: LLMClient,
    settings: RefinementSettings | None = None,
) -> list[RefinementResult]:
    """`arefine_batch` from sync code (safe inside a running event loop)."""
    return run_sync(lambda: arefine_batch(samples, judge, client, settings))


def refined_sample(sample: Sample, result: RefinementResult) -> Sample:
    """`sample` with the refined response replaced by the best round's text (when it improved).

    Human labels of the old response, and the sample's preference, do not describe the new text,
    so they are dropped; the refinement record goes into `metadata["refinement"]`.
    """
    if result.sample_id != sample.id:
        raise ValueError(f"refinement result is for sample {result.sample_id!r}, not {sample.id!r}")
    update: dict = {}
    if result.improved:
        responses = list(sample.responses)
        responses[result.response_index] = Response(
            message=ChatMessage(role="assistant", content=result.best_response or "")
        )
        # A preference between the old responses says nothing about the new one.
        update = {"responses": responses, "preference": None, "preference_strength": None}
    metadata = dict(sample.metadata)
    metadata["refinement"] = {
        "judge": result.judge,
        "response_index": result.response_index,
        "best_round": result.best_round,
        "stop_reason": result.stop_reason,
        "scores": [r.score for r in result.rounds],
        "errors": [r.error for r in result.rounds if r.error],
    }
    return sample.model_copy(update={**update, "metadata": metadata})


def refinement_candidates(samples: Sequence[Sample]) -> list[Sample]:
    """What to refine: pointwise responses as they are, and the rejected answer of each labelled pair
    (once per pair, via `fold_pairs`: not again for its swapped copy) as a one-response sample with id
    `<pair id>-rejected` and `metadata["source_sample_id"]` naming the pair's sample."""
    from rm_rewards.curation.pairs import fold_pairs

    candidates = [sample for sample in samples if sample.task == "pointwise"]
    pairs, _skipped = fold_pairs([sample for sample in samples if sample.task == "pairwise"])
    for pair in pairs:
        candidates.append(
            pair.sample.model_copy(
                update={"id": f"{pair.pair_id}-rejected", "task": "pointwise", "responses": [pair.rejected],
                        "preference": None, "preference_strength": None,
                        "metadata": {**pair.sample.metadata, "source_sample_id": pair.pair_id}}
            )
        )
    return candidates


__all__ = [
    "REFINE_TEMPLATE",
    "RefinementResult",
    "RefinementRound",
    "RefinementSettings",
    "arefine_batch",
    "arefine_sample",
    "refine_batch",
    "refined_sample",
    "refinement_candidates",
]
