"""Every knob of the LLM client, with its default, in one validated object."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from rm_rewards.llm.structured import StructuredMode


class LLMConfig(BaseModel):
    """How to reach one model on one OpenAI-compatible endpoint, and how hard to push it.

    `api_key` is a `SecretStr`: repr, str, `model_dump` and `model_dump_json` show asterisks, and
    the client scrubs it from every error message. Local servers (llama.cpp, vLLM) ignore it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(description="Endpoint root including the version, e.g. http://127.0.0.1:8080/v1")
    model: str = Field(min_length=1, description="Model name sent with every request; part of the cache key")
    api_key: SecretStr = Field(default=SecretStr("no-key-needed"))
    max_concurrency: int = Field(default=64, ge=1, le=10_000, description="Requests in flight at once")
    requests_per_minute: float | None = Field(default=None, gt=0, description="None: unlimited")
    tokens_per_minute: float | None = Field(
        default=None, gt=0, description="Prompt + completion tokens; None: unlimited"
    )
    timeout_s: float = Field(default=120.0, gt=0, description="Whole-request deadline, per attempt")
    max_retries: int = Field(default=4, ge=0, description="Retries after the first attempt")
    backoff_base_s: float = Field(default=0.5, ge=0, description="First backoff; doubles per retry")
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_retry_after_s: float = Field(
        default=120.0,
        ge=0,
        description="A longer Retry-After ends the call as rate_limited instead of waiting",
    )
    structured_output: StructuredMode = Field(
        default="json_schema",
        description="How an output model is requested: json_schema (OpenAI, vLLM, llama.cpp's C++ "
        "server), json_object_schema (llama-cpp-python's server, the embedded one), json_object, or "
        "prompt (send nothing; the prompt asks for JSON). See structured.response_format_for",
    )
    default_max_tokens: int = Field(default=1024, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")


__all__ = ["LLMConfig"]
