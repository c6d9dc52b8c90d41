"""Best-of-N: keep the top n responses of a sample by any reward (rule or LLM judge)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from rm_rewards.core.kinds import Reward
from rm_rewards.core.schema import RewardResult, Sample


class BestOfN(BaseModel):
    sample_id: str
    selected: list[int]  # response indices, best first
    scores: list[float | None]
    error: str | None = None


def select_best(result: RewardResult, n: int = 1) -> BestOfN:
    """The n best-scored responses; responses whose scoring failed are never selected.

    Ties keep the earlier response first, so the choice is deterministic.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    scores = result.values()
    if result.error:
        return BestOfN(sample_id=result.sample_id, selected=[], scores=scores, error=result.error)
    scored = [(s, i) for i, s in enumerate(scores) if s is not None]
    if not scored:
        errors = "; ".join(s.error or "" for s in result.scores)
        return BestOfN(sample_id=result.sample_id, selected=[], scores=scores, error=f"no response scored: {errors}")
    ranked = sorted(scored, key=lambda pair: (-pair[0], pair[1]))
    return BestOfN(sample_id=result.sample_id, selected=[i for _, i in ranked[:n]], scores=scores)


def best_of_n(reward: Reward, samples: Sequence[Sample], n: int = 1) -> list[BestOfN]:
    return [select_best(r, n) for r in reward.evaluate_batch(samples)]


async def abest_of_n(reward: Reward, samples: Sequence[Sample], n: int = 1) -> list[BestOfN]:
    return [select_best(r, n) for r in await reward.aevaluate_batch(samples)]
