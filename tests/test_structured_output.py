"""Structured output: tolerant JSON extraction, strict validation, tag extraction, and the client
asking for / parsing an output model over real HTTP against the fake server."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from rm_rewards.llm.cache import ResponseCache
from rm_rewards.llm.client import LLMClient
from rm_rewards.llm.structured import (
    StructuredOutputError,
    cached_response_format,
    cached_schema,
    extract_json_object,
    extract_number_tag,
    extract_tag,
    extract_tags,
    parse_model,
    response_format_for,
    strip_think,
)
from tests.support.fake_openai import reply


class Verdict(BaseModel):
    score: int = Field(ge=0, le=4)
    reason: str


class Preference(BaseModel):
    winner: Literal["a", "b", "tie"]


# --- extract_json_object -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"score": 3, "reason": "ok"}', {"score": 3, "reason": "ok"}),
        ('  \n{"score": 3}\n', {"score": 3}),
        ('```json\n{"score": 2}\n```', {"score": 2}),
        ('Sure! Here it is:\n```\n{"score": 1}\n```\nHope that helps.', {"score": 1}),
        ('My verdict is {"score": 4, "reason": "clear"} and that is final.', {"score": 4, "reason": "clear"}),
        # Braces inside strings do not confuse the scan.
        (
            'Result: {"reason": "uses { and } freely", "score": 0}',
            {"reason": "uses { and } freely", "score": 0},
        ),
        # A brace pair that is not JSON comes first; the first real object wins.
        ('Format {like this}: {"score": 2}', {"score": 2}),
        # Nested objects: the outermost complete object is returned.
        ('x {"outer": {"score": 1}, "n": 2} y', {"outer": {"score": 1}, "n": 2}),
        # A reasoning model's draft inside <think> is not its answer.
        ('<think>maybe {"score": 0}?</think>{"score": 3}', {"score": 3}),
    ],
)
def test_extract_json_object_finds_the_answer(text: str, expected: dict) -> None:
    assert extract_json_object(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("The score is three.", "no JSON object"),
        ("{'score': 3}", "no JSON object"),  # Python literal, not JSON: never eval'd
        ('{"score": NaN}', "no JSON object"),
        ('{"score": Infinity}', "no JSON object"),
        ('{"score": 3', "no JSON object"),  # truncated
        ('<think>{"score": 1}</think>', "empty"),
    ],
)
def test_extract_json_object_refuses_what_is_not_there(text: str, message: str) -> None:
    with pytest.raises(StructuredOutputError, match=message):
        extract_json_object(text)


def test_extract_json_object_never_evaluates_code(tmp_path) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with pytest.raises(StructuredOutputError):
        extract_json_object(payload)
    assert not marker.exists()


def test_strip_think_removes_every_block_case_insensitively() -> None:
    assert strip_think("a<think>x</think>b<THINK>y\nz</THINK>c") == "abc"


# --- parse_model -------------------------------------------------------------------------------


def test_parse_model_validates_fields() -> None:
    verdict = parse_model('Here: {"score": 3, "reason": "fine"}', Verdict)
    assert verdict == Verdict(score=3, reason="fine")


def test_parse_model_error_names_the_field_and_the_value() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        parse_model('{"score": 7, "reason": "too high"}', Verdict)
    text = str(caught.value)
    assert "Verdict" in text and "field 'score'" in text and "7" in text


def test_parse_model_missing_field_is_an_error_not_a_default() -> None:
    with pytest.raises(StructuredOutputError, match="field 'reason'"):
        parse_model('{"score": 2}', Verdict)


# --- tags --------------------------------------------------------------------------------------


def test_extract_tag_is_non_greedy() -> None:
    text = "<reason>short</reason> filler <score>3</score> more <note>x</note>"
    assert extract_tag(text, "score") == "3"
    assert extract_tag(text, "reason") == "short"


def test_extract_tag_repeated_is_an_error() -> None:
    # A greedy <score>(.*)</score> would return "1</score> ... <score>4".
    with pytest.raises(StructuredOutputError, match="appears 2 times"):
        extract_tag("<score>1</score> on reflection <score>4</score>", "score")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no tags at all", "missing <score>"),
        ("<score>3", "never closed"),
        ("3</score>", "without a matching"),
        ("<score>1<score>2</score></score>", "opened again"),
    ],
)
def test_extract_tag_malformed_is_an_error(text: str, message: str) -> None:
    with pytest.raises(StructuredOutputError, match=message):
        extract_tag(text, "score")


def test_extract_tag_ignores_drafts_in_think_blocks() -> None:
    assert extract_tag("<think>maybe <score>1</score></think><score>2</score>", "score") == "2"


def test_extract_tags_reads_a_list_and_allows_none() -> None:
    text = "<violation>rude</violation>\n<Violation> off-topic </Violation>"
    assert extract_tags(text, "violation") == ["rude", "off-topic"]
    assert extract_tags("No violations found.", "violation") == []


def test_extract_tags_rejects_a_bad_tag_name() -> None:
    with pytest.raises(ValueError, match="not a tag name"):
        extract_tags("x", "a|b")


@pytest.mark.parametrize(("text", "value"), [("<score>3</score>", 3.0), ("<score> 2.5 </score>", 2.5)])
def test_extract_number_tag_parses_numbers(text: str, value: float) -> None:
    assert extract_number_tag(text, "score", low=0, high=4) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<score>3/5</score>", "not a number"),
        ("<score>three</score>", "not a number"),
        ("<score></score>", "not a number"),
        ("<score>5</score>", "outside"),
        ("<score>-1</score>", "outside"),
    ],
)
def test_extract_number_tag_refuses_bad_numbers(text: str, message: str) -> None:
    with pytest.raises(StructuredOutputError, match=message):
        extract_number_tag(text, "score", low=0, high=4)


# --- response_format_for -----------------------------------------------------------------------


def test_response_format_for_each_mode() -> None:
    schema_format = response_format_for(Verdict, "json_schema")
    assert schema_format["type"] == "json_schema"
    assert schema_format["json_schema"]["name"] == "Verdict"
    assert schema_format["json_schema"]["schema"] == Verdict.model_json_schema()
    assert response_format_for(Verdict, "json_object_schema") == {
        "type": "json_object",
        "schema": Verdict.model_json_schema(),
    }
    assert response_format_for(Verdict, "json_object") == {"type": "json_object"}
    assert response_format_for(Verdict, "prompt") is None
    with pytest.raises(ValueError, match="unknown structured output mode 'jsonschema'"):
        response_format_for(Verdict, "jsonschema")  # type: ignore[arg-type]


def test_schema_is_built_once_per_model_and_callers_get_their_own_copy(monkeypatch) -> None:
    class Fresh(BaseModel):  # a class no other test has asked about, so nothing is cached yet
        score: int = Field(ge=0, le=4)

    built = []
    original = Fresh.model_json_schema.__func__

    def counting(cls, *args, **kwargs):
        built.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Fresh, "model_json_schema", classmethod(counting))
    first = response_format_for(Fresh)
    first["json_schema"]["schema"]["properties"]["score"]["maximum"] = 99  # the caller's own copy
    second = response_format_for(Fresh, "json_schema")
    object_form = response_format_for(Fresh, "json_object_schema")
    assert built == [Fresh]  # one schema build for every mode and call
    assert second["json_schema"]["schema"]["properties"]["score"]["maximum"] == 4
    assert object_form["schema"] == second["json_schema"]["schema"] == cached_schema(Fresh)
    assert cached_response_format(Fresh) is cached_response_format(Fresh)  # the client's shared one


# --- through the client ------------------------------------------------------------------------


def _ask(client: LLMClient, text: str, **options) -> object:
    async def go():
        async with client:
            return await client.chat([{"role": "user", "content": text}], **options)

    return asyncio.run(go())


def test_client_requests_json_schema_and_parses_fenced_reply(fake_openai, llm_config) -> None:
    fake_openai.enqueue(reply('Sure.\n```json\n{"score": 3, "reason": "clear"}\n```'))
    result = _ask(LLMClient(llm_config(fake_openai)), "judge this", output_model=Verdict)
    assert result.ok and result.parsed == Verdict(score=3, reason="clear")
    sent = fake_openai.bodies[0]["response_format"]
    assert sent == response_format_for(Verdict)
    # Fields go out in the model's order, not sorted: servers generate them in the schema's order.
    assert list(sent["json_schema"]["schema"]["properties"]) == ["score", "reason"]


def test_response_format_in_extra_body_wins_as_with_the_sdk(fake_openai, llm_config) -> None:
    fake_openai.enqueue(reply('{"score": 3, "reason": "clear"}'))
    override = {"type": "json_object"}
    result = _ask(
        LLMClient(llm_config(fake_openai)),
        "judge",
        output_model=Verdict,
        extra_body={"response_format": override},
    )
    assert result.ok and fake_openai.bodies[0]["response_format"] == override


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("json_object_schema", {"type": "json_object", "schema": Preference.model_json_schema()}),
        ("json_object", {"type": "json_object"}),
        ("prompt", None),
    ],
)
def test_client_structured_modes(fake_openai, llm_config, mode: str, expected: object) -> None:
    fake_openai.enqueue(reply('{"winner": "b"}'))
    result = _ask(
        LLMClient(llm_config(fake_openai, structured_output=mode)), "a or b?", output_model=Preference
    )
    assert result.parsed == Preference(winner="b")
    assert fake_openai.bodies[0].get("response_format") == expected


@pytest.mark.parametrize(
    "content",
    ['{"score": 3, "reason": ', '{"score": 9, "reason": "x"}', "I think it is a 3.", "{'score': 3}"],
)
def test_unparseable_answer_is_a_parse_error_never_a_default(
    fake_openai, llm_config, tmp_path, content
) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    client = LLMClient(llm_config(fake_openai), cache)
    fake_openai.enqueue(reply(content))
    result = _ask(client, "judge", output_model=Verdict)
    assert result.error is not None and result.error.reason == "parse_error"
    assert result.parsed is None
    assert result.content == content  # kept for diagnosis
    assert fake_openai.request_count == 1  # a bad answer is not retried at the HTTP level
    assert len(cache) == 0  # ... and not cached: a re-run asks again
    assert client.stats.snapshot().failures_by_reason == {"parse_error": 1}


# --- against the real embedded server (llama-cpp-python serving SmolLM2-135M) ------------------


@pytest.mark.slow
@pytest.mark.embedded_llm
def test_schema_constrained_answer_from_the_embedded_server(tmp_path) -> None:
    from rm_resources.embedded_llm import EMBEDDED_MODEL_NAME, EmbeddedLLMServer
    from rm_rewards.llm.config import LLMConfig

    server = EmbeddedLLMServer(n_threads=1, n_ctx=1024, log_path=tmp_path / "llm.log").start()
    try:
        config = LLMConfig(
            base_url=server.base_url,
            model=EMBEDDED_MODEL_NAME,
            structured_output="json_object_schema",
            timeout_s=60,
            max_retries=0,
        )
        question = "Rate the answer '2+2=4' from 0 to 4. Reply as JSON with keys score and reason."
        result = _ask(LLMClient(config), question, output_model=Verdict, max_tokens=60)
        # The grammar built from the schema forces a valid Verdict even from a 135M model.
        assert result.ok, result.error
        assert isinstance(result.parsed, Verdict)
        # This server refuses the OpenAI "json_schema" form: a clear error, not a silent default.
        refused = _ask(
            LLMClient(config.model_copy(update={"structured_output": "json_schema"})),
            question,
            output_model=Verdict,
            max_tokens=60,
        )
        assert refused.error is not None and "json_object" in refused.error.message
    finally:
        server.stop()
