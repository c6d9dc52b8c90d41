"""Principles learned from preference pairs: propose, check with a judge, revise, select, merge.

    principle_set = generate_principles(pairwise_samples, client, PrincipleSettings(max_themes=5))
    judge = PairwiseJudge(client=client, principles=principle_set.principles, scenario=...)

1. Pairs: `rm_rewards.curation.pairs.fold_pairs` keeps each labelled pair once (a pairwise `Sample` with
   two different responses and a `preference`, the index of the better one). Ties, malformed
   samples and the swapped copy of a pair already seen are skipped, each with its reason
   (`provenance.skipped`).
2. Per pair, at most `max_rounds` rounds: the LLM proposes principles explaining why the
   preferred answer is better (round 1) or revises them given the judge's critique (later rounds);
   a pairwise judge (both orders) with those principles then judges the pair. The first round whose
   principles make the judge agree with the label keeps them; a pair that never agrees adds none.
3. Selection: distinct candidates are embedded with MiniLM and a diverse subset of `n_selected`
   is chosen by farthest-point order, starting from the most often proposed one.
4. Merge: one LLM call folds the selected principles into at most `max_themes` themes. If it
   fails, the first `max_themes` of the selection are used and the failure is recorded.
5. Agreement of a pairwise judge with the labels on the same pairs, before (with
   `baseline_principles`, by default none) and after (with the result); measured last, and
   skipped once the failure budget is spent.

Every loop is bounded (pairs x rounds, one merge), and LLM failures are recorded, never turned into
principles: a failed call ends that pair's loop, and after `max_llm_failures` failures no new call
is started, so a dead endpoint ends the run quickly with what it has (`provenance.stopped_early`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from rm_rewards.core.kinds import run_sync
from rm_rewards.core.schema import Sample
from rm_rewards.curation.pairs import LabelledPair, SkippedSample, fold_pairs
from rm_rewards.judging.alignment import JUDGE_CLASSES
from rm_rewards.judging.embeddings import Embedder, EmbeddingError, default_embedder, farthest_point_order
from rm_rewards.judging.judges import JudgePairVerdict, LLMJudge, PairwiseJudge
from rm_rewards.judging.templates import (
    PAIRWISE_TEMPLATE,
    JudgeTemplate,
    fill,
    render_answers,
    render_conversation,
    render_principles,
)
from rm_rewards.llm.client import LLMClient

PROPOSE_TEMPLATE = JudgeTemplate(
    name="principle_propose",
    version="1",
    task=(
        "You study human preferences between AI assistant answers. You are shown a conversation, "
        "two answers, and which one people preferred. Write general principles that explain the "
        "preference: each one must be a rule a judge could apply to other conversations of this "
        "kind, not a remark about this particular topic."
    ),
    output_spec=(
        "Reply with one JSON object and nothing else:\n"
        '{"principles": ["<short title>: <one sentence a judge can check>", ...]}\n'
        "Give between 1 and {max_principles} principles, the most decisive first."
    ),
)

REVISE_TEMPLATE = JudgeTemplate(
    name="principle_revise",
    version="1",
    task=PROPOSE_TEMPLATE.task
    + " Your previous principles did not lead a judge to the preferred answer; revise them so that "
    "they capture what really makes the preferred answer better.",
    output_spec=PROPOSE_TEMPLATE.output_spec,
)

MERGE_TEMPLATE = JudgeTemplate(
    name="principle_merge",
    version="1",
    task=(
        "You consolidate principles for judging AI assistant answers. Merge the candidate "
        "principles into a few general, non-overlapping themes that keep every distinct idea."
    ),
    output_spec=(
        "Reply with one JSON object and nothing else:\n"
        '{"principles": ["<theme title>: <one sentence a judge can check>", ...]}\n'
        "Give between 1 and {max_principles} principles, the most important first."
    ),
)

PrincipleText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=400)]


class _PrincipleList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    principles: list[PrincipleText]


@functools.lru_cache(maxsize=64)
def principles_output_model(max_principles: int) -> type[_PrincipleList]:
    """`{"principles": [...]}` with 1..max_principles entries of 3..400 characters."""
    return create_model(
        f"PrincipleList_{max_principles}",
        __base__=_PrincipleList,
        __module__=__name__,
        principles=(list[PrincipleText], Field(min_length=1, max_length=max_principles)),
    )


# --- results -------------------------------------------------------------------------------------


class PrincipleSettings(BaseModel):
    """Every knob of `generate_principles`, with its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str = Field(default="", description="Shown to the LLM and to the judge (# Scenario)")
    max_rounds: int = Field(default=3, ge=1, le=10, description="Propose + revisions per pair")
    max_principles_per_pair: int = Field(default=3, ge=1, le=10)
    n_selected: int = Field(default=10, ge=1, le=100, description="Diverse candidates sent to the merge")
    max_themes: int = Field(default=5, ge=1, le=20, description="At most this many principles in the result")
    baseline_principles: tuple[str, ...] = Field(
        default=(), description="The judge's principles for 'before'"
    )
    max_llm_failures: int = Field(
        default=10, ge=1, description="Start no new LLM call after this many failures"
    )
    max_concurrent_pairs: int = Field(default=8, ge=1, le=1024)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    measure_agreement: bool = True


