"""Format rules: a reasoning block then an answer block, and well-formed JSON tool calls.

Both score 1.0 when the format is right and 0.0 otherwise, with the problems as the reason.
Tags are located by counting and `str.find`, never by a greedy regex, so a repeated tag is
reported as an error instead of being swallowed into one block. Tool-call JSON is read with
`json.loads` only.

Bare functions: `reasoning_format_problems`, `reasoning_format`, `tool_call_problems`,
`tool_call_format`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from rm_rewards.core.kinds import PointwiseReward, response_score
from rm_rewards.core.registry import register
from rm_rewards.core.schema import ResponseScore, Sample, ToolCall


def _tags(name: str) -> tuple[str, str]:
    return f"<{name}>", f"</{name}>"


def reasoning_format_problems(
    text: str, think_tag: str = "think", answer_tag: str = "answer", allow_outside_text: bool = False
) -> list[str]:
    """What is wrong with `<think>…</think>` followed by `<answer>…</answer>`; [] when right.

    Each of the four tags must appear exactly once, in that order, each block non-empty, and
    (unless `allow_outside_text`) nothing but whitespace before, between and after the blocks.
    """
    tags = (*_tags(think_tag), *_tags(answer_tag))
    problems = []
    for tag in tags:
        count = text.count(tag)
        if count != 1:
            problems.append(f"{tag} appears {count} times, expected once")
    if problems:
        return problems
    positions = [text.find(tag) for tag in tags]
    if positions != sorted(positions):
        return [f"tags out of order: expected {' '.join(tags)}"]
    think_open, think_close, answer_open, answer_close = positions
    if not text[think_open + len(tags[0]) : think_close].strip():
        problems.append(f"empty {tags[0]} block")
    if not text[answer_open + len(tags[2]) : answer_close].strip():
        problems.append(f"empty {tags[2]} block")
    if not allow_outside_text:
        outside = (
            text[:think_open],
            text[think_close + len(tags[1]) : answer_open],
            text[answer_close + len(tags[3]) :],
        )
        for where, part in zip(("before", "between", "after"), outside):
            if part.strip():
                problems.append(f"text {where} the blocks")
    return problems


def reasoning_format(
    text: str, think_tag: str = "think", answer_tag: str = "answer", allow_outside_text: bool = False
) -> float:
    return 0.0 if reasoning_format_problems(text, think_tag, answer_tag, allow_outside_text) else 1.0


_OPEN_CALL, _CLOSE_CALL = _tags("tool_call")


_CALL_TAG_RE = re.compile(re.escape(_OPEN_CALL) + "|" + re.escape(_CLOSE_CALL))


def tool_call_blocks(text: str) -> tuple[list[str], list[str]]:
    """Bodies of the `<tool_call>…</tool_call>` blocks, and structural problems (unclosed,
    nested or stray tags). One left-to-right pass over the tags: a second opening tag before a
    close is an error (the block restarts there), never one longer block."""
    bodies: list[str] = []
    reopened = stray = 0
    body_start: int | None = None
    for match in _CALL_TAG_RE.finditer(text):
        if match.group() == _OPEN_CALL:
            reopened += body_start is not None
            body_start = match.end()
        elif body_start is None:
            stray += 1
        else:
            bodies.append(text[body_start : match.start()])
            body_start = None
    problems = []
    if reopened:
        problems.append(f"{_OPEN_CALL} opened again before {_CLOSE_CALL} ({reopened}x)")
    if stray:
        problems.append(f"{_CLOSE_CALL} without a matching {_OPEN_CALL} ({stray}x)")
    if body_start is not None:
        problems.append(f"{_OPEN_CALL} is never closed")
    return bodies, problems


def _json_object(raw: str, what: str) -> tuple[dict | None, str | None]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return None, f"{what} is not valid JSON ({type(exc).__name__}: {str(exc)[:80]})"
    if not isinstance(value, dict):
        return None, f"{what} is JSON {type(value).__name__}, expected an object"
    return value, None


def _block_problem(body: str, k: int) -> str | None:
    call, problem = _json_object(body.strip(), f"tool call {k}")
    if problem:
        return problem
    name = call.get("name")
    if not isinstance(name, str) or not name.strip():
        return f"tool call {k} has no non-empty string 'name'"
    if "arguments" not in call:
        return f"tool call {k} has no 'arguments'"
    arguments = call["arguments"]
    if isinstance(arguments, str):  # some formats carry the arguments as JSON text
        return _json_object(arguments, f"tool call {k} arguments")[1]
    if not isinstance(arguments, dict):
        return f"tool call {k} arguments is JSON {type(arguments).__name__}, expected an object"
    return None


def _structured_problem(call: ToolCall | dict[str, Any], k: int) -> str | None:
    name = call.name if isinstance(call, ToolCall) else call.get("name")
    arguments = call.arguments if isinstance(call, ToolCall) else call.get("arguments")
    if not isinstance(name, str) or not name.strip():
        return f"message tool call {k} has no name"
    if not isinstance(arguments, str):
        return f"message tool call {k} arguments must be JSON text, got {type(arguments).__name__}"
    return _json_object(arguments, f"message tool call {k} ({name}) arguments")[1]


def tool_call_problems(
    text: str, tool_calls: Sequence[ToolCall | dict[str, Any]] | None = None
) -> tuple[int, list[str]]:
    """(number of tool calls found, problems) over the text's blocks and the message's calls."""
    bodies, problems = tool_call_blocks(text)
    for k, body in enumerate(bodies):
        problem = _block_problem(body, k)
        if problem:
            problems.append(problem)
    for k, call in enumerate(tool_calls or ()):
        problem = _structured_problem(call, k)
        if problem:
            problems.append(problem)
    return len(bodies) + len(tool_calls or ()), problems


def think_before_calls_problems(text: str, think_tag: str = "think") -> list[str]:
    """For reasoning agents: one non-empty think block, opening the text, before any tool call."""
    opening, closing = _tags(think_tag)
    problems = [
        f"{tag} appears {text.count(tag)} times, expected once"
        for tag in (opening, closing)
        if text.count(tag) != 1
    ]
    if problems:
        return problems
    start, end = text.find(opening), text.find(closing)
    if text[:start].strip() or end < start:
        return [f"the text must open with {opening}...{closing}"]
    if not text[start + len(opening) : end].strip():
        return [f"empty {opening} block"]
    first_call = text.find(_OPEN_CALL)
    if 0 <= first_call < end:
        return [f"{_OPEN_CALL} inside or before the {opening} block"]
    return []


def tool_call_format(text: str, tool_calls: Sequence[ToolCall | dict[str, Any]] | None = None) -> float:
    """1.0 when there is at least one tool call and every one is well formed, else 0.0."""
    found, problems = tool_call_problems(text, tool_calls)
    return 1.0 if found and not problems else 0.0


# --- rewards ----------------------------------------------------------------------------------


@register(
    "reasoning_format",
    tags=("format",),
    description="1 if the response is exactly one non-empty <think> block then one non-empty <answer> block, else 0.",
)
class ReasoningFormat(PointwiseReward):
    think_tag: str = Field(default="think", min_length=1, pattern=r"^[\w-]+$")
    answer_tag: str = Field(default="answer", min_length=1, pattern=r"^[\w-]+$")
    allow_outside_text: bool = False

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        problems = reasoning_format_problems(
            sample.responses[index].text, self.think_tag, self.answer_tag, self.allow_outside_text
        )
        return response_score(0.0 if problems else 1.0, "; ".join(problems) or "format ok")


@register(
    "tool_call_format",
    tags=("format",),
    description="1 if every <tool_call> block and message tool call is JSON with a name and object arguments, else 0.",
)
class ToolCallFormat(PointwiseReward):
    # With False, a response that calls no tool passes (nothing is malformed).
    require_tool_call: bool = True
    # With True, the response must also open with one non-empty <think> block (reasoning agents).
    require_think: bool = False

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        message = sample.responses[index].message
        found, problems = tool_call_problems(message.content, message.tool_calls)
        if not found and self.require_tool_call:
            problems = ["no tool call found", *problems]
        if self.require_think:
            problems = think_before_calls_problems(message.content) + problems
        reason = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        return ResponseScore(
            score=0.0 if problems else 1.0, reason=reason or f"{found} well-formed tool call(s)"
        )
