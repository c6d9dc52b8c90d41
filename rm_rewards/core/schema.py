"""The one schema of rmforge: chat messages, samples, and reward results.

Every stage speaks these models: converters produce `Sample`s, rewards return `RewardResult`s,
and the warehouse stores both as flat table rows (`sample_to_row` / `sample_from_row`).
Nested parts and free text travel as JSON text in the row, so the round trip through DuckDB, Arrow
and pandas is lossless whatever the nesting and whatever the text (lone surrogates included).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant", "tool"]
Split = Literal["train", "test"]
Task = Literal["pointwise", "pairwise", "listwise"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCall(_Model):
    """A function call an assistant asked for; `arguments` is the raw JSON text the model wrote."""

    id: str | None = None
    name: str
    arguments: str = ""


class ChatMessage(_Model):
    role: Role
    content: str
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None


class Step(_Model):
    """One step of a multi-step answer, with an optional human label (e.g. PRM data: 1 good, 0 bad)."""

    content: str
    label: float | None = None


class Response(_Model):
    """One candidate answer. `label` carries per-response labels (e.g. HelpSteer2 attributes)."""

    message: ChatMessage
    steps: list[Step] | None = None
    label: dict[str, float] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.message.content


class Sample(_Model):
    """One item to score: a conversation so far and one or more candidate responses.

    `preference` is the sample-level label for pairwise data: the index of the better response,
    or None for a tie / no preference. `reference` is a gold answer for rules that need one
    (math answers, test cases, reference text).
    """

    id: str
    source: str
    task: Task = "pointwise"
    split: Split = "train"
    input: list[ChatMessage]
    responses: list[Response]
    preference: int | None = None
    preference_strength: float | None = None
    reference: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("responses")
    @classmethod
    def _at_least_one_response(cls, v: list[Response]) -> list[Response]:
        if not v:
            raise ValueError("a sample needs at least one response")
        return v

    @property
    def prompt(self) -> str:
        """The last user turn: what most rule rewards compare a response against."""
        for message in reversed(self.input):
            if message.role == "user":
                return message.content
        return ""

    def content_hash(self) -> str:
        """Stable hash of everything a reward can see; used to key caches and score rows."""
        # ASCII-escaped JSON: text with lone surrogates (not encodable as UTF-8) still hashes.
        text = json.dumps(self.model_dump(mode="json"), ensure_ascii=True, sort_keys=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


class DimensionScore(_Model):
    score: float
    reason: str = ""


class ResponseScore(_Model):
    """A reward's verdict on one response. `score` is None exactly when `error` says why."""

    score: float | None = None
    reason: str = ""
    dimensions: dict[str, DimensionScore] = Field(default_factory=dict)
    steps: list[float] | None = None
    error: str | None = None

    @field_validator("score")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"score must be finite, got {v}")
        return v


class RewardResult(_Model):
    """One reward applied to one sample: a score per response, or an error for the whole sample."""

    reward_name: str
    reward_version: str = "1"
    sample_id: str
    scores: list[ResponseScore] = Field(default_factory=list)
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.error is None for s in self.scores)

    def values(self) -> list[float | None]:
        return [s.score for s in self.scores]


# --- table rows -------------------------------------------------------------------------------

# The flat row of a sample (the warehouse's converted_samples columns, parquet sample files):
# nested parts as JSON text. Column types belong to the store, not here.
SAMPLE_ROW_FIELDS: tuple[str, ...] = (
    "sample_id",
    "source",
    "task",
    "split",
    "n_responses",
    "preference",
    "preference_strength",
    "reference_json",
    "input_json",
    "responses_json",
    "metadata_json",
)


def _dumps(value: Any) -> str:
    """Readable UTF-8 JSON; text with lone surrogates falls back to \\u escapes (still lossless)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, sort_keys=True)
    return text


def sample_to_row(sample: Sample) -> dict[str, Any]:
    return {
        "sample_id": sample.id,
        "source": sample.source,
        "task": sample.task,
        "split": sample.split,
        "n_responses": len(sample.responses),
        "preference": sample.preference,
        "preference_strength": sample.preference_strength,
        "reference_json": None if sample.reference is None else _dumps(sample.reference),
        "input_json": _dumps([m.model_dump(mode="json") for m in sample.input]),
        "responses_json": _dumps([r.model_dump(mode="json") for r in sample.responses]),
        "metadata_json": _dumps(sample.metadata),
    }


def _none_if_missing(value: Any) -> Any:
    """pandas turns NULLs into NaN/NA; map them back to None."""
    if value is None:
        return None
    try:
        if value != value:  # NaN
            return None
    except (TypeError, ValueError):
        pass
    try:
        import pandas as pd

        if value is pd.NA:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return value


def sample_from_row(row: dict[str, Any]) -> Sample:
    preference = _none_if_missing(row.get("preference"))
    strength = _none_if_missing(row.get("preference_strength"))
    return Sample(
        id=row["sample_id"],
        source=row["source"],
        task=row["task"],
        split=row["split"],
        preference=None if preference is None else int(preference),
        preference_strength=None if strength is None else float(strength),
        reference=None if _none_if_missing(row.get("reference_json")) is None else json.loads(row["reference_json"]),
        input=json.loads(row["input_json"]),
        responses=json.loads(row["responses_json"]),
        metadata=json.loads(row["metadata_json"]),
    )


def samples_to_frame(samples: list[Sample]):
    import pandas as pd

    return pd.DataFrame([sample_to_row(s) for s in samples], columns=list(SAMPLE_ROW_FIELDS))


def samples_from_frame(frame) -> list[Sample]:
    return [sample_from_row(row) for row in frame.to_dict(orient="records")]
