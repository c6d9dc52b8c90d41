"""Chat messages inside raw rows: {role, content} lists, a prompt's checks, a pair's shared context.

Shared by every converter whose rows hold chat messages (HH-RLHF's message-list schema, TRL,
HelpSteer3, RM-Gallery). Each problem raises a `RowError` naming the field, with the turn's
position for a problem in one turn (`context[2].content`), so the row is quarantined, not guessed.
Turn text is stripped of surrounding whitespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rm_rewards.core.schema import ChatMessage, Role
from rm_rewards.datasets.quarantine import RowError, require_field, type_name

MESSAGE_ROLES: dict[str, Role] = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "system": "system",
}


def parse_messages(
    messages: list[Any], field: str, roles: Mapping[str, Role] = MESSAGE_ROLES
) -> list[ChatMessage]:
    """A list of {role, content} turns (conversational schema) as chat messages; `roles` maps role names."""
    parsed = []
    for index, message in enumerate(messages):
        path = f"{field}[{index}]"
        if not isinstance(message, Mapping):
            raise RowError(path, f"expected an object with role and content, got {type(message).__name__}")
        role = require_field(message, "role", f"{path}.role")
        if not isinstance(role, str) or role not in roles:
            raise RowError(f"{path}.role", f"unknown role {role!r}")
        content = require_field(message, "content", f"{path}.content")
        if not isinstance(content, str):
            raise RowError(f"{path}.content", f"expected a string, got {type_name(content)}")
        parsed.append(ChatMessage(role=roles[role], content=content.strip()))
    return parsed


def require_messages(
    row: Mapping[str, Any], field: str, roles: Mapping[str, Role] = MESSAGE_ROLES
) -> list[ChatMessage]:
    """`row[field]` as a non-empty list of chat messages."""
    value = require_field(row, field)
    if not isinstance(value, list):
        raise RowError(field, f"expected a list of messages, got {type(value).__name__}")
    if not value:
        raise RowError(field, "no messages")
    return parse_messages(value, field, roles)


def check_prompt(messages: list[ChatMessage], field: str) -> None:
    """The turns a response answers: at least one, none empty, the last a user turn."""
    if not messages:
        raise RowError(field, "no turns before the response")
    for index, message in enumerate(messages):
        if not message.content:
            raise RowError(f"{field}[{index}].content", f"turn {index} ({message.role}) is empty")
    if messages[-1].role != "user":
        raise RowError(field, f"the last turn is {messages[-1].role!r}; the response must answer a user turn")


def split_shared_context(
    chosen: list[ChatMessage], rejected: list[ChatMessage], paths: tuple[str, str] = ("chosen", "rejected")
) -> list[ChatMessage]:
    """The turns both dialogues share; raises unless they differ only in the last reply."""
    for field, turns in zip(paths, (chosen, rejected)):
        if not turns:
            raise RowError(field, "no turns")
        if turns[-1].role != "assistant":
            raise RowError(field, "the dialogue does not end with an Assistant reply")
    if len(chosen) != len(rejected):
        raise RowError(
            paths[1],
            f"{len(rejected)} turns vs {len(chosen)} in chosen; the two must share every turn but the last",
        )
    for turn, (left, right) in enumerate(zip(chosen[:-1], rejected[:-1])):
        if left != right:
            raise RowError(paths[1], f"turn {turn} differs from chosen; only the last reply may differ")
    return chosen[:-1]


def check_pair(context: list[ChatMessage], chosen: str, rejected: str, paths: tuple[str, str]) -> None:
    """Context ends with the user turn both replies answer; replies are non-empty and different."""
    if not context:
        raise RowError(paths[0], "no turns before the compared replies")
    if context[-1].role != "user":
        raise RowError(paths[0], "the compared replies do not follow a user turn")
    for path, reply in zip(paths, (chosen, rejected)):
        if not reply.strip():
            raise RowError(path, "the final Assistant reply is empty")
    if chosen == rejected:
        raise RowError(paths[1], "identical to the chosen reply: a pair needs two different replies")
