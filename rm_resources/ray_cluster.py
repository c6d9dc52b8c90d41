"""Ray as a Dagster resource: a small local Ray by default, a cluster address in production."""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg
from pydantic import Field


class RayClusterResource(dg.ConfigurableResource):
    """Where reward-model training runs. `address=None` starts a local Ray inside the step process
    (2 CPUs, no dashboard, a capped object store); `use_ray=False` trains in the step process itself."""

    address: str | None = Field(default=None, description="ray://host:10001 or 'auto'; env RMFORGE_RAY_ADDRESS")
    use_ray: bool = True
    num_workers: int = Field(default=1, ge=1, description="Train workers (at most 2 on a 2-core machine)")
    use_gpu: bool = False
    max_failures: int = Field(default=1, ge=0, description="Worker failures Ray Train recovers from")

    def resolved_address(self) -> str | None:
        return self.address or os.environ.get("RMFORGE_RAY_ADDRESS") or None

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
