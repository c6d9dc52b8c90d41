"""HelpSteer2 (nvidia/HelpSteer2) rows → samples.

Two row schemas, told apart per row:
- ratings (the main dataset): `prompt`, `response` and five 0-4 attributes. Each row becomes one
  pointwise sample (the attributes as the response's `label`); responses to the same prompt also
  become pairs, preferred by helpfulness (equal helpfulness → a tie, preference None).
- preference subset (`data_dir="preference"`): `prompt`, `response_1`, `response_2`,
  `preference_strength` in -3..3 (> 0: response 2 is better, < 0: response 1, 0: a tie), plus
  the hub's `split` and the annotators' `preference_statement` / `preference_elaboration`, kept
  in the metadata (principle generation can use them).

Multi-turn prompts hold earlier turns inline as `{user}\\n<extra_id_1>Assistant\\n{assistant}
\\n<extra_id_1>User\\n{user}` (dataset card); they are split back into chat messages.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.datasets.keys import check_test_fraction, content_digest, conversation_key
from rm_rewards.datasets.quarantine import ConversionStream, RowError, read_rows, require_int, require_text
from rm_rewards.datasets.samples import assistant_response, pointwise_sample, prompt_id, swapped_pair_samples

HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
PREFERENCE_FIELDS = ("response_1", "response_2", "preference_strength")
_TURN_MARKER = re.compile(r"\n<extra_id_1>(User|Assistant)\n")


def parse_prompt(prompt: str, field: str = "prompt") -> list[ChatMessage]:
    """A HelpSteer2 prompt as chat messages; it must end on a user turn and have no empty turn."""
    parts = _TURN_MARKER.split(prompt)
    roles = ["User", *parts[1::2]]
    messages = []
    for turn, (role, content) in enumerate(zip(roles, parts[0::2])):
        if not content.strip():
            raise RowError(field, f"turn {turn} ({role}) is empty")
        messages.append(ChatMessage(role="user" if role == "User" else "assistant", content=content))
    if messages[-1].role != "user":
        raise RowError(field, "the prompt ends with an Assistant turn; the response must answer a User turn")
    return messages


def is_preference_row(row: Mapping[str, Any]) -> bool:
    return any(name in row for name in PREFERENCE_FIELDS)


@dataclass(frozen=True)
class RatedResponse:
    messages: list[ChatMessage]
    response: str
    attributes: dict[str, int]
    digest: str


@dataclass(frozen=True)
class StrengthPair:
    messages: list[ChatMessage]
    response_1: str
    response_2: str
    strength: int
    metadata: dict[str, Any]
    digest: str


def read_rating_row(row: Mapping[str, Any]) -> RatedResponse:
    messages = parse_prompt(require_text(row, "prompt"))
    response = require_text(row, "response")
    attributes = {name: require_int(row, name, 0, 4) for name in HELPSTEER2_ATTRIBUTES}
    digest = content_digest(
        {"prompt": conversation_key(messages), "response": response, "attributes": attributes}
    )
    return RatedResponse(messages, response, attributes, digest)


def read_preference_row(row: Mapping[str, Any]) -> StrengthPair:
    messages = parse_prompt(require_text(row, "prompt"))
    response_1 = require_text(row, "response_1")
    response_2 = require_text(row, "response_2")
    if response_1 == response_2:
        raise RowError("response_2", "identical to response_1: a pair needs two different responses")
    strength = require_int(row, "preference_strength", -3, 3)
    metadata = {
        key: row[name]
        for key, name in (
            ("hub_split", "split"),
            ("preference_statement", "preference_statement"),
            ("preference_elaboration", "preference_elaboration"),
        )
        if isinstance(row.get(name), str) and row[name].strip()
    }
    digest = content_digest(
        {"prompt": conversation_key(messages), "responses": [response_1, response_2], "strength": strength}
    )
    return StrengthPair(messages, response_1, response_2, strength, metadata, digest)


def read_helpsteer2_row(row: Mapping[str, Any]) -> RatedResponse | StrengthPair:
    return read_preference_row(row) if is_preference_row(row) else read_rating_row(row)


def rating_pair_samples(
    dataset: str, rated: list[tuple[int, RatedResponse]], test_fraction: float
) -> Iterator[Sample]:
    """Pairs of responses to the same prompt (each unordered pair once, in row order), both orders.

    `rated` holds (raw row index, rating); a pair's `raw_row_indices` are its two rating rows.
    Pairs whose two responses have the same text are skipped: their preference is noise.
    """
    by_prompt: dict[str, list[tuple[int, RatedResponse]]] = {}
    for row_index, item in rated:
        by_prompt.setdefault(prompt_id(item.messages), []).append((row_index, item))
    for group in by_prompt.values():
        for (first_row, first), (second_row, second) in itertools.combinations(group, 2):
            if first.response == second.response:
                continue
            help_first, help_second = first.attributes["helpfulness"], second.attributes["helpfulness"]
            preference = None if help_first == help_second else (0 if help_first > help_second else 1)
            yield from swapped_pair_samples(
                dataset,
                content_digest([first.digest, second.digest]),
                "rating_pair",
                first.messages,
                (_labelled(first), _labelled(second)),
                preference,
                float(abs(help_first - help_second)),
                test_fraction,
                {"pair_source": "helpfulness_ratings"},
                raw_row_indices=[first_row, second_row],
            )


def preference_pair_samples(
    dataset: str, pair: StrengthPair, test_fraction: float, row_index: int
) -> list[Sample]:
    preference = None if pair.strength == 0 else (1 if pair.strength > 0 else 0)
    return swapped_pair_samples(
        dataset,
        pair.digest,
        "preference_pair",
        pair.messages,
        (assistant_response(pair.response_1), assistant_response(pair.response_2)),
        preference,
        float(abs(pair.strength)),
        test_fraction,
        {"pair_source": "preference_annotation", **pair.metadata},
        raw_row_indices=[row_index],
    )


def convert_helpsteer2(dataset: str, rows: list[Any], test_fraction: float) -> ConversionStream:
    """Ratings rows → pointwise samples then rating pairs; preference rows → preference pairs."""
    check_test_fraction(test_fraction)
    records, quarantined = read_rows(dataset, rows, read_helpsteer2_row)
    rated = [(row_index, record) for row_index, record in records if isinstance(record, RatedResponse)]

    def samples() -> Iterator[Sample]:
        for row_index, item in rated:
            yield pointwise_sample(
                dataset, item.digest, item.messages, _labelled(item), test_fraction, raw_row_indices=[row_index]
            )
        yield from rating_pair_samples(dataset, rated, test_fraction)
        for row_index, record in records:
            if isinstance(record, StrengthPair):
                yield from preference_pair_samples(dataset, record, test_fraction, row_index)

    return ConversionStream(samples(), quarantined)


def _labelled(item: RatedResponse) -> Response:
    return assistant_response(item.response, {name: float(value) for name, value in item.attributes.items()})
