"""Shared pytest fixtures. Keep each group under its own heading, with the fixtures it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

# --- fake OpenAI-compatible server (tests/support/fake_openai.py) ---------------------------------------

# A key nobody would type by accident: a test that finds it in output has found a leak.
CANARY_API_KEY = "sk-canary-7f3b9c1d-do-not-leak-0e5a"


@pytest.fixture(scope="session")
def _threaded_fake_openai() -> Iterator[Any]:
    from tests.support.fake_openai import ThreadedFakeOpenAI

    with ThreadedFakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(_threaded_fake_openai: Any) -> Any:
    """The in-process fake server, reset: empty script and records, no latency, echo default."""
    _threaded_fake_openai.reset()
    _threaded_fake_openai.set_latency(0.0)
    return _threaded_fake_openai


@pytest.fixture(scope="session")
def _process_fake_openai() -> Iterator[Any]:
    from tests.support.fake_openai import ProcessFakeOpenAI

    with ProcessFakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai_process(_process_fake_openai: Any) -> Any:
    """The fake server in a subprocess (realistic throughput), reset like `fake_openai`."""
    _process_fake_openai.reset()
    _process_fake_openai.set_latency(0.0)
    return _process_fake_openai


@pytest.fixture
def llm_config() -> Callable[..., Any]:
    """`llm_config(server, **overrides)`: an LLMConfig for the fake server with test-speed defaults
    (short timeout, millisecond backoff) and the canary key."""
    from rm_rewards.llm.config import LLMConfig

    def make(server: Any, **overrides: Any) -> LLMConfig:
        settings: dict[str, Any] = {
            "base_url": server.base_url,
            "model": "fake-model",
            "api_key": CANARY_API_KEY,
            "timeout_s": 2.0,
            "max_retries": 3,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
        }
        settings.update(overrides)
        return LLMConfig(**settings)

    return make
