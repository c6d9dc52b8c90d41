"""Compositions of rewards: a weighted average, and a router that picks a reward per sample.

Both are pointwise-shaped (a score per response) whatever their children are, and both refuse to
invent a score: if a child fails on a response, that response carries the child's error.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import ClassVar

from pydantic import Field, model_validator

from rm_rewards.core.kinds import Reward, RewardKind, error_score
from rm_rewards.core.schema import DimensionScore, ResponseScore, RewardResult, Sample


def _composite_version(reward: Reward, parts: list[str]) -> str:
    """Version of a composition: its own code version plus each child's name and version.

    The default (a dump of the fields) cannot see a child's parameters, because pydantic
    serialises a `Reward`-typed field by the base class, which has no fields: two compositions
    of different children would share a version and so collide in the score tables.
    """
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]
    return f"{reward.code_version}-{digest}"


class WeightedReward(Reward):
    """Σ wᵢ·scoreᵢ / Σ wᵢ per response; each child's score is kept as a dimension."""

    kind: ClassVar[RewardKind] = "pointwise"
    rewards: list[Reward]
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _check(self) -> WeightedReward:
        if not self.rewards:
            raise ValueError("WeightedReward needs at least one reward")
        if self.weights is not None:
            if len(self.weights) != len(self.rewards):
                raise ValueError(f"{len(self.weights)} weights for {len(self.rewards)} rewards")
            if sum(self.weights) <= 0 or any(w < 0 for w in self.weights):
                raise ValueError("weights must be non-negative with a positive sum")
        return self

    @property
    def is_async(self) -> bool:
        return any(r.is_async for r in self.rewards)

    @property
    def version(self) -> str:
        parts = [f"{r.name}={r.version}" for r in self.rewards] + [repr(self.weights)]
        return _composite_version(self, parts)

    def applies_to(self, sample: Sample) -> bool:
        # Every child must apply: a child that cannot score the sample makes every response an error.
        return all(r.applies_to(sample) for r in self.rewards)

    def _weights(self) -> list[float]:
        return self.weights or [1.0] * len(self.rewards)

    def _combine(self, sample: Sample, results: list[RewardResult]) -> list[ResponseScore]:
        weights = self._weights()
        out = []
        for index in range(len(sample.responses)):
            total, dims, failures = 0.0, {}, []
            for reward, weight, result in zip(self.rewards, weights, results):
                if result.error:
                    failures.append(f"{reward.name}: {result.error}")
                    continue
                child = result.scores[index]
                if child.score is None:
                    failures.append(f"{reward.name}: {child.error}")
                    continue
                total += weight * child.score
                dims[reward.name] = DimensionScore(score=child.score, reason=child.reason)
            if failures:
                out.append(error_score("; ".join(failures)))
            else:
                out.append(ResponseScore(score=total / sum(weights), dimensions=dims))
        return out

    def _score(self, sample: Sample) -> list[ResponseScore]:
        return self._combine(sample, [r.evaluate(sample) for r in self.rewards])

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        results = await asyncio.gather(*(r.aevaluate(sample) for r in self.rewards))
        return self._combine(sample, list(results))


class RouterReward(Reward):
    """Sends each sample to one reward chosen by `route(sample)` (e.g. by task or source)."""

    kind: ClassVar[RewardKind] = "pointwise"
    routes: dict[str, Reward]
    route: Callable[[Sample], str] = Field(exclude=True)
    default: str | None = None

    @property
    def is_async(self) -> bool:
        return any(r.is_async for r in self.routes.values())

    @property
    def version(self) -> str:
        route_name = getattr(self.route, "__qualname__", type(self.route).__name__)
        parts = [f"{key}:{r.name}={r.version}" for key, r in sorted(self.routes.items())]
        return _composite_version(self, parts + [f"default={self.default}", f"route={route_name}"])

    def applies_to(self, sample: Sample) -> bool:
        try:
            return self._pick(sample).applies_to(sample)
        except Exception:  # noqa: BLE001 - an unroutable sample is reported by evaluate, not skipped
            return True

    def _pick(self, sample: Sample) -> Reward:
        key = self.route(sample)
        if key not in self.routes:
            if self.default is None:
                raise KeyError(f"no route {key!r} for sample {sample.id} (routes: {sorted(self.routes)})")
            key = self.default
        return self.routes[key]

    def _forward(self, result: RewardResult) -> list[ResponseScore]:
        if result.error:
            raise RuntimeError(f"{result.reward_name}: {result.error}")
        return result.scores

    def _score(self, sample: Sample) -> list[ResponseScore]:
        return self._forward(self._pick(sample).evaluate(sample))

    async def _ascore(self, sample: Sample) -> list[ResponseScore]:
        return self._forward(await self._pick(sample).aevaluate(sample))
