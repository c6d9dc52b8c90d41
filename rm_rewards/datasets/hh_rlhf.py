"""Anthropic HH-RLHF preference rows → A/B-swapped pairwise samples.

Row schemas, told apart per row:
- the hub's (Anthropic/hh-rlhf): `chosen` and `rejected`, each a whole dialogue as one string of
  "\\n\\nHuman: " / "\\n\\nAssistant: " turns; a list of {role, content} messages is read too;
- RM-Gallery's early schema (the bundled `anthropic_helpful_0521.jsonl`): `evaluation_sample`
  with `input` (the shared turns) and two `outputs` labelled "chosen" / "rejected".

A valid pair shares every turn but the last; the last is each side's assistant reply. Rows that
break this (the public test split has a few: empty replies, turns merged without the "\\n\\n"
separator, dialogues of different lengths) are quarantined, naming the field. Turn text is
stripped of surrounding whitespace (the format puts a space after every "Assistant:").
Pairs come out as [chosen, rejected] with preference 0 and as [rejected, chosen] with preference 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rm_rewards.core.schema import ChatMessage, Sample
from rm_rewards.datasets.keys import content_digest, conversation_key
from rm_rewards.datasets.messages import check_pair, parse_messages, split_shared_context
from rm_rewards.datasets.quarantine import (
    ConversionStream,
    RowError,
    convert_each_row,
    require_field,
    require_text,
)
from rm_rewards.datasets.samples import chosen_rejected_samples

_TURN = re.compile(r"\n\n(Human|Assistant):")
_SPEAKER_ROLES = {"Human": "user", "Assistant": "assistant"}


@dataclass(frozen=True)
class ChosenRejectedRow:
    context: list[ChatMessage]
    chosen: str
    rejected: str
    metadata: dict[str, str]
    digest: str


def parse_dialogue(dialogue: str, field: str) -> list[ChatMessage]:
    """An HH-RLHF dialogue string as chat messages."""
    parts = _TURN.split(dialogue)
    if parts[0].strip():
        raise RowError(field, "text before the first '\\n\\nHuman:' turn")
    if len(parts) == 1:
        raise RowError(field, "no '\\n\\nHuman:' / '\\n\\nAssistant:' turns")
    return [
        ChatMessage(role=_SPEAKER_ROLES[speaker], content=content.strip())
        for speaker, content in zip(parts[1::2], parts[2::2])
    ]


def _dialogue(row: Mapping[str, Any], field: str) -> list[ChatMessage]:
    value = require_field(row, field)
    if isinstance(value, str):
        return parse_dialogue(value, field)
    if isinstance(value, list):
        return parse_messages(value, field)
    raise RowError(field, f"expected a dialogue string or a list of messages, got {type(value).__name__}")


def _pair(context: list[ChatMessage], chosen: str, rejected: str, metadata: dict[str, str]) -> ChosenRejectedRow:
    # The digest covers only the normalised pair, so one pair has one id in either row schema.
    digest = content_digest({"context": conversation_key(context), "chosen": chosen, "rejected": rejected})
    return ChosenRejectedRow(context, chosen, rejected, metadata, digest)


def read_hub_row(row: Mapping[str, Any]) -> ChosenRejectedRow:
    chosen_turns, rejected_turns = _dialogue(row, "chosen"), _dialogue(row, "rejected")
    context = split_shared_context(chosen_turns, rejected_turns)
    chosen, rejected = chosen_turns[-1].content, rejected_turns[-1].content
    check_pair(context, chosen, rejected, ("chosen", "rejected"))
    return _pair(context, chosen, rejected, {})


def read_rm_gallery_row(row: Mapping[str, Any]) -> ChosenRejectedRow:
    evaluation = require_field(row, "evaluation_sample")
    if not isinstance(evaluation, Mapping):
        raise RowError("evaluation_sample", f"expected an object, got {type(evaluation).__name__}")
    turns = require_field(evaluation, "input", "evaluation_sample.input")
    outputs = require_field(evaluation, "outputs", "evaluation_sample.outputs")
    for name, value in (("input", turns), ("outputs", outputs)):
        if not isinstance(value, list):
            raise RowError(f"evaluation_sample.{name}", f"expected a list, got {type(value).__name__}")
    context = parse_messages(turns, "evaluation_sample.input")
    replies: dict[str, tuple[str, str]] = {}
    for index, output in enumerate(outputs):
        path = f"evaluation_sample.outputs[{index}]"
        if not isinstance(output, Mapping):
            raise RowError(path, f"expected an object, got {type(output).__name__}")
        label = output.get("content_label")
        if label not in ("chosen", "rejected") or label in replies:
            raise RowError(
                f"{path}.content_label", f"expected one 'chosen' and one 'rejected', got {label!r}"
            )
        replies[label] = (require_text(output, "content", f"{path}.content").strip(), f"{path}.content")
    if len(replies) != 2:
        raise RowError(
            "evaluation_sample.outputs", f"expected a chosen and a rejected output, got {len(outputs)}"
        )
    (chosen, chosen_path), (rejected, rejected_path) = replies["chosen"], replies["rejected"]
    check_pair(context, chosen, rejected, (chosen_path, rejected_path))
    return _pair(context, chosen, rejected, _rm_gallery_metadata(row))


def _rm_gallery_metadata(row: Mapping[str, Any]) -> dict[str, str]:
    metadata = {}
    if isinstance(row.get("unique_id"), str):
        metadata["rm_gallery_id"] = row["unique_id"]
    extra = row.get("extra_metadata")
    if isinstance(extra, Mapping) and isinstance(extra.get("group"), str):
        metadata["rm_gallery_group"] = extra["group"]
    return metadata


def read_hh_rlhf_row(row: Mapping[str, Any]) -> ChosenRejectedRow:
    if "evaluation_sample" in row:
        return read_rm_gallery_row(row)
    if "chosen" in row or "rejected" in row:
        return read_hub_row(row)
    raise RowError(
        "chosen", "missing: neither HH-RLHF 'chosen'/'rejected' nor RM-Gallery 'evaluation_sample'"
    )


def convert_hh_rlhf(dataset: str, rows: list[Any], test_fraction: float) -> ConversionStream:
    return convert_each_row(dataset, rows, test_fraction, read_hh_rlhf_row, pair_samples)


def pair_samples(dataset: str, pair: ChosenRejectedRow, test_fraction: float, row_index: int) -> list[Sample]:
    return chosen_rejected_samples(
        dataset, pair.digest, pair.context, pair.chosen, pair.rejected, None, test_fraction, pair.metadata,
        raw_row_indices=[row_index],
    )
