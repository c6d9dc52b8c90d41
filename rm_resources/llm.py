"""The LLM client as a Dagster resource: one OpenAI-compatible endpoint, shared cache and limits.

Every value is resource config, set by `dagster_project.settings.resources_for`: locally
`rmforge run` / `rmforge ui` start the embedded llama.cpp server and pass its URL as `base_url`; in
production `RMFORGE_LLM_BASE_URL` / `RMFORGE_LLM_MODEL` name any OpenAI-compatible endpoint. The API
key reaches the resource only as a `dg.EnvVar` (never in run config) and stays a `SecretStr`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from rm_resources.warehouse import default_data_dir


def default_cache_path() -> str:
    return str(default_data_dir() / "llm_cache.sqlite")


class LLMClientResource(dg.ConfigurableResource):
    """Endpoint, model and limits for every LLM-calling asset."""

    base_url: str | None = Field(default=None, description="OpenAI-compatible root incl. /v1 (RMFORGE_LLM_BASE_URL)")
    model: str | None = Field(default=None, description="Model name (RMFORGE_LLM_MODEL)")
    api_key: str | None = Field(default=None, description="Secret; set through dg.EnvVar only")
    max_concurrency: int = 64
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 120.0
    max_retries: int = 4
    structured_output: str = "json_schema"
    cache_path: str | None = Field(default=None, description="SQLite response cache; '' disables it")
    budget: Literal["small", "full"] = Field(
        default="small", description="Default item budgets of the LLM assets: small = a few items and one "
        "round (the embedded 135M model, local profile); full = every item (production)")

    _client: Any = PrivateAttr(default=None)

    def _config(self):
        from rm_rewards.llm.config import LLMConfig

        base_url, model = self.base_url, self.model
        if not base_url or not model:
            raise RuntimeError(
                "no LLM endpoint configured: set RMFORGE_LLM_BASE_URL and RMFORGE_LLM_MODEL "
                "(`rmforge run` and `rmforge ui` start the embedded llama.cpp server and pass its URL)"
            )
        settings: dict[str, Any] = dict(
            base_url=base_url,
            model=model,
            max_concurrency=self.max_concurrency,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            structured_output=self.structured_output,
        )
        if self.api_key:
            settings["api_key"] = self.api_key
        return LLMConfig(**settings)

    def get_client(self):
        """One client per step process; its stats count this process's calls and tokens."""
        if self._client is None:
            from rm_rewards.llm.cache import ResponseCache
            from rm_rewards.llm.client import LLMClient

            path = default_cache_path() if self.cache_path is None else self.cache_path
            cache = None
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                cache = ResponseCache(path)
            self._client = LLMClient(self._config(), cache)
        return self._client

    def items(self, requested: int | None, small: int) -> int | None:
        """How many items an LLM asset takes: `requested` when the run config sets it (0 = all), else
        `small` on the small budget and all (None) on the full one."""
        if requested is not None:
            return requested or None
        return small if self.budget == "small" else None

    def rounds(self, requested: int | None, small: int = 1, full: int = 3) -> int:
        """Rounds of an iterative LLM asset (principles, refinement): `requested`, else by the budget."""
        if requested is not None:
            return requested
        return small if self.budget == "small" else full

    def describe(self) -> str:
        config = self._config()
        return f"{config.model} at {config.base_url}"
