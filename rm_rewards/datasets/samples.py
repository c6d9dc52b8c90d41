"""Building `Sample`s the same way for every dataset: one pointwise sample, or an A/B-swapped pair.

Listwise samples (`listwise_sample`, e.g. RM-Gallery best-of-N or ranked outputs) hold every
response of one prompt once, in the source's order, with per-response labels; `preference` is the
index of the single best response, None when the source names no single best.

Pair conventions (all datasets):
- `preference` is the index of the better response, None for a tie;
- `preference_strength` is how much better, as a non-negative magnitude (the direction is in
  `preference`), so it stays correct when the two responses are swapped; None when the source has
  no strength (HH-RLHF);
- every pair is emitted twice, `<variant>` with the source's order and `<variant>_swapped` with
  A and B exchanged (against position bias), both with the same split and the same `pair_id`.

Provenance (all samples): `metadata["raw_row_indices"]` lists the 0-based indices, in the row
list given to `convert_rows`, of the raw rows the sample came from (one row, or two for a
HelpSteer2 pair built from two rating rows); both swapped copies carry the same indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.datasets.keys import assign_split, content_digest, conversation_key, sample_id


def assistant_response(text: str, label: dict[str, float] | None = None) -> Response:
    return Response(message=ChatMessage(role="assistant", content=text), label=label or {})


def prompt_id(messages: list[ChatMessage]) -> str:
    """Groups samples of one prompt across tasks and datasets (same key as the split uses)."""
    return content_digest(conversation_key(messages))


def _provenance(messages: list[ChatMessage], raw_row_indices: Sequence[int]) -> dict[str, Any]:
    if not raw_row_indices:
        raise ValueError("a converted sample must name the raw row(s) it came from")
    return {"prompt_id": prompt_id(messages), "raw_row_indices": [int(i) for i in raw_row_indices]}


def pointwise_sample(
    dataset: str,
    digest: str,
    messages: list[ChatMessage],
    response: Response,
    test_fraction: float,
    metadata: dict[str, Any] | None = None,
    *,
    raw_row_indices: Sequence[int],
    reference: str | None = None,
) -> Sample:
    return Sample(
        id=sample_id(dataset, digest, "pointwise"),
        source=dataset,
        task="pointwise",
        split=assign_split(messages, test_fraction),
        input=messages,
        responses=[response],
        reference=reference,
        metadata={**_provenance(messages, raw_row_indices), **(metadata or {})},
    )


def listwise_sample(
    dataset: str,
    digest: str,
    messages: list[ChatMessage],
    responses: Sequence[Response],
    preference: int | None,
    test_fraction: float,
    metadata: dict[str, Any] | None = None,
    *,
    raw_row_indices: Sequence[int],
    reference: str | None = None,
) -> Sample:
    """Two or more responses to one prompt in one sample; `preference` indexes the best, or None."""
    if len(responses) < 2:
        raise ValueError(f"a listwise sample needs at least 2 responses, got {len(responses)}")
    if preference is not None and not 0 <= preference < len(responses):
        raise ValueError(f"preference {preference!r} is not an index of the {len(responses)} responses")
    return Sample(
        id=sample_id(dataset, digest, "listwise"),
        source=dataset,
        task="listwise",
        split=assign_split(messages, test_fraction),
        input=messages,
        responses=list(responses),
        preference=preference,
        reference=reference,
        metadata={**_provenance(messages, raw_row_indices), **(metadata or {})},
    )


def swapped_pair_samples(
    dataset: str,
    digest: str,
    variant: str,
    messages: list[ChatMessage],
    responses: tuple[Response, Response],
    preference: int | None,
    strength: float | None,
    test_fraction: float,
    metadata: dict[str, Any] | None = None,
    *,
    raw_row_indices: Sequence[int],
    reference: str | None = None,
) -> list[Sample]:
    """The pair in the source's order, then the same pair with A and B exchanged."""
    if preference not in (0, 1, None):
        raise ValueError(f"a pair's preference must be 0, 1 or None, got {preference!r}")
    if strength is not None and strength < 0:
        raise ValueError(f"preference_strength is a magnitude, got {strength!r}")
    split = assign_split(messages, test_fraction)
    shared = {**_provenance(messages, raw_row_indices), "pair_id": f"{dataset}-{digest}", **(metadata or {})}
    first, second = responses
    swapped_preference = None if preference is None else 1 - preference
    orders = [
        (variant, [first, second], preference, False),
        (f"{variant}_swapped", [second, first], swapped_preference, True),
    ]
    return [
        Sample(
            id=sample_id(dataset, digest, name),
            source=dataset,
            task="pairwise",
            split=split,
            input=messages,
            responses=pair,
            preference=pair_preference,
            preference_strength=strength,
            reference=reference,
            metadata={**shared, "swapped": swapped},
        )
        for name, pair, pair_preference, swapped in orders
    ]


def chosen_rejected_samples(
    dataset: str,
    digest: str,
    messages: list[ChatMessage],
    chosen: str,
    rejected: str,
    strength: float | None,
    test_fraction: float,
    metadata: dict[str, Any] | None = None,
    *,
    raw_row_indices: Sequence[int],
) -> list[Sample]:
    """A chosen / rejected pair (HH-RLHF, TRL): variant `pair` = [chosen, rejected], preference 0."""
    responses = (assistant_response(chosen), assistant_response(rejected))
    return swapped_pair_samples(
        dataset, digest, "pair", messages, responses, 0, strength, test_fraction, metadata,
        raw_row_indices=raw_row_indices,
    )
