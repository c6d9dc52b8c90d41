"""Score many samples with many rewards: each reward sees only the samples it applies to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rm_rewards.core import registry
from rm_rewards.core.kinds import Reward
from rm_rewards.core.schema import RewardResult, Sample


def rule_rewards(exclude_tags: Sequence[str] = ()) -> list[Reward]:
    """A default-configured instance of every registered rule reward."""
    return [
        registry.get(spec.name)
        for spec in registry.specs(is_llm=False)
        if not set(spec.tags) & set(exclude_tags)
    ]


def apply_rewards(samples: Sequence[Sample], rewards: Sequence[Reward]) -> list[RewardResult]:
    """Every applicable (sample, reward) result, grouped by reward, samples in input order."""
    results: list[RewardResult] = []
    for reward in rewards:
        applicable = [s for s in samples if reward.applies_to(s)]
        if applicable:
            results.extend(reward.evaluate_batch(applicable))
    return results


def contiguous_batches(samples: Sequence[Sample], batch_size: int) -> list[list[Sample]]:
    """The samples cut into consecutive slices of at most `batch_size`, in input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [list(samples[start : start + batch_size]) for start in range(0, len(samples), batch_size)]


def merge_batch_results(
    rewards: Sequence[Reward], per_batch: Sequence[Sequence[RewardResult]]
) -> list[RewardResult]:
    """Results scored batch by batch (`contiguous_batches`, each batch scored like `apply_rewards`:
    grouped by reward in `rewards` order), back in the order `apply_rewards` gives for all the
    samples at once: grouped by reward, samples in input order.

    A stable sort by reward position does it, because every batch lists its results by reward and,
    within a reward, by sample, and the batches are consecutive. Reward names must be unique.
    """
    position = {reward.name: k for k, reward in enumerate(rewards)}
    if len(position) != len(rewards):
        raise ValueError("rewards must have unique names to merge batched results")
    return sorted((r for batch in per_batch for r in batch), key=lambda r: position[r.reward_name])


class ScoreSummary:
    """Per reward: samples scored, samples with any error, mean of the scores that exist; added to
    batch by batch (`add`, or `counting` on a stream of (samples, results) batches), read with
    `as_dict`; `n_samples` counts the samples that `counting` saw."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, float]] = {}
        self.n_samples = 0

    def add(self, results: Iterable[RewardResult]) -> None:
        for result in results:
            entry = self._entries.setdefault(result.reward_name, {"samples": 0, "errors": 0, "_sum": 0.0, "_n": 0})
            entry["samples"] += 1
            entry["errors"] += 0 if result.ok else 1
            for value in result.values():
                if value is not None:
                    entry["_sum"] += value
                    entry["_n"] += 1

    def counting(
        self, scored: Iterable[tuple[Sequence[Sample], Sequence[RewardResult]]]
    ) -> Iterator[tuple[Sequence[Sample], Sequence[RewardResult]]]:
        """The (samples, results) batches unchanged, each added to the summary as it passes."""
        for samples, results in scored:
            self.n_samples += len(samples)
            self.add(results)
            yield samples, results

    def as_dict(self) -> dict[str, dict[str, float]]:
        summary = {}
        for name, entry in self._entries.items():
            n, total = entry["_n"], entry["_sum"]
            summary[name] = {
                "samples": entry["samples"],
                "errors": entry["errors"],
                "mean_score": round(total / n, 4) if n else float("nan"),
            }
        return summary


def summarize(results: Sequence[RewardResult]) -> dict[str, dict[str, float]]:
    """Per reward: samples scored, samples with any error, mean of the scores that exist."""
    summary = ScoreSummary()
    summary.add(results)
    return summary.as_dict()
