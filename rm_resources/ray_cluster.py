"""Ray as a Dagster resource: a small local Ray by default, a cluster address in production.

It runs reward-model training (`train_reward_model`) and, by its `scoring` mode, the scoring of
`rule_scores` and `llm_scores` (`score_rules`, `judge`; see rm_resources.ray_scoring): in the step
process, or as Ray tasks with the same score rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import dagster as dg
from pydantic import Field


class RayClusterResource(dg.ConfigurableResource):
    """Where reward-model training and scoring run. `address=None` starts a local Ray inside the
    step process (2 CPUs, no dashboard, a capped object store); `use_ray=False` trains in the step
    process itself.

    `scoring`: `in_process` scores in the step process; `ray` scores as Ray tasks (on the cluster
    at the address, else on a local Ray started for the call); `auto` (the default) is `ray` when
    an address is configured and `in_process` otherwise, so the local profile scores in process."""

    address: str | None = Field(default=None, description="ray://host:10001 or 'auto' (RMFORGE_RAY_ADDRESS)")
    use_ray: bool = True
    num_workers: int = Field(default=1, ge=1, description="Train workers (at most 2 on a 2-core machine)")
    use_gpu: bool = False
    max_failures: int = Field(default=1, ge=0, description="Worker failures Ray Train recovers from")
    scoring: Literal["auto", "in_process", "ray"] = Field(
        default="auto", description="Where rule_scores and llm_scores score: auto = ray iff an address is set"
    )
    scoring_workers: int = Field(
        default=2, ge=1, description="Scoring tasks at once (1 CPU each); LLM limits are split between them"
    )
    scoring_batch_size: int = Field(
        default=500, ge=1, description="Samples per rule-scoring batch (in process) or Ray task"
    )

    def resolved_address(self) -> str | None:
        return self.address or None

    def scoring_target(self):
        """A `RayScoring` when scores are computed on Ray, None when in the step process."""
        from rm_resources.ray_scoring import RayScoring

        on_ray = self.scoring == "ray" or (self.scoring == "auto" and self.resolved_address() is not None)
        if not on_ray:
            return None
        return RayScoring(address=self.resolved_address(), workers=self.scoring_workers,
                          batch_size=self.scoring_batch_size)

    def describe_scoring(self) -> str:
        target = self.scoring_target()
        return "in process" if target is None else target.describe()

    def score_rules(self, samples: Sequence, rewards: Sequence) -> list:
        """Every applicable rule reward on every sample (rm_rewards.core.apply.apply_rewards' order)."""
        from rm_resources.ray_scoring import score_rules

        return score_rules(samples, rewards, on_ray=self.scoring_target())

    def score_rules_batches(self, sample_batches, rewards: Sequence):
        """(samples, results) batch by batch, in process or on Ray (ray_scoring.score_rules_batches)."""
        from rm_resources.ray_scoring import score_rules_batches

        return score_rules_batches(sample_batches, rewards, on_ray=self.scoring_target())

    def judge(self, samples: Sequence, client, principles: dict):
        """The principle judges on every sample → `rm_resources.ray_scoring.JudgeRun`."""
        from rm_resources.ray_scoring import judge

        return judge(samples, client, principles, on_ray=self.scoring_target())

    def train_reward_model(self, config, samples: Sequence, run_name: str):
        """Train a Bradley-Terry RM (training.bt_trainer) and return its TrainResult."""
        from training.bt_trainer import train
        from training.ray_launch import train_with_ray

        if not self.use_ray:
            return train(config, samples, device="cuda" if self.use_gpu else "cpu")
        return train_with_ray(
            config,
            samples,
            num_workers=self.num_workers,
            use_gpu=self.use_gpu,
            address=self.resolved_address(),
            max_failures=self.max_failures,
            run_name=run_name,
        )
