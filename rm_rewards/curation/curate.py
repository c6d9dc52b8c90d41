"""Curation: which preference pairs a reward model trains on, and why, as one pure function.

    result = curate(pairs, samples_by_id, score_records, refinements, CurationPolicy())
    result.pairs        # list[TrainingPairRecord]: every candidate pair with its decision
    result.counts()     # {"by_reason": {...}, "by_decision": {...}}

Inputs are plain records (no warehouse types): the partition's labelled pairs
(`rm_rewards.curation.pairs.fold_pairs`), every converted sample by id, the rule_scores and llm_scores
rows (`ScoreRecord`) and the refined_samples rows (`RefinementRecord`). Out come three kinds of
pair (`reason`):

- `human`: each labelled pair once, chosen and rejected as people labelled them;
- `relabelled`: a human pair an LLM judge contradicted, swapped (only with
  `on_contradiction="relabel"`);
- `refined`: a refinement whose best rewrite beat the original by `refined_margin` (chosen: the
  rewrite, rejected: the original, context and split: the source sample's, so no test prompt
  leaks into training).

Each gets a `decision`: kept, flagged (trained on, but worth a look) or dropped (kept as a row
for the audit, never trained on), with `decision_notes` saying why and `decided_by` naming the
score or refinement rows that decided it. A missing score row decides nothing; a score row that
failed flags the pair instead of passing or dropping it silently.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rm_rewards.core.schema import ChatMessage, Response, Sample, Split
from rm_rewards.curation.pairs import LabelledPair, SkippedSample

Reason = Literal["human", "refined", "relabelled"]
Decision = Literal["kept", "flagged", "dropped"]
REASONS: tuple[Reason, ...] = ("human", "refined", "relabelled")
DECISIONS: tuple[Decision, ...] = ("kept", "flagged", "dropped")
TRAINED_DECISIONS: tuple[Decision, ...] = ("kept", "flagged")
_SEVERITY = {decision: rank for rank, decision in enumerate(DECISIONS)}


# --- inputs --------------------------------------------------------------------------------------


class ScoreRecord(BaseModel):
    """One row of the rule_scores or llm_scores table (one reward applied to one sample)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: Literal["rule_scores", "llm_scores"]
    sample_id: str
    reward_name: str
    reward_version: str = "1"
    scores: list[float | None] = Field(
        default_factory=list, description="One per response, in the sample's order"
    )
    reasons: list[str] = Field(default_factory=list)
    response_errors: list[str | None] = Field(default_factory=list)
    error: str | None = Field(default=None, description="The whole sample failed")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="For pairwise LLM judges: pairs, position_consistent, position_inconsistent, "
        "failed_pairs, orders (rm_rewards.judging.judges.pair_metadata)",
    )

    def reference(self) -> dict[str, str]:
        return {
            "table": self.table,
            "sample_id": self.sample_id,
            "reward_name": self.reward_name,
            "reward_version": self.reward_version,
        }


class RefinementRecord(BaseModel):
    """One round of one refined response (a refined_samples row); round 0 is the original."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_id: str = Field(description="The candidate: a pointwise sample id or `<pair sample id>-rejected`")
    source_sample_id: str = Field(description="The converted sample the candidate was taken from")
    round: int = Field(ge=0)
    response: dict[str, Any] | None = Field(description="A `Response` dump; None when the rewrite failed")
    score: float | None = None
    error: str | None = None
    is_best: bool = False
    judge: str = ""

    @field_validator("response", mode="before")
    @classmethod
    def _text_is_an_assistant_reply(cls, value: Any) -> Any:
        # refined_samples has stored the bare response text; read it as the assistant reply it is.
        if isinstance(value, str):
            return {"message": {"role": "assistant", "content": value}}
        return value

    def as_response(self) -> Response | None:
        return None if self.response is None else Response.model_validate(self.response)

    def reference(self) -> dict[str, Any]:
        return {
            "table": "refined_samples",
            "sample_id": self.sample_id,
            "round": self.round,
            "judge": self.judge,
        }


# --- policy --------------------------------------------------------------------------------------


class RuleGate(BaseModel):
    """Act on a pair whose chosen response scores below `below` on the rule reward `reward`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward: str = Field(description="Registered rule reward name (its rule_scores rows are read)")
    below: float = Field(description="A chosen-response score under this triggers `action`")
    action: Literal["drop", "flag"] = Field(description="What a failing chosen response does to the pair")