class PrincipleFailure(BaseModel):
    stage: Literal["propose", "revise", "judge", "select", "merge", "agreement"]
    error: str
    pair_id: str | None = None
    round: int | None = None


class PairOutcome(BaseModel):
    pair_id: str
    rounds: int = Field(description="Rounds run (0: none, the failure budget was spent)")
    agreed: bool = False
    principles: list[str] = Field(default_factory=list, description="Kept principles (those that agreed)")
    stopped: str = ""


class CandidatePrinciple(BaseModel):
    text: str
    support: int = Field(description="How many pairs proposed it")
    pair_ids: list[str]


class AgreementStats(BaseModel):
    """How often a pairwise judge (both orders) picks the labelled answer."""

    principles: list[str]
    n_pairs: int
    agree: int
    disagree: int
    position_inconsistent: int
    failed: int

    @property
    def rate(self) -> float | None:
        """Agreements over all pairs: inconsistent and failed pairs count as not agreeing."""
        return self.agree / self.n_pairs if self.n_pairs else None


class PrincipleProvenance(BaseModel):
    model: str
    template_version: str
    settings: PrincipleSettings
    pairs_used: list[str]
    skipped: list[SkippedSample]
    pair_outcomes: list[PairOutcome]
    rounds: int = Field(description="Rounds run over all pairs")
    candidates: list[CandidatePrinciple]
    selected: list[str]
    selection_method: Literal["none", "all", "farthest_point", "support"]
    merged: bool
    agreement_before: AgreementStats | None
    agreement_after: AgreementStats | None
    failures: list[PrincipleFailure]
    stopped_early: bool = Field(description="The failure budget was spent: some work was not attempted")


class PrincipleSet(BaseModel):
    id: str = Field(description="Content hash of scenario and principles")
    scenario: str
    principles: list[str]
    provenance: PrincipleProvenance

    def judge(self, client: LLMClient, kind: str = "pairwise", **params) -> LLMJudge:
        """A judge of `kind` (pointwise, pairwise, listwise, stepwise) using these principles."""
        if kind not in JUDGE_CLASSES:
            raise ValueError(f"unknown judge kind {kind!r}; expected one of {', '.join(JUDGE_CLASSES)}")
        judge = JUDGE_CLASSES[kind](
            client=client, scenario=self.scenario, principles=self.principles, **params
        )
        return judge.named(f"principles_{self.id}_{kind}")


