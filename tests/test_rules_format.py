"""Format rules: strict <think>/<answer> structure and JSON tool calls (known answers)."""

from __future__ import annotations

import pytest

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample, ToolCall
from rm_rewards.rules.format import (
    reasoning_format,
    reasoning_format_problems,
    tool_call_format,
    tool_call_problems,
)

GOOD_CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def make_sample(*messages: ChatMessage) -> Sample:
    return Sample(
        id="s1",
        source="test",
        input=[ChatMessage(role="user", content="q")],
        responses=[Response(message=m) for m in messages],
    )


def assistant(content: str, tool_calls: list[ToolCall] | None = None) -> ChatMessage:
    return ChatMessage(role="assistant", content=content, tool_calls=tool_calls)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>reasoning</think><answer>42</answer>", 1.0),
        ("  <think>a</think>\n\n<answer>b</answer>\n", 1.0),
        ("<think>a</think><answer>b</answer><answer>c</answer>", 0.0),  # repeated: not swallowed
        ("<think>a</think><think>b</think><answer>c</answer>", 0.0),
        ("<answer>b</answer><think>a</think>", 0.0),
        ("<think>a<answer>b</answer></think>", 0.0),
        ("<think>  </think><answer>b</answer>", 0.0),
        ("<think>a</think><answer></answer>", 0.0),
        ("Sure! <think>a</think><answer>b</answer>", 0.0),
        ("<think>a</think>", 0.0),
        ("", 0.0),
    ],
)
def test_reasoning_format_known_answers(text: str, expected: float) -> None:
    assert reasoning_format(text) == expected


def test_reasoning_format_problems_say_what_is_wrong() -> None:
    assert reasoning_format_problems("<think>a</think><answer>b</answer><answer>c</answer>") == [
        "<answer> appears 2 times, expected once",
        "</answer> appears 2 times, expected once",
    ]
    assert reasoning_format_problems("x<think>a</think>y<answer>b</answer>z") == [
        "text before the blocks",
        "text between the blocks",
        "text after the blocks",
    ]
    assert reasoning_format_problems("x<think>a</think>y<answer>b</answer>z", allow_outside_text=True) == []


def test_reasoning_format_reward_with_custom_tags() -> None:
    reward = registry.get("reasoning_format", think_tag="reasoning", answer_tag="final")
    result = reward.evaluate(
        make_sample(
            assistant("<reasoning>r</reasoning><final>f</final>"),
            assistant("<think>r</think><answer>f</answer>"),
        )
    )
    assert result.values() == [1.0, 0.0]
    assert result.scores[0].reason == "format ok"
    assert "<reasoning> appears 0 times" in result.scores[1].reason
    with pytest.raises(ValueError, match="think_tag"):
        registry.get("reasoning_format", think_tag="a>b")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD_CALL, 1.0),
        (GOOD_CALL + "\n" + GOOD_CALL, 1.0),
        ('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>', 1.0),  # JSON-text arguments
        ("<tool_call>" + GOOD_CALL, 0.0),  # opened twice
        (GOOD_CALL + "</tool_call>", 0.0),  # stray close
        ('<tool_call>{"name": "f", "arguments": {}}', 0.0),  # never closed
        ('<tool_call>{"name": "f"}</tool_call>', 0.0),
        ('<tool_call>{"name": "", "arguments": {}}</tool_call>', 0.0),
        ('<tool_call>{"name": "f", "arguments": [1, 2]}</tool_call>', 0.0),
        ('<tool_call>{"name": "f", "arguments": "not json"}</tool_call>', 0.0),
        ("<tool_call>[1, 2]</tool_call>", 0.0),
        ("<tool_call>{'name': 'f', 'arguments': {}}</tool_call>", 0.0),  # Python, not JSON
        ("no tool call at all", 0.0),
    ],
)
def test_tool_call_format_known_answers(text: str, expected: float) -> None:
    assert tool_call_format(text) == expected


def test_tool_call_json_is_never_evaluated(tmp_path) -> None:
    marker = tmp_path / "pwned"
    payload = f"<tool_call>__import__('pathlib').Path({str(marker)!r}).touch()</tool_call>"
    found, problems = tool_call_problems(payload)
    assert found == 1 and "not valid JSON" in problems[0]
    assert not marker.exists()


def test_deeply_nested_json_is_a_problem_not_a_crash() -> None:
    found, problems = tool_call_problems("<tool_call>" + "[" * 100_000 + "</tool_call>")
    assert found == 1 and "not valid JSON" in problems[0]


def test_message_tool_calls_are_checked_too() -> None:
    ok = assistant("", [ToolCall(id="c1", name="get_weather", arguments='{"city": "Paris"}')])
    bad_args = assistant("", [ToolCall(name="get_weather", arguments="{city: Paris}")])
    empty_args = assistant("", [ToolCall(name="get_weather", arguments="")])
    mixed = assistant(GOOD_CALL, [ToolCall(name="f", arguments="[]")])
    result = registry.get("tool_call_format").evaluate(make_sample(ok, bad_args, empty_args, mixed))
    assert result.values() == [1.0, 0.0, 0.0, 0.0]
    assert result.scores[0].reason == "1 well-formed tool call(s)"
    assert "message tool call 0 (get_weather) arguments is not valid JSON" in result.scores[1].reason
    assert "expected an object" in result.scores[3].reason


def test_no_tool_call_passes_only_when_not_required() -> None:
    plain = make_sample(assistant("just text"))
    assert registry.get("tool_call_format").evaluate(plain).values() == [0.0]
    assert registry.get("tool_call_format").evaluate(plain).scores[0].reason == "no tool call found"
    assert registry.get("tool_call_format", require_tool_call=False).evaluate(plain).values() == [1.0]


def test_tool_calls_after_a_think_block_when_required() -> None:
    reward = registry.get("tool_call_format", require_think=True)
    result = reward.evaluate(
        make_sample(
            assistant("<think>I need the weather.</think>\n" + GOOD_CALL),
            assistant(GOOD_CALL),
            assistant("<think></think>" + GOOD_CALL),
            assistant("<think>" + GOOD_CALL + "</think>"),
            assistant("<think>a</think><think>b</think>" + GOOD_CALL),
        )
    )
    assert result.values() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert (
        result.scores[1].reason
        == "<think> appears 0 times, expected once; </think> appears 0 times, expected once"
    )
    assert result.scores[2].reason == "empty <think> block"
    assert result.scores[3].reason == "<tool_call> inside or before the <think> block"
    assert registry.get("tool_call_format").evaluate(make_sample(assistant(GOOD_CALL))).values() == [1.0]


def test_many_problems_are_summarised() -> None:
    text = "<tool_call>{}</tool_call>" * 30
    result = registry.get("tool_call_format").evaluate(make_sample(assistant(text)))
    assert result.values() == [0.0]
    assert result.scores[0].reason.endswith("and 20 more")


@pytest.mark.parametrize("name", ["reasoning_format", "tool_call_format"])
def test_format_rewards_are_registered(name: str) -> None:
    spec = registry.spec(name)
    assert "format" in spec.tags and spec.kind == "pointwise" and not spec.is_llm and spec.description