DEFAULT_RULE_GATES = (
    # Code that fails its tests is a wrong answer, whatever people preferred.
    RuleGate(reward="code_execution", below=1.0, action="drop"),
    # math_verify misreads some correct answers in unusual notation: worth a look, not a drop.
    RuleGate(reward="math_verify", below=1.0, action="flag"),
)


class CurationPolicy(BaseModel):
    """Every knob of `curate`, with its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_contradiction: Literal["flag", "drop", "keep", "relabel"] = Field(
        default="flag",
        description="A human pair that a pairwise LLM judge decided the other way, consistently in both "
        "orders and without error: flag it, drop it, keep it as is, or relabel it (swap chosen and "
        "rejected, reason `relabelled`). Ties, position-inconsistent verdicts and errors never contradict.",
    )
    refined_margin: float = Field(
        default=0.5,
        ge=0.0,
        description="Add a refined pair (best rewrite chosen, original rejected) when the best round is "
        "not the original, has no error, and its score beats the original's by at least this much",
    )
    rule_gates: tuple[RuleGate, ...] = Field(
        default=DEFAULT_RULE_GATES,
        description="Checks of the chosen response's rule scores; a missing score row skips the gate, a "
        "failed one flags the pair",
    )

    def policy_hash(self) -> str:
        """Content hash of the policy, to version the pairs it decided."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


# --- outputs -------------------------------------------------------------------------------------


