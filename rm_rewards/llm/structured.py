"""Getting structured answers out of model text: JSON objects, pydantic models, and tags.

Two ways to ask, one way to read:

- ask: `response_format_for(model, mode)` builds the `response_format` request field. Servers that
  support it (OpenAI, vLLM, llama.cpp's server) then constrain decoding to the schema; with
  `mode="prompt"` nothing is sent and the prompt alone must ask for JSON. The schema is built
  once per model class (`cached_schema`, `cached_response_format`): pydantic's
  `model_json_schema()` costs a few hundred microseconds, more than the rest of a judge call's
  request building together, and the client needs it for every request.
- read: `parse_model(text, model)` is tolerant of what models wrap JSON in (code fences, prose
  before and after, `<think>` blocks) but strict about the JSON itself: `json` only, never
  `eval`, no NaN/Infinity, and the object must validate against the pydantic model.

Every failure raises `StructuredOutputError` (a `ValueError`) saying what was wrong. Callers turn
it into an error for that item: a parse failure is never a default score or a default verdict.

Tags: `extract_tag(text, "score")` reads `<score>3</score>` non-greedily and refuses text where
the tag is missing, unclosed or repeated (a greedy regex would swallow everything between the
first and last tag); `extract_tags` reads a list of repeated tags; `extract_number_tag` adds a
strict number parse and range check.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

StructuredMode = Literal["json_schema", "json_object_schema", "json_object", "prompt"]
ModelT = TypeVar("ModelT", bound=BaseModel)

# Output model classes whose schema is kept (judges create one class per shape and reuse it).
SCHEMA_MEMO_SIZE = 512
# Parsing gives up on longer text: judge answers are a few KB, and the object scan is quadratic in
# the worst case.
MAX_TEXT_CHARS = 200_000

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)```", re.DOTALL)
_TAG_NAME = re.compile(r"[A-Za-z_][\w.-]*")


class StructuredOutputError(ValueError):
    """Model text that does not hold the structure asked for."""


# --- asking ------------------------------------------------------------------------------------


def response_format_for(
    model: type[BaseModel], mode: StructuredMode = "json_schema"
) -> dict[str, Any] | None:
    """The `response_format` request field asking for JSON shaped like `model`, or None for "prompt".

    - "json_schema": the OpenAI form; OpenAI, vLLM and llama.cpp's own C++ server honour it.
    - "json_object_schema": `{"type": "json_object", "schema": ...}`, the form llama-cpp-python's
      server (our embedded one) turns into a grammar; it rejects "json_schema" (with an HTTP 500).
    - "json_object": any JSON object, no schema (the widest support).
    - "prompt": nothing is sent; the prompt alone asks for JSON.

    `strict` stays off: OpenAI's strict mode rejects any schema with optional fields or without
    `additionalProperties: false`, which ordinary pydantic models have; validation happens here.
    The answer is the caller's own copy (edit it freely); `cached_response_format` is the shared one.
    """
    return copy.deepcopy(cached_response_format(model, mode))


@functools.lru_cache(maxsize=SCHEMA_MEMO_SIZE)
def cached_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model.model_json_schema()`, built once per model class. Shared by every caller: read only."""
    return model.model_json_schema()


@functools.lru_cache(maxsize=SCHEMA_MEMO_SIZE)
def cached_response_format(
    model: type[BaseModel], mode: StructuredMode = "json_schema"
) -> dict[str, Any] | None:
    """`response_format_for(model, mode)`, built once per (model, mode). Shared: read only."""
    if mode == "prompt":
        return None
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": cached_schema(model)}
    if mode != "json_schema":
        raise ValueError(f"unknown structured output mode {mode!r}")
    return {
        "type": "json_schema",
        "json_schema": {"name": _schema_name(model), "schema": cached_schema(model), "strict": False},
    }


def _schema_name(model: type[BaseModel]) -> str:
    # OpenAI requires ^[a-zA-Z0-9_-]{1,64}$; generic pydantic models have brackets in __name__.
    return re.sub(r"[^A-Za-z0-9_-]", "_", model.__name__)[:64] or "output"


# --- reading JSON ------------------------------------------------------------------------------


def strip_think(text: str) -> str:
    """Drop `<think>...</think>` reasoning blocks: a reasoning model's drafts are not its answer."""
    return _THINK_BLOCK.sub("", text)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


