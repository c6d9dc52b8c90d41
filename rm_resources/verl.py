"""verl as a Dagster resource: GRPO training of generative reward models, run in verl's own venv.

verl cannot share a venv with Dagster (its hydra pins antlr4 4.9; Dagster needs 4.13), so the
asset starts `training/verl_pipes_entry.py` with the verl venv's interpreter through Dagster Pipes;
progress and final metrics come back as Pipes logs and the materialization. verl needs GPUs.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from rm_resources.config_fields import model_fields_base
from training.verl_config import VerlGRPOConfig

PIPES_ENTRY = Path(__file__).resolve().parent.parent / "training" / "verl_pipes_entry.py"

# Facts of the machine rather than of a run: the resource sets them on every run's VerlGRPOConfig.
DEPLOYMENT_FIELDS = frozenset({"n_gpus_per_node", "nnodes", "rollout_name"})


class VerlTrainerResource(model_fields_base(VerlGRPOConfig, dg.ConfigurableResource, only=DEPLOYMENT_FIELDS)):
    """Where verl runs: DEPLOYMENT_FIELDS (VerlGRPOConfig's own fields and defaults), its venv, and
    how often progress is forwarded."""

    venv: str | None = Field(default=None, description="verl venv (RMFORGE_VERL_VENV); default .venvs/verl")
    poll_s: float = Field(default=5.0, description="How often trainer metrics are forwarded to Dagster")
    # Overrides for dry runs and tests: another interpreter, or a stand-in for main_ppo.
    python: str | None = None
    trainer_command: list[str] | None = None

    def deployed(self, config: VerlGRPOConfig) -> VerlGRPOConfig:
        """`config` with this deployment's DEPLOYMENT_FIELDS."""
        return config.model_copy(update={name: getattr(self, name) for name in DEPLOYMENT_FIELDS})

    def train(self, context: dg.AssetExecutionContext, config: VerlGRPOConfig) -> dg.MaterializeResult:
        """Run `verl.trainer.main_ppo` for `config` on this deployment and return what it reported."""
        from training.verl_launch import verl_command, verl_env, verl_metrics_path, verl_python

        python = self.python or str(verl_python(self.venv))
        config = self.deployed(config)
        command = self.trainer_command or verl_command(config, python)
        client = dg.PipesSubprocessClient(env=verl_env(config, {}))
        invocation = client.run(
            context=context,
            command=[python, str(PIPES_ENTRY)],
            extras={
                "command": command,
                "metrics_path": str(verl_metrics_path(config).resolve()),
                "output_dir": str(Path(config.output_dir).resolve()),
                "poll_s": self.poll_s,
            },
        )
        return invocation.get_materialize_result()
