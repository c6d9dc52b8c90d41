"""HelpSteer3 preference rows (nvidia/HelpSteer3, `preference` subset) → A/B-swapped pairwise samples.

Row schema (dataset card): `domain` (general / stem / code / multilingual), `language`, `context`
(the conversation so far, a list of {role, content} turns ending on a user turn), `response1`,
`response2`, `overall_preference` an integer in -3..3 and `individual_preference` (the annotators'
`score` in -3..3 and `reasoning`, up to three).

Sign (dataset card; RM-Gallery's HelpSteer3 loader reads it the same way): -3 "Response 1 is much
better than Response 2", -1 slightly better, 0 "about the same", +1..+3 "Response 2 is slightly
better / better / much better than Response 1". That is HelpSteer2's `preference_strength`
convention (> 0: the second response is better), so the pair is built exactly as a HelpSteer2
preference pair: preference 1 for > 0, 0 for < 0, None (a tie) for 0, strength |overall_preference|;
out of range, non-integer, identical responses → quarantine. `domain`, `language` and the
individual preferences go to the metadata when present (a present one of the wrong shape is
quarantined, naming it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rm_rewards.datasets.helpsteer2 import StrengthPair, preference_pair_samples
from rm_rewards.datasets.keys import content_digest, conversation_key
from rm_rewards.datasets.messages import check_prompt, require_messages
from rm_rewards.datasets.quarantine import (
    ConversionStream,
    RowError,
    convert_each_row,
    require_int,
    require_text,
)

PREFERENCE_RANGE = (-3, 3)


def _optional_text(row: Mapping[str, Any], field: str) -> dict[str, str]:
    value = row.get(field)
    if value is None:
        return {}
    if not isinstance(value, str):
        raise RowError(field, f"expected a string, got {type(value).__name__}")
    return {field: value} if value.strip() else {}


def read_individual_preferences(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The annotators' preferences as given; each must be an object with an integer score in -3..3."""
    value = row.get("individual_preference")
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError("individual_preference", f"expected a list, got {type(value).__name__}")
    for index, item in enumerate(value):
        path = f"individual_preference[{index}]"
        if not isinstance(item, Mapping):
            raise RowError(path, f"expected an object with score and reasoning, got {type(item).__name__}")
        try:
            require_int(item, "score", *PREFERENCE_RANGE)
        except RowError as error:
            raise RowError(f"{path}.score", error.reason) from None
    return [dict(item) for item in value]


def read_helpsteer3_row(row: Mapping[str, Any]) -> StrengthPair:
    messages = require_messages(row, "context")
    check_prompt(messages, "context")
    response_1 = require_text(row, "response1")
    response_2 = require_text(row, "response2")
    if response_1 == response_2:
        raise RowError("response2", "identical to response1: a pair needs two different responses")
    strength = require_int(row, "overall_preference", *PREFERENCE_RANGE)
    metadata: dict[str, Any] = {**_optional_text(row, "domain"), **_optional_text(row, "language")}
    individual = read_individual_preferences(row)
    if individual:
        metadata["individual_preference"] = individual
    digest = content_digest(
        {"prompt": conversation_key(messages), "responses": [response_1, response_2], "strength": strength}
    )
    return StrengthPair(messages, response_1, response_2, strength, metadata, digest)


def convert_helpsteer3(dataset: str, rows: list[Any], test_fraction: float) -> ConversionStream:
    """Each valid row → its pair in the source's order and A/B-swapped (variant `preference_pair`)."""
    return convert_each_row(dataset, rows, test_fraction, read_helpsteer3_row, preference_pair_samples)