class TrainingPairRecord(BaseModel):
    """One curated pair: what to train on, where it came from, and what decided it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pair_id: str = Field(description="Hash of context, chosen text, rejected text and reason")
    split: Split = Field(description="The source sample's split")
    reason: Reason
    decision: Decision = Field(description="kept and flagged pairs are trained on; dropped ones are not")
    decision_notes: list[str] = Field(default_factory=list, description="Why: which gate or contradiction")
    context: list[ChatMessage]
    chosen: Response
    rejected: Response
    sample_ids: list[str] = Field(description="Every converted sample the pair came from")
    raw_row_indices: list[int] = Field(description="The raw rows those samples came from (sorted, distinct)")
    decided_by: list[dict[str, Any]] = Field(
        default_factory=list, description="References to the score / refinement rows that decided it"
    )


class CurationResult(BaseModel):
    """Every candidate pair with its decision, and the inputs that could not become a pair."""

    pairs: list[TrainingPairRecord]
    skipped: list[SkippedSample] = Field(
        default_factory=list, description="Ties and refinements that gave no pair, with the reason"
    )

    def counts(self) -> dict[str, dict[str, int]]:
        """Pairs by reason and by decision (every value listed, zeros included)."""
        return {
            "by_reason": {reason: sum(p.reason == reason for p in self.pairs) for reason in REASONS},
            "by_decision": {
                decision: sum(p.decision == decision for p in self.pairs) for decision in DECISIONS
            },
        }

    def examples_markdown(self, limit: int = 5) -> str:
        """A markdown table of up to `limit` pairs: one of each (reason, decision) first, in order."""
        firsts: dict[tuple[str, str], TrainingPairRecord] = {}
        for pair in self.pairs:
            firsts.setdefault((pair.reason, pair.decision), pair)
        chosen = list(firsts.values())
        chosen += [p for p in self.pairs if all(p is not c for c in chosen)]
        rows = [
            "| reason | decision | notes | chosen | rejected |",
            "| --- | --- | --- | --- | --- |",
            *(
                f"| {p.reason} | {p.decision} | {_cell('; '.join(p.decision_notes))} | "
                f"{_cell(p.chosen.text)} | {_cell(p.rejected.text)} |"
                for p in chosen[:limit]
            ),
        ]
        return "\n".join(rows) if self.pairs else "_no pairs_"


def _cell(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    if len(flat) > width:
        flat = flat[: width - 1] + "…"
    return flat.replace("|", "\\|")


# --- curation ------------------------------------------------------------------------------------


def training_pair_id(context: Sequence[ChatMessage], chosen: str, rejected: str, reason: str) -> str:
    payload = [[m.model_dump(mode="json") for m in context], chosen, rejected, reason]
    # ASCII-escaped: text with lone surrogates (not encodable as UTF-8) still hashes.
    text = json.dumps(payload, ensure_ascii=True, sort_keys=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


class _Inputs:
    """The records `curate` reads, indexed by sample."""

    def __init__(
        self,
        pairs: Sequence[LabelledPair],
        samples_by_id: Mapping[str, Sample],
        scores: Iterable[ScoreRecord],
        policy: CurationPolicy,
    ) -> None:
        self.samples = {**{pair.pair_id: pair.sample for pair in pairs}, **samples_by_id}
        self.policy = policy
        self.llm: dict[str, list[ScoreRecord]] = defaultdict(list)
        self.rule: dict[tuple[str, str], list[ScoreRecord]] = defaultdict(list)
        for record in scores:
            if record.table == "llm_scores":
                self.llm[record.sample_id].append(record)
            else:
                self.rule[(record.sample_id, record.reward_name)].append(record)

    def raw_rows(self, sample_ids: Iterable[str]) -> list[int]:
        indices: set[int] = set()
        for sample_id in sample_ids:
            sample = self.samples.get(sample_id)
            if sample is not None:
                indices.update(int(i) for i in sample.metadata.get("raw_row_indices", []))
        return sorted(indices)


def _judge_verdict(record: ScoreRecord, sample: Sample) -> str | None:
    """A pairwise LLM judge row as `error`, `inconsistent`, `tie` or the winning text; None when the
    row is not a pairwise verdict (no pair metadata: another kind of judge)."""
    # Imported here: the judges pull in the LLM client, and training workers import this module.
    from rm_rewards.judging.judges import POSITION_INCONSISTENT

    meta = record.metadata
    if "pairs" not in meta:
        return None
    if record.error or any(e is not None for e in record.response_errors) or meta.get("failed_pairs"):
        return "error"
    if meta.get("position_inconsistent") or any(POSITION_INCONSISTENT in r for r in record.reasons):
        return "inconsistent"
    scores = record.scores
    if len(scores) != 2 or len(sample.responses) != 2 or None in scores:
        return "error"
    if scores[0] == scores[1]:
        return "tie"
    return sample.responses[0 if scores[0] > scores[1] else 1].text


def _contradictions(pair: LabelledPair, inputs: _Inputs) -> list[ScoreRecord]:
    """The judge rows that chose the rejected response, if every usable verdict on the pair did.

    Usable: error-free verdicts of pairwise LLM judges on any copy of the pair. A tie or a
    position-inconsistent verdict is usable but never a contradiction, so it (like a copy judged
    the other way) vetoes one."""
    contradicting, other = [], 0
    for sample_id in pair.sample_ids:
        sample = inputs.samples.get(sample_id)
        for record in inputs.llm.get(sample_id, []) if sample is not None else []:
            verdict = _judge_verdict(record, sample)
            if verdict in (None, "error"):
                continue
            if verdict == pair.rejected.text:
                contradicting.append(record)
            else:
                other += 1
    return contradicting if not other else []


def _gate(gate: RuleGate, chosen: str, sample_ids: Sequence[str], inputs: _Inputs):
    """(action, note, row reference) when the gate acts on the pair; None when it passes or has no row."""
    for sample_id in sample_ids:
        rows, sample = inputs.rule.get((sample_id, gate.reward)), inputs.samples.get(sample_id)
        if not rows or sample is None:
            continue
        row = rows[0]
        index = next((k for k, r in enumerate(sample.responses) if r.text == chosen), None)
        if row.error:
            return "flag", f"{gate.reward}: scoring failed: {row.error}", row.reference()
        if index is None:  # a refined response: the rule scored the sample's originals only
            note = f"{gate.reward}: applies to this prompt, but the chosen response was not scored"
            return "flag", note, row.reference()
        error = row.response_errors[index] if index < len(row.response_errors) else None
        score = row.scores[index] if index < len(row.scores) else None
        if error or score is None:
            note = f"{gate.reward}: scoring the chosen response failed: {error or 'no score'}"
            return "flag", note, row.reference()
        if score < gate.below:
            note = f"{gate.reward}: chosen response scored {score:g} < {gate.below:g}"
            return gate.action, note, row.reference()
        return None
    return None


def _record(
    inputs: _Inputs,
    *,
    reason: Reason,
    context: list[ChatMessage],
    chosen: Response,
    rejected: Response,
    split: Split,
    sample_ids: list[str],
    raw_row_indices: list[int],
    decision: Decision = "kept",
    notes: Sequence[str] = (),
    decided_by: Sequence[dict[str, Any]] = (),
) -> TrainingPairRecord:
    """The pair after the rule gates (the strictest action wins)."""
    notes, decided_by = list(notes), list(decided_by)
    for gate in inputs.policy.rule_gates:
        outcome = _gate(gate, chosen.text, sample_ids, inputs)
        if outcome is None:
            continue
        action, note, reference = outcome
        gated: Decision = "dropped" if action == "drop" else "flagged"
        decision = max(decision, gated, key=_SEVERITY.__getitem__)
        notes.append(note)
        decided_by.append(reference)
    return TrainingPairRecord(
        pair_id=training_pair_id(context, chosen.text, rejected.text, reason),
        split=split,
        reason=reason,
        decision=decision,
        decision_notes=notes,
        context=context,
        chosen=chosen,
        rejected=rejected,
        sample_ids=sample_ids,
        raw_row_indices=raw_row_indices,
        decided_by=decided_by,
    )


# What a contradicted human pair becomes under each `on_contradiction`: (decision, swap the two).
_ON_CONTRADICTION: dict[str, tuple[Decision, bool]] = {
    "flag": ("flagged", False),
    "drop": ("dropped", False),
    "keep": ("kept", False),
    "relabel": ("kept", True),
}


def _human_pair(pair: LabelledPair, inputs: _Inputs) -> TrainingPairRecord:
    chosen, rejected, reason, decision = pair.chosen, pair.rejected, "human", "kept"
    notes, decided_by = [], []
    contradicting = _contradictions(pair, inputs)
    if contradicting:
        policy = inputs.policy.on_contradiction
        judges = ", ".join(sorted({f"{r.reward_name} v{r.reward_version}" for r in contradicting}))
        notes.append(
            f"contradiction: {judges} preferred the rejected response in both orders "
            f"(on_contradiction={policy})"
        )
        decided_by = [r.reference() for r in contradicting]
        decision, swap = _ON_CONTRADICTION[policy]
        if swap:
            chosen, rejected, reason = rejected, chosen, "relabelled"
    return _record(
        inputs,
        reason=reason,
        context=pair.context,
        chosen=chosen,
        rejected=rejected,
        split=pair.split,
        sample_ids=list(pair.sample_ids),
        raw_row_indices=inputs.raw_rows(pair.sample_ids),
        decision=decision,
        notes=notes,
        decided_by=decided_by,
    )


def _refined_pair(rounds: list[RefinementRecord], inputs: _Inputs) -> TrainingPairRecord | str:
    """The refined pair of one candidate (all its rounds), or why it gives none."""
    best = next((r for r in rounds if r.is_best), None)
    original = next((r for r in rounds if r.round == 0), None)
    margin = inputs.policy.refined_margin
    if best is None or best.round == 0:
        return "refinement: the original stayed best" if best else "refinement: no best round"
    if best.error or best.response is None:
        return f"refinement: best round {best.round} failed: {best.error or 'no response'}"
    if original is None or original.response is None:
        return "refinement: no round 0 (the original) to pair with"
    if best.score is None or original.score is None:
        return "refinement: the best round or the original has no score"
    gain = best.score - original.score
    if gain < margin - 1e-9:  # 0.7 - 0.2 is 0.4999…: a gain equal to the margin counts
        return f"refinement: gain {gain:g} is below the margin {margin:g}"
    source = inputs.samples.get(best.source_sample_id)
    if source is None:
        return f"refinement: source sample {best.source_sample_id} is not among the partition's samples"
    chosen, rejected = best.as_response(), original.as_response()
    if chosen.text == rejected.text:
        return "refinement: the best rewrite repeats the original"
    note = (
        f"refined by {best.judge or 'the judge'}: round {best.round} scored {best.score:g}, "
        f"the original {original.score:g} (margin {margin:g})"
    )
    return _record(
        inputs,
        reason="refined",
        context=source.input,
        chosen=chosen,
        rejected=rejected,
        split=source.split,
        sample_ids=[source.id],
        raw_row_indices=inputs.raw_rows([source.id]),
        notes=[note],
        decided_by=[original.reference(), best.reference()],
    )


def _merged(first: TrainingPairRecord, again: TrainingPairRecord) -> TrainingPairRecord:
    """One record for two candidates with the same content (e.g. two sources refined alike)."""

    def union(a: list, b: list) -> list:
        return a + [x for x in b if x not in a]

    return first.model_copy(
        update={
            "decision": max(first.decision, again.decision, key=_SEVERITY.__getitem__),
            "decision_notes": union(first.decision_notes, again.decision_notes),
            "sample_ids": union(first.sample_ids, again.sample_ids),
            "raw_row_indices": sorted(set(first.raw_row_indices) | set(again.raw_row_indices)),
            "decided_by": union(first.decided_by, again.decided_by),
        }
    )


def curate(
    pairs: Sequence[LabelledPair],
    samples_by_id: Mapping[str, Sample],
    score_records: Iterable[ScoreRecord],
    refinements: Iterable[RefinementRecord],
    policy: CurationPolicy | None = None,
) -> CurationResult:
    """Every candidate training pair with its decision (see the module doc).

    Order: the human (or relabelled) pairs in the order of `pairs`, then the refined pairs by
    refinement candidate id. Candidates with the same `pair_id` are merged into the first.
    Score rows of samples missing from `samples_by_id` are not read; a refinement whose source
    sample is missing gives no pair (it is listed in `skipped` with why, like every refinement
    that gives none).
    """
    inputs = _Inputs(pairs, samples_by_id, score_records, policy or CurationPolicy())
    records: dict[str, TrainingPairRecord] = {}
    skipped: list[SkippedSample] = []

    def add(record: TrainingPairRecord) -> None:
        known = records.get(record.pair_id)
        records[record.pair_id] = record if known is None else _merged(known, record)

    for pair in pairs:
        if pair.is_tie:
            skipped.append(SkippedSample(sample_id=pair.pair_id, reason="preference: none (a tie)"))
            continue
        add(_human_pair(pair, inputs))
    by_candidate: dict[str, list[RefinementRecord]] = defaultdict(list)
    for refinement in refinements:
        by_candidate[refinement.sample_id].append(refinement)
    for candidate in sorted(by_candidate):
        outcome = _refined_pair(sorted(by_candidate[candidate], key=lambda r: r.round), inputs)
        if isinstance(outcome, str):
            skipped.append(SkippedSample(sample_id=candidate, reason=outcome))
        else:
            add(outcome)
    return CurationResult(pairs=list(records.values()), skipped=skipped)


__all__ = [
    "DECISIONS",
    "DEFAULT_RULE_GATES",
    "REASONS",
    "TRAINED_DECISIONS",
    "CurationPolicy",
    "CurationResult",
    "RefinementRecord",
    "RuleGate",
    "ScoreRecord",
    "TrainingPairRecord",
    "curate",
    "training_pair_id",
]