def principle_set_id(scenario: str, principles: Sequence[str]) -> str:
    payload = json.dumps({"scenario": scenario, "principles": list(principles)}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def template_version() -> str:
    templates = (PROPOSE_TEMPLATE, REVISE_TEMPLATE, MERGE_TEMPLATE, PAIRWISE_TEMPLATE)
    return "+".join(t.id for t in templates)


# --- pairs ---------------------------------------------------------------------------------------


def _agrees(verdict: JudgePairVerdict, chosen: int) -> bool:
    return verdict.error is None and verdict.winner == ("a" if chosen == 0 else "b")


# --- one run -------------------------------------------------------------------------------------


class _Run:
    """State of one generation run: client, settings, failures and the failure budget."""

    def __init__(self, client: LLMClient, settings: PrincipleSettings) -> None:
        self.client = client
        self.settings = settings
        self.failures: list[PrincipleFailure] = []
        self.llm_failures = 0

    @property
    def budget_spent(self) -> bool:
        return self.llm_failures >= self.settings.max_llm_failures

    def fail(
        self,
        stage: str,
        error: str,
        pair_id: str | None = None,
        round_number: int | None = None,
        *,
        llm_calls: int = 1,
    ) -> None:
        """Record a failure; `llm_calls` of them count against the failure budget."""
        self.failures.append(PrincipleFailure(stage=stage, error=error, pair_id=pair_id, round=round_number))
        self.llm_failures += llm_calls

    def judge(self, principles: Sequence[str]) -> PairwiseJudge:
        return PairwiseJudge(
            client=self.client,
            scenario=self.settings.scenario,
            principles=list(principles),
            temperature=self.settings.temperature,
        )

    async def ask_principles(self, template: JudgeTemplate, body: str, max_principles: int) -> list[str]:
        """The principles the LLM wrote; raises RuntimeError with the client's reason on failure."""
        messages = [
            {"role": "system", "content": template.task},
            {
                "role": "user",
                "content": body
                + "\n\n# Output\n"
                + fill(template.output_spec, {"max_principles": max_principles}),
            },
        ]
        result = await self.client.chat(
            messages,
            output_model=principles_output_model(max_principles),
            temperature=self.settings.temperature,
            template_version=template.id,
        )
        if not result.ok:
            raise RuntimeError(str(result.error))
        return list(result.parsed.principles)


def _pair_prompt(pair: LabelledPair, scenario: str) -> str:
    heading, conversation = render_conversation(pair.sample.input)
    answers = render_answers([("A", pair.sample.responses[0].text), ("B", pair.sample.responses[1].text)])
    sections = [f"# Scenario\n{scenario}"] if scenario.strip() else []
    sections += [f"# {heading}\n{conversation}", f"# Answers\n{answers}"]
    sections.append(f"# Preference\nPeople preferred answer {'AB'[pair.chosen_index]}.")
    return "\n\n".join(sections)


def _revision_prompt(
    pair: LabelledPair, scenario: str, previous: list[str], verdict: JudgePairVerdict
) -> str:
    if verdict.winner == "tie":
        outcome = "could not separate the answers (a tie or a position-dependent verdict)"
    else:
        outcome = f"preferred answer {'A' if verdict.winner == 'a' else 'B'}"
    return (
        _pair_prompt(pair, scenario)
        + f"\n\n# Previous principles\n{render_principles(previous)}"
        + f"\n\n# What the judge did with them\nThe judge {outcome}. Its critique: {verdict.reason or '(none)'}"
    )


async def _learn_from_pair(run: _Run, pair: LabelledPair) -> PairOutcome:
    settings = run.settings
    principles: list[str] = []
    verdict: JudgePairVerdict | None = None
    for round_number in range(1, settings.max_rounds + 1):
        if run.budget_spent:
            return PairOutcome(pair_id=pair.pair_id, rounds=round_number - 1, stopped="failure budget spent")
        stage = "propose" if verdict is None else "revise"
        if verdict is None:
            template, body = PROPOSE_TEMPLATE, _pair_prompt(pair, settings.scenario)
        else:
            template, body = REVISE_TEMPLATE, _revision_prompt(pair, settings.scenario, principles, verdict)
        try:
            principles = await run.ask_principles(template, body, settings.max_principles_per_pair)
        except RuntimeError as exc:
            run.fail(stage, str(exc), pair.pair_id, round_number)
            return PairOutcome(pair_id=pair.pair_id, rounds=round_number, stopped=f"{stage} failed")
        verdict = await run.judge(principles).acompare_both(pair.sample, 0, 1)
        if verdict.error is not None:
            run.fail("judge", verdict.error, pair.pair_id, round_number)
            return PairOutcome(pair_id=pair.pair_id, rounds=round_number, stopped="judge failed")
        if _agrees(verdict, pair.chosen_index):
            return PairOutcome(pair_id=pair.pair_id, rounds=round_number, agreed=True, principles=principles)
    return PairOutcome(
        pair_id=pair.pair_id, rounds=settings.max_rounds, stopped="no agreement within max_rounds"
    )


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".")


def collect_candidates(outcomes: Sequence[PairOutcome]) -> list[CandidatePrinciple]:
    """Distinct kept principles (case and spacing ignored), most supported first, then first seen."""
    by_key: dict[str, CandidatePrinciple] = {}
    for outcome in outcomes:
        for text in outcome.principles:
            key = _normalise(text)
            if key not in by_key:
                by_key[key] = CandidatePrinciple(text=text, support=0, pair_ids=[])
            if outcome.pair_id not in by_key[key].pair_ids:
                by_key[key].support += 1
                by_key[key].pair_ids.append(outcome.pair_id)
    ordered = list(by_key.values())
    ordered.sort(key=lambda c: -c.support)  # stable: first seen wins ties
    return ordered


async def _select(
    run: _Run, candidates: list[CandidatePrinciple], embedder: Embedder | None
) -> tuple[list[str], str]:
    texts = [c.text for c in candidates]
    if not texts:
        return [], "none"
    if len(texts) <= run.settings.n_selected:
        return texts, "all"
    try:
        vectors = await asyncio.to_thread((embedder or default_embedder()).embed, texts)
        order = farthest_point_order(np.asarray(vectors), run.settings.n_selected, first=0)
    except (EmbeddingError, ValueError) as exc:
        run.fail("select", f"{type(exc).__name__}: {exc}; fell back to the most supported", llm_calls=0)
        return texts[: run.settings.n_selected], "support"
    return [texts[i] for i in order], "farthest_point"


