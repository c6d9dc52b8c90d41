"""TRL preference rows → A/B-swapped pairwise samples.

The forms of TRL's docs ("Dataset formats and types", preference type), told apart per row:

- explicit prompt, `prompt` / `chosen` / `rejected`:
  standard   {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}
  conversational {"prompt": [{"role": "user", "content": "What color is the sky?"}],
                  "chosen": [{"role": "assistant", "content": "It is blue."}], "rejected": [...]}
  A string prompt becomes one user turn; a message-list completion must be exactly one assistant
  message (an rmforge response is one message). A string prompt with message completions, or the
  reverse, is read too. A null `prompt` (a column only some rows fill) means "no explicit prompt".
  A prompt ending on an assistant turn (TRL continues it as a prefill) is quarantined: an rmforge
  response answers a user turn.
- implicit prompt, only `chosen` / `rejected`, each the whole conversation:
  conversational ("chat-message pairs"): the two share every turn but the last assistant reply,
  which is each side's response (as HH-RLHF's message lists);
  standard {"chosen": "The sky is blue.", "rejected": "The sky is green."}: the prompt is the
  strings' common prefix, cut at a word boundary: TRL's `extract_prompt` cuts at the first differing
  character, which splits a word ("blue" / "black" → prompt "The sky is bl"); here the cut moves
  back to the last whitespace instead ("The sky is", replies "blue." / "black.").

Optional `margin` (TRL's RewardTrainer subtracts it inside the loss, −log σ(r_chosen − r_rejected −
margin), as in Llama 2): how far chosen should beat rejected, in the dataset's own units (e.g. a
rating gap). It is kept as `preference_strength` when present: a finite number ≥ 0 (a negative or
non-numeric margin is quarantined: strength is a magnitude, the direction is chosen/rejected).
Absent or null → strength None. Preference is always the chosen reply (a margin of 0 still means
chosen is preferred, with strength 0). Turn and reply text is stripped of surrounding whitespace
(standard completions start with a space). `metadata["trl_prompt"]` is "explicit" or "implicit",
`metadata["trl_format"]` "standard" or "conversational" (the completions' form).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rm_rewards.core.schema import ChatMessage, Sample
from rm_rewards.datasets.keys import content_digest, conversation_key
from rm_rewards.datasets.messages import check_pair, check_prompt, parse_messages, split_shared_context
from rm_rewards.datasets.quarantine import (
    ConversionStream,
    RowError,
    convert_each_row,
    is_finite_number,
    require_field,
)
from rm_rewards.datasets.samples import chosen_rejected_samples

Completion = str | list[Any]


@dataclass(frozen=True)
class TrlPair:
    context: list[ChatMessage]
    chosen: str
    rejected: str
    margin: float | None
    metadata: dict[str, str]
    digest: str


def _completions(row: Mapping[str, Any]) -> tuple[Completion, Completion]:
    values = []
    for field in ("chosen", "rejected"):
        value = require_field(row, field)
        if not isinstance(value, (str, list)):
            raise RowError(field, f"expected a string or a list of messages, got {type(value).__name__}")
        values.append(value)
    chosen, rejected = values
    if isinstance(chosen, str) != isinstance(rejected, str):
        kinds = ["a string" if isinstance(v, str) else "a list of messages" for v in values]
        raise RowError("rejected", f"{kinds[1]} while chosen is {kinds[0]}; the two must have one form")
    return chosen, rejected


def _prompt_turns(prompt: Any) -> list[ChatMessage]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise RowError("prompt", "empty text")
        return [ChatMessage(role="user", content=prompt.strip())]
    if isinstance(prompt, list):
        return parse_messages(prompt, "prompt")
    raise RowError("prompt", f"expected a string or a list of messages, got {type(prompt).__name__}")


def _reply(completion: Completion, field: str) -> str:
    """An explicit-prompt completion: a string, or a list holding one assistant message."""
    if isinstance(completion, str):
        return completion.strip()
    turns = parse_messages(completion, field)
    if len(turns) != 1:
        raise RowError(field, f"{len(turns)} messages; a completion must be one assistant message")
    if turns[0].role != "assistant":
        raise RowError(f"{field}[0].role", f"expected 'assistant', got {turns[0].role!r}")
    return turns[0].content


def split_common_prefix(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen reply, rejected reply) of two implicit-prompt strings, cut between words."""
    end = 0
    while end < min(len(chosen), len(rejected)) and chosen[end] == rejected[end]:
        end += 1
    inside_word = (
        end > 0
        and chosen[end - 1].isalnum()
        and any(text[end : end + 1].isalnum() for text in (chosen, rejected))
    )
    if inside_word:
        end = max((i for i in range(end) if chosen[i].isspace()), default=0)
    return chosen[:end].strip(), chosen[end:].strip(), rejected[end:].strip()


def _implicit(chosen: Completion, rejected: Completion) -> tuple[list[ChatMessage], str, str]:
    if isinstance(chosen, str):
        if chosen == rejected:
            raise RowError("rejected", "identical to chosen: a pair needs two different replies")
        prompt, chosen_reply, rejected_reply = split_common_prefix(chosen, rejected)
        if not prompt:
            raise RowError("rejected", "shares no leading words with chosen, so there is no implicit prompt")
        return [ChatMessage(role="user", content=prompt)], chosen_reply, rejected_reply
    chosen_turns, rejected_turns = parse_messages(chosen, "chosen"), parse_messages(rejected, "rejected")
    context = split_shared_context(chosen_turns, rejected_turns)
    return context, chosen_turns[-1].content, rejected_turns[-1].content


def read_margin(row: Mapping[str, Any]) -> float | None:
    value = row.get("margin")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not is_finite_number(value):
        raise RowError("margin", f"expected a finite number >= 0, got {value!r}")
    if value < 0:
        raise RowError(
            "margin", f"{value!r} is negative; preference_strength is a magnitude (chosen is the better)"
        )
    return float(value)


def read_trl_row(row: Mapping[str, Any]) -> TrlPair:
    chosen, rejected = _completions(row)
    explicit = row.get("prompt") is not None
    if explicit:
        context = _prompt_turns(row["prompt"])
        chosen_reply, rejected_reply = _reply(chosen, "chosen"), _reply(rejected, "rejected")
    else:
        context, chosen_reply, rejected_reply = _implicit(chosen, rejected)
    check_prompt(context, "prompt" if explicit else "chosen")
    check_pair(context, chosen_reply, rejected_reply, ("chosen", "rejected"))
    margin = read_margin(row)
    metadata = {
        "trl_prompt": "explicit" if explicit else "implicit",
        "trl_format": "standard" if isinstance(chosen, str) else "conversational",
    }
    digest = content_digest(
        {
            "context": conversation_key(context),
            "chosen": chosen_reply,
            "rejected": rejected_reply,
            "margin": margin,
        }
    )
    return TrlPair(context, chosen_reply, rejected_reply, margin, metadata, digest)


def trl_pair_samples(dataset: str, pair: TrlPair, test_fraction: float, row_index: int) -> list[Sample]:
    return chosen_rejected_samples(
        dataset,
        pair.digest,
        pair.context,
        pair.chosen,
        pair.rejected,
        pair.margin,
        test_fraction,
        pair.metadata,
        raw_row_indices=[row_index],
    )


def convert_trl(dataset: str, rows: list[Any], test_fraction: float) -> ConversionStream:
    """Each valid row → its pair as [chosen, rejected] (preference 0) and swapped (preference 1)."""
    return convert_each_row(dataset, rows, test_fraction, read_trl_row, trl_pair_samples)
