"""The schema's table rows: lossless through pandas, Arrow and DuckDB, whatever the text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rm_rewards.core.schema import (
    ChatMessage,
    Response,
    ResponseScore,
    Sample,
    Step,
    ToolCall,
    sample_from_row,
    sample_to_row,
    samples_from_frame,
    samples_to_frame,
)

text = st.text(st.characters(exclude_categories=()), max_size=40)  # lone surrogates, controls, CJK, emoji
messages = st.builds(
    ChatMessage,
    role=st.sampled_from(["system", "user", "assistant", "tool"]),
    content=text,
    reasoning=st.none() | text,
    tool_calls=st.none() | st.lists(st.builds(ToolCall, id=st.none() | text, name=text, arguments=text), max_size=2),
)
responses = st.builds(
    Response,
    message=messages,
    steps=st.none() | st.lists(st.builds(Step, content=text, label=st.none() | st.floats(0, 1)), max_size=3),
    label=st.dictionaries(st.sampled_from(["helpfulness", "correctness"]), st.floats(0, 4), max_size=2),
)
samples = st.builds(
    Sample,
    id=st.text(max_size=20),  # ids and sources are ours (content hashes, dataset names): valid UTF-8
    source=st.text(max_size=10),
    task=st.sampled_from(["pointwise", "pairwise", "listwise"]),
    split=st.sampled_from(["train", "test"]),
    input=st.lists(messages, max_size=3),
    responses=st.lists(responses, min_size=1, max_size=3),
    preference=st.none() | st.integers(0, 2),
    preference_strength=st.none() | st.floats(-3, 3),
    reference=st.none() | text | st.just("lone \ud800 surrogate"),
    metadata=st.dictionaries(st.text(max_size=5), st.integers() | text | st.booleans(), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(samples)
def test_row_round_trip_is_lossless(sample):
    assert sample_from_row(sample_to_row(sample)) == sample
    assert len(sample.content_hash()) == 32


@settings(max_examples=20, deadline=None)
@given(st.lists(samples, min_size=1, max_size=5))
def test_round_trip_through_duckdb(batch):
    import duckdb

    frame = samples_to_frame(batch)
    connection = duckdb.connect()
    connection.register("incoming", frame)
    connection.execute("CREATE TABLE t AS SELECT * FROM incoming")
    back = samples_from_frame(connection.execute("SELECT * FROM t").df())
    assert back == batch


def test_content_hash_changes_with_content():
    base = Sample(
        id="s", source="x", input=[ChatMessage(role="user", content="hi")],
        responses=[Response(message=ChatMessage(role="assistant", content="hello"))],
    )
    changed = base.model_copy(update={"reference": "hello"})
    assert base.content_hash() != changed.content_hash()
    assert base.content_hash() == base.model_copy().content_hash()


def test_invalid_samples_name_the_field():
    with pytest.raises(ValidationError, match="responses"):
        Sample(id="s", source="x", input=[], responses=[])
    with pytest.raises(ValidationError, match="role"):
        ChatMessage(role="robot", content="x")
    with pytest.raises(ValidationError, match="finite"):
        ResponseScore(score=float("nan"))