def _loads_object(candidate: str) -> dict[str, Any] | None:
    try:
        value = json.loads(candidate, parse_constant=_reject_constant)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _first_object_in(text: str) -> dict[str, Any] | None:
    """The first `{` from which a complete JSON object decodes; prose around it is ignored."""
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    start = text.find("{")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def extract_json_object(text: str, *, ignore_think: bool = True) -> dict[str, Any]:
    """The JSON object in model output: the whole text, a fenced block, or the first one in prose."""
    if not isinstance(text, str):
        raise StructuredOutputError(f"expected model text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise StructuredOutputError(f"output is {len(text)} characters, more than {MAX_TEXT_CHARS}")
    if ignore_think:
        text = strip_think(text)
    if not text.strip():
        raise StructuredOutputError("output is empty: no JSON object in it")
    found = _loads_object(text.strip())
    if found is not None:
        return found
    for block in _FENCE.findall(text):
        found = _loads_object(block.strip())
        if found is not None:
            return found
    found = _first_object_in(text)
    if found is None:
        raise StructuredOutputError(f"no JSON object found in output: {_preview(text)}")
    return found


def parse_model(text: str, model: type[ModelT], *, ignore_think: bool = True) -> ModelT:
    """Validate the JSON object in `text` against `model`; raise `StructuredOutputError` on any flaw."""
    data = extract_json_object(text, ignore_think=ignore_think)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise StructuredOutputError(f"JSON does not match {model.__name__}: {_summarise(exc)}") from None


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"field '{where}': {error['msg']} (got {_preview(repr(error.get('input')), 60)})")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _preview(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --- reading tags ------------------------------------------------------------------------------


def _tag_patterns(tag: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    if not _TAG_NAME.fullmatch(tag):
        raise ValueError(f"not a tag name: {tag!r}")
    name = re.escape(tag)
    return re.compile(rf"<{name}\s*>", re.IGNORECASE), re.compile(rf"</{name}\s*>", re.IGNORECASE)


def extract_tags(text: str, tag: str, *, ignore_think: bool = True) -> list[str]:
    """Contents of every `<tag>...</tag>` in order (stripped); each opening needs its own closing.

    An empty list is a valid answer here (e.g. "no violations"); use `extract_tag` when exactly
    one is required.
    """
    if ignore_think:
        text = strip_think(text)
    opening, closing = _tag_patterns(tag)
    contents: list[str] = []
    position = 0
    while (start := opening.search(text, position)) is not None:
        end = closing.search(text, start.end())
        if end is None:
            raise StructuredOutputError(f"<{tag}> opened at character {start.start()} is never closed")
        inner = text[start.end() : end.start()]
        if opening.search(inner):
            raise StructuredOutputError(f"<{tag}> opened again before it was closed")
        contents.append(inner.strip())
        position = end.end()
    if closing.search(text, position):
        raise StructuredOutputError(f"</{tag}> without a matching <{tag}>")
    return contents


def extract_tag(text: str, tag: str, *, ignore_think: bool = True) -> str:
    """The content of the one `<tag>...</tag>` in `text`; missing or repeated tags are errors."""
    contents = extract_tags(text, tag, ignore_think=ignore_think)
    if not contents:
        raise StructuredOutputError(f"missing <{tag}> tag in output: {_preview(text)}")
    if len(contents) > 1:
        raise StructuredOutputError(f"<{tag}> appears {len(contents)} times; expected exactly once")
    return contents[0]


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def extract_number_tag(
    text: str, tag: str, *, low: float | None = None, high: float | None = None, ignore_think: bool = True
) -> float:
    """A number in the one `<tag>`, e.g. `<score>3</score>`; "3/5", "three" or out of range are errors."""
    content = extract_tag(text, tag, ignore_think=ignore_think)
    if not _NUMBER.fullmatch(content):
        raise StructuredOutputError(f"<{tag}> holds {_preview(content, 40)!r}, not a number")
    value = float(content)
    if not math.isfinite(value):
        raise StructuredOutputError(f"<{tag}> holds a non-finite number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise StructuredOutputError(f"<{tag}> value {value:g} is outside [{low}, {high}]")
    return value


__all__ = [
    "StructuredMode",
    "StructuredOutputError",
    "cached_response_format",
    "cached_schema",
    "extract_json_object",
    "extract_number_tag",
    "extract_tag",
    "extract_tags",
    "parse_model",
    "response_format_for",
    "strip_think",
]