async def _merge(run: _Run, selected: list[str]) -> tuple[list[str], bool]:
    limit = run.settings.max_themes
    fallback = selected[:limit]
    if not selected:
        return [], False
    if run.budget_spent:
        run.fail(
            "merge", "not attempted: the failure budget is spent; used the selection unmerged", llm_calls=0
        )
        return fallback, False
    sections = [f"# Scenario\n{run.settings.scenario}"] if run.settings.scenario.strip() else []
    sections.append("# Candidate principles\n" + "\n".join(f"{k}. {t}" for k, t in enumerate(selected, 1)))
    try:
        return await run.ask_principles(MERGE_TEMPLATE, "\n\n".join(sections), limit), True
    except RuntimeError as exc:
        run.fail("merge", f"{exc}; used the first {len(fallback)} selected principles unmerged")
        return fallback, False


async def aagreement(
    pairs: Sequence[LabelledPair], judge: PairwiseJudge, *, max_concurrency: int = 64
) -> AgreementStats:
    """How often `judge` (both orders) agrees with each pair's label."""
    limit = asyncio.Semaphore(max_concurrency)

    async def one(pair: LabelledPair) -> JudgePairVerdict:
        async with limit:
            return await judge.acompare_both(pair.sample, 0, 1)

    verdicts = await asyncio.gather(*(one(p) for p in pairs))
    agree = sum(1 for p, v in zip(pairs, verdicts) if _agrees(v, p.chosen_index))
    inconsistent = sum(1 for v in verdicts if v.position_consistent is False)
    failed = sum(1 for v in verdicts if v.error is not None and v.position_consistent is not False)
    return AgreementStats(
        principles=list(judge.principles),
        n_pairs=len(pairs),
        agree=agree,
        disagree=len(pairs) - agree - inconsistent - failed,
        position_inconsistent=inconsistent,
        failed=failed,
    )


async def _measure(
    run: _Run, pairs: list[LabelledPair], principles: Sequence[str]
) -> AgreementStats | None:
    if not run.settings.measure_agreement or not pairs or run.budget_spent:
        return None
    stats = await aagreement(pairs, run.judge(principles))
    if stats.failed:
        run.fail(
            "agreement",
            f"{stats.failed} of {stats.n_pairs} pairs got no verdict with principles {list(principles)}",
            llm_calls=stats.failed,
        )
    return stats


async def agenerate_principles(
    samples: Sequence[Sample],
    client: LLMClient,
    settings: PrincipleSettings | None = None,
    *,
    embedder: Embedder | None = None,
) -> PrincipleSet:
    """Learn principles from labelled pairs (see the module doc); never raises for LLM failures."""
    settings = settings or PrincipleSettings()
    run = _Run(client, settings)
    pairs, skipped = fold_pairs(samples)
    gate = asyncio.Semaphore(settings.max_concurrent_pairs)

    async def gated(pair: LabelledPair) -> PairOutcome:
        async with gate:
            return await _learn_from_pair(run, pair)

    outcomes = list(await asyncio.gather(*(gated(p) for p in pairs)))
    candidates = collect_candidates(outcomes)
    selected, method = await _select(run, candidates, embedder)
    principles, merged = await _merge(run, selected)
    # Measured last, so a spent failure budget skips them instead of calling a dead endpoint.
    before = await _measure(run, pairs, settings.baseline_principles)
    after = await _measure(run, pairs, principles) if principles else None
    provenance = PrincipleProvenance(
        model=client.config.model,
        template_version=template_version(),
        settings=settings,
        pairs_used=[p.pair_id for p in pairs],
        skipped=skipped,
        pair_outcomes=outcomes,
        rounds=sum(o.rounds for o in outcomes),
        candidates=candidates,
        selected=selected,
        selection_method=method,
        merged=merged,
        agreement_before=before,
        agreement_after=after,
        failures=run.failures,
        stopped_early=run.budget_spent,
    )
    return PrincipleSet(
        id=principle_set_id(settings.scenario, principles),
        scenario=settings.scenario,
        principles=principles,
        provenance=provenance,
    )


def generate_principles(
    samples: Sequence[Sample],
    client: LLMClient,
    settings: PrincipleSettings | None = None,
    *,
    embedder: Embedder | None = None,
) -> PrincipleSet:
    """`agenerate_principles` from sync code (safe inside a running event loop)."""
    return run_sync(lambda: agenerate_principles(samples, client, settings, embedder=embedder))


__all__ = [
    "MERGE_TEMPLATE",
    "PROPOSE_TEMPLATE",
    "REVISE_TEMPLATE",
    "AgreementStats",
    "CandidatePrinciple",
    "PairOutcome",
    "PrincipleFailure",
    "PrincipleProvenance",
    "PrincipleSet",
    "PrincipleSettings",
    "aagreement",
    "agenerate_principles",
    "collect_candidates",
    "generate_principles",
    "principle_set_id",
    "principles_output_model",
]
