"""Counting what an LLM client did: calls, cache hits, HTTP requests, retries, failures, tokens.

`UsageStats` is live and thread-safe (one client may serve several event loops); `snapshot()`
freezes it into a `UsageSnapshot`, and snapshots subtract, so a Dagster asset can report exactly
its own share of a shared client:

    before = client.stats.snapshot()
    ... score the partition ...
    context.add_output_metadata((client.stats.snapshot() - before).as_metadata())
"""

from __future__ import annotations

import threading
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from rm_rewards.llm.errors import ErrorReason


class UsageSnapshot(BaseModel):
    """Counters at one moment. `calls` = `cache_hits` + `cache_misses`; `requests` counts HTTP
    requests (first attempts and retries); `failures` counts calls that ended in an error, by
    reason in `failures_by_reason`; tokens are those the server reported for uncached calls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    requests: int = 0
    retries: int = 0
    failures: int = 0
    failures_by_reason: dict[str, int] = Field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.calls if self.calls else 0.0

    def __sub__(self, other: UsageSnapshot) -> UsageSnapshot:
        reasons = Counter(self.failures_by_reason)
        reasons.subtract(other.failures_by_reason)
        counts = {name: getattr(self, name) - getattr(other, name) for name in _COUNTERS}
        return UsageSnapshot(**counts, failures_by_reason={k: v for k, v in reasons.items() if v})

    def as_metadata(self, prefix: str = "llm_") -> dict[str, int | float]:
        """Flat numbers for Dagster output metadata or a report table."""
        flat: dict[str, int | float] = {f"{prefix}{name}": getattr(self, name) for name in _COUNTERS}
        flat[f"{prefix}total_tokens"] = self.total_tokens
        flat[f"{prefix}cache_hit_rate"] = round(self.cache_hit_rate, 4)
        for reason, count in sorted(self.failures_by_reason.items()):
            flat[f"{prefix}failures_{reason}"] = count
        return flat


_COUNTERS = (
    "calls",
    "cache_hits",
    "cache_misses",
    "requests",
    "retries",
    "failures",
    "prompt_tokens",
    "completion_tokens",
)
_COUNTER_NAMES = frozenset(_COUNTERS)


class UsageStats:
    """Live counters, updated by the client; read them through `snapshot()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()

    def add(self, **increments: int) -> None:
        if not _COUNTER_NAMES.issuperset(increments):  # called a few times per request: kept cheap
            raise ValueError(f"unknown usage counters: {sorted(set(increments) - _COUNTER_NAMES)}")
        with self._lock:
            counts = self._counts
            for name, value in increments.items():
                counts[name] += value

    def add_failure(self, reason: ErrorReason) -> None:
        with self._lock:
            self._counts["failures"] += 1
            self._reasons[reason] += 1

    def _frozen(self) -> UsageSnapshot:  # caller holds the lock
        counts = {name: self._counts[name] for name in _COUNTERS}
        return UsageSnapshot(**counts, failures_by_reason=dict(self._reasons))

    def snapshot(self) -> UsageSnapshot:
        with self._lock:
            return self._frozen()

    def reset(self) -> UsageSnapshot:
        """Zero every counter; returns what they were."""
        with self._lock:
            before = self._frozen()
            self._counts.clear()
            self._reasons.clear()
        return before

    def __repr__(self) -> str:
        return f"UsageStats({self.snapshot()!r})"


__all__ = ["UsageSnapshot", "UsageStats"]
