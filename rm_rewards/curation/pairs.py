"""Human-labelled preference pairs, each seen once: the one place the A/B-swapped copies fold back.

Converters emit every pair twice (the source's order and the A/B-swapped copy, same
`metadata["pair_id"]`) so position-sensitive judges see both orders. Everything that wants the
pair itself (principle learning, reward-model training, the verl export, curation) calls
`fold_pairs`:

    pairs, skipped = fold_pairs(samples)
    pairs[0].pair_id      # "hh_rlhf_harmless-0f3a…-pair": the first-seen copy (normally unswapped)
    pairs[0].sample_ids   # ["…-pair", "…-pair_swapped"]: every copy folded into it
    pairs[0].chosen.text, pairs[0].rejected.text, pairs[0].split, pairs[0].context

A pair's identity is order-free: its context and the sorted texts of its two responses, so the
swapped copy (and any repeat of the same pair, even with another label) folds into the first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rm_rewards.core.schema import ChatMessage, Response, Sample, Split


class SkippedSample(BaseModel):
    """A sample left out of a result, with the reason (e.g. `preference: none (a tie or unlabelled)`)."""

    sample_id: str
    reason: str


class LabelledPair(BaseModel):
    """One human-labelled pair, seen once, in the order of its first-seen sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pair_id: str = Field(description="Sample id of the first-seen copy (normally the unswapped one)")
    sample: Sample = Field(description="That copy: two responses, in its order")
    chosen_index: Literal[0, 1] | None = Field(
        description="Index of the preferred response in `sample`; None only for a tie (include_ties)"
    )
    sample_ids: list[str] = Field(description="Ids of every copy folded into this pair, first-seen first")

    @property
    def is_tie(self) -> bool:
        return self.chosen_index is None

    @property
    def chosen(self) -> Response:
        return self.sample.responses[self._labelled_index()]

    @property
    def rejected(self) -> Response:
        return self.sample.responses[1 - self._labelled_index()]

    @property
    def split(self) -> Split:
        return self.sample.split

    @property
    def context(self) -> list[ChatMessage]:
        return self.sample.input

    def _labelled_index(self) -> int:
        if self.chosen_index is None:
            raise ValueError(f"pair {self.pair_id!r} is a tie: it has no chosen or rejected response")
        return self.chosen_index


def pair_identity(sample: Sample) -> str:
    """Order-free identity of a two-response sample: its context and its sorted response texts."""
    context = [m.model_dump(mode="json") for m in sample.input]
    texts = sorted(r.text for r in sample.responses)
    # ASCII-escaped: text with lone surrogates (not encodable as UTF-8) still hashes.
    payload = json.dumps([context, texts], ensure_ascii=True, sort_keys=True)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def _malformed(sample: Sample, strict: bool) -> str | None:
    """Why a pairwise sample cannot be a pair at all; raises instead when `strict`."""
    if len(sample.responses) != 2:
        if strict:
            raise ValueError(
                f"sample {sample.id!r}: field 'responses' must hold exactly 2 candidates for a pairwise "
                f"sample, got {len(sample.responses)}"
            )
        return f"responses: needs 2, has {len(sample.responses)}"
    if sample.preference not in (0, 1, None):
        if strict:
            raise ValueError(
                f"sample {sample.id!r}: field 'preference' must be 0, 1 or None, got {sample.preference}"
            )
        return f"preference: {sample.preference} is not 0 or 1"
    return None


def _unusable(sample: Sample, include_ties: bool, strict: bool) -> str | None:
    if sample.task != "pairwise":
        return f"task: {sample.task}, not pairwise"
    reason = _malformed(sample, strict)
    if reason is not None:
        return reason
    if sample.preference is None and not include_ties:
        return "preference: none (a tie or unlabelled)"
    if sample.responses[0].text == sample.responses[1].text:
        return "responses: identical texts, no preference to learn"
    return None


def fold_pairs(
    samples: Iterable[Sample], *, include_ties: bool = False, strict: bool = False
) -> tuple[list[LabelledPair], list[SkippedSample]]:
    """Every distinct labelled pair once (first-seen order), and every other sample with its reason.

    Skipped: samples that are not pairwise, do not have exactly two responses, have no preference
    (a tie; kept as a pair with `chosen_index` None when `include_ties`), have a preference other
    than 0/1, or two identical response texts; and every later copy of a pair already seen (the
    swapped copy, or a repeat), as `same pair as <pair_id> (swapped copy|repeat)`; its id is added
    to that pair's `sample_ids`. The first-seen copy wins, label included.

    `strict`: a pairwise sample without two responses or with a preference other than 0/1/None is
    a caller error (ValueError naming the sample and the field) instead of a skipped sample.
    """
    first: dict[str, Sample] = {}
    copies: dict[str, list[str]] = {}
    skipped: list[SkippedSample] = []
    for sample in samples:
        reason = _unusable(sample, include_ties, strict)
        if reason is not None:
            skipped.append(SkippedSample(sample_id=sample.id, reason=reason))
            continue
        key = pair_identity(sample)
        if key in first:
            original = first[key]
            same_order = [r.text for r in sample.responses] == [r.text for r in original.responses]
            copy = "repeat" if same_order else "swapped copy"
            skipped.append(SkippedSample(sample_id=sample.id, reason=f"same pair as {original.id} ({copy})"))
            copies[key].append(sample.id)
            continue
        first[key] = sample
        copies[key] = [sample.id]
    pairs = [
        LabelledPair(pair_id=sample.id, sample=sample, chosen_index=sample.preference, sample_ids=copies[key])
        for key, sample in first.items()
    ]
    return pairs, skipped


__all__ = ["LabelledPair", "SkippedSample", "fold_pairs", "pair_identity"]
