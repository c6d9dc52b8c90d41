"""What the reward server accepts and answers, validated without Ray or a web framework.

`POST /v1/rewards` takes samples in rmforge's schema (`rm_rewards.core.schema.Sample`; `id` and
`source` may be left out, and a response may be a plain string):

    {"model": "checkpoint:bt-1a2b",                      # optional: must be the served model
     "samples": [{"input": [{"role": "user", "content": "How do I bake bread?"}],
                  "responses": ["Mix flour, water and yeast...", "No."]}]}

and answers one score per response, in order:

    {"model": "checkpoint:bt-1a2b", "version": "...",
     "results": [{"id": "0", "scores": [1.23, -0.98], "errors": [null, null]}]}

`POST /get_reward` is OpenRLHF's remote reward-model protocol (`--remote_rm_url`,
openrlhf/utils/remote_rm_utils.py): `{"query": [prompt+response strings], "prompts": [...],
"labels": [...]}` (prompts and labels optional) → `{"rewards": [one float per query]}`.

Every problem is a `RequestError` with an HTTP status and the field it is about.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from rm_rewards.core.schema import ChatMessage, Response, Sample, Task

API_KEY_ENV = "RMFORGE_SERVE_API_KEY"


class RequestError(ValueError):
    def __init__(self, status: int, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.status, self.field, self.message = status, field, message

    def body(self) -> dict[str, Any]:
        return {"error": {"field": self.field, "message": self.message}}


def _response(value: Any) -> Any:
    """A plain string is the assistant's reply."""
    return {"message": {"role": "assistant", "content": value}} if isinstance(value, str) else value


ServedResponse = Annotated[Response, BeforeValidator(_response)]


class RewardSample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    source: str = "serve"
    task: Task = "pointwise"
    input: list[ChatMessage]
    responses: list[ServedResponse] = Field(min_length=1)
    reference: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_sample(self, index: int) -> Sample:
        return Sample(id=self.id or str(index), source=self.source, task=self.task, input=self.input,
                      responses=self.responses, reference=self.reference, metadata=self.metadata)


class RewardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    samples: list[RewardSample]


class OpenRLHFRequest(BaseModel):
    query: list[str]
    prompts: list[str] | None = None
    labels: list[Any] | None = None

    @field_validator("query")
    @classmethod
    def _not_empty(cls, query: list[str]) -> list[str]:
        if not query:
            raise ValueError("empty batch: give at least one query")
        return query


@dataclass
class ScoreJob:
    """One request's work: samples, and for OpenRLHF the query strings as sent (one response each)."""

    samples: list[Sample]
    raw_texts: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _field_of(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return location, first["msg"]


def parse_json(body: bytes, max_bytes: int) -> Any:
    if len(body) > max_bytes:
        raise RequestError(413, "body", f"payload of {len(body)} bytes is over the limit of {max_bytes}")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, "body", f"malformed JSON: {exc}") from None


def _validated(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        raise RequestError(422, "body", f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        location, message = _field_of(exc)
        raise RequestError(422, location, message) from None


def parse_reward_request(data: Any, *, served: str, max_samples: int) -> ScoreJob:
    request = _validated(RewardRequest, data)
    if request.model is not None and request.model != served:
        raise RequestError(404, "model", f"unknown model {request.model!r}: this server serves {served!r}")
    if not request.samples:
        raise RequestError(422, "samples", "empty batch: give at least one sample")
    if len(request.samples) > max_samples:
        raise RequestError(413, "samples", f"{len(request.samples)} samples is over the limit of {max_samples}")
    return ScoreJob(samples=[s.to_sample(i) for i, s in enumerate(request.samples)])


def parse_openrlhf_request(data: Any, *, max_samples: int) -> ScoreJob:
    """Each query becomes a one-response sample: the response is what follows its prompt when
    `prompts` is given (for rule rewards); a checkpoint scores the query string as sent."""
    request = _validated(OpenRLHFRequest, data)
    n = len(request.query)
    if n > max_samples:
        raise RequestError(413, "query", f"{n} queries is over the limit of {max_samples}")
    for name in ("prompts", "labels"):
        values = getattr(request, name)
        if values is not None and len(values) != n:
            raise RequestError(422, name, f"{len(values)} {name} for {n} queries")
    samples = []
    for i, query in enumerate(request.query):
        prompt = request.prompts[i] if request.prompts else ""
        response = query[len(prompt):] if prompt and query.startswith(prompt) else query
        label = request.labels[i] if request.labels else None
        samples.append(Sample(
            id=str(i), source="openrlhf", input=[ChatMessage(role="user", content=prompt)] if prompt else [],
            responses=[Response(message=ChatMessage(role="assistant", content=response))],
            reference=None if label is None else str(label),
        ))
    return ScoreJob(samples=samples, raw_texts=list(request.query))


def check_api_key(expected: str | None, headers: Any) -> None:
    """When a key is configured, `Authorization: Bearer <key>` or `X-API-Key: <key>` must carry it
    (compared in constant time). The key is never put into a message."""
    import hmac

    if not expected:
        return
    given = headers.get("x-api-key") or ""
    authorization = headers.get("authorization") or ""
    if not given and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise RequestError(401, "authorization", "missing or wrong API key")
