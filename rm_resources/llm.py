"""The LLM client as a Dagster resource: one OpenAI-compatible endpoint, shared cache and limits.

Locally `rmforge run` / `rmforge ui` start the embedded llama.cpp server and export its URL in
`RMFORGE_LLM_BASE_URL`; in production the same variables point at any OpenAI-compatible endpoint.
The API key is only ever read from the environment (`dg.EnvVar`) and stays a `SecretStr`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from rm_resources.warehouse import default_data_dir


def default_cache_path() -> str:
    return str(default_data_dir() / "llm_cache.sqlite")


class LLMClientResource(dg.ConfigurableResource):
    """Endpoint, model and limits for every LLM-calling asset."""

    base_url: str | None = Field(default=None, description="OpenAI-compatible root incl. /v1; env RMFORGE_LLM_BASE_URL")
    model: str | None = Field(default=None, description="Model name; env RMFORGE_LLM_MODEL")
    api_key: str | None = Field(default=None, description="Secret; set through dg.EnvVar only")
    max_concurrency: int = 64
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 120.0
    max_retries: int = 4
    structured_output: str = "json_schema"
    cache_path: str | None = Field(default=None, description="SQLite response cache; '' disables it")

    _client: Any = PrivateAttr(default=None)

    def _config(self):
        from rm_rewards.llm import LLMConfig

        base_url = self.base_url or os.environ.get("RMFORGE_LLM_BASE_URL")
        model = self.model or os.environ.get("RMFORGE_LLM_MODEL")
        if not base_url or not model:
            raise RuntimeError(
                "no LLM endpoint configured: set RMFORGE_LLM_BASE_URL and RMFORGE_LLM_MODEL "
                "(`rmforge run` and `rmforge ui` start the embedded llama.cpp server and set them)"
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
            from rm_rewards.llm import LLMClient, ResponseCache

            path = default_cache_path() if self.cache_path is None else self.cache_path
            cache = None
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                cache = ResponseCache(path)
            self._client = LLMClient(self._config(), cache)
        return self._client

    def describe(self) -> str:
        config = self._config()
        return f"{config.model} at {config.base_url}"
