"""Hydra overrides for GRPO training of a generative reward model with verl 0.9.1.

`grpo_overrides(config)` turns one pydantic config into the `key=value` arguments of
`python -m verl.trainer.main_ppo`. Key paths are the ones of verl 0.9.1's ppo_trainer config; in
0.9.1 the custom reward function lives under `reward.custom_reward_function.{path,name}` (the old
top-level `custom_reward_function` is only a legacy alias). `tests/test_verl_config.py` composes
the config with the real verl (`--cfg job`) to prove every key exists and every value lands.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VERL_VERSION = "0.9.1"
REWARD_FUNCTION_FILE = Path(__file__).resolve().parent / "verl_reward.py"

_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_./:+-]+$")


class VerlGRPOConfig(BaseModel):
    """Every knob of our GRPO run, with defaults sized for one GPU and a ~0.5-1.5B instruct model."""

    model_config = ConfigDict(extra="forbid")

    model_path: str = Field(
        description="HF model folder (or hub id, where a hub is reachable) of the policy."
    )
    train_files: list[str] = Field(min_length=1, description="Parquet files from training.verl_export.")
    val_files: list[str] = Field(min_length=1)
    output_dir: str = Field(
        description="trainer.default_local_dir: verl's checkpoints (global_step_N/actor)."
    )
    project_name: str = "rmforge"
    experiment_name: str = "grm_grpo"

    rollout_name: Literal["vllm", "sglang", "trtllm"] = "vllm"
    rollout_n: int = Field(8, ge=2, description="Responses per prompt: GRPO's group size.")
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    tensor_model_parallel_size: int = Field(1, ge=1)

    n_gpus_per_node: int = Field(1, ge=1)
    nnodes: int = Field(1, ge=1)
    total_epochs: int = Field(1, ge=1)
    total_training_steps: int | None = Field(None, ge=1, description="Stop early (None: all epochs).")
    save_freq: int = Field(-1, description="Checkpoint every N steps (-1: only at the end).")
    test_freq: int = Field(-1, description="Validate every N steps (-1: never during training).")
    val_before_train: bool = False

    train_batch_size: int = Field(32, ge=1, description="Prompts per step.")
    max_prompt_length: int = Field(1024, ge=16)
    max_response_length: int = Field(512, ge=16)
    learning_rate: float = Field(1e-6, gt=0)
    ppo_mini_batch_size: int = Field(16, ge=1)
    micro_batch_size_per_gpu: int = Field(4, ge=1)
    use_kl_loss: bool = True
    kl_loss_coef: float = Field(0.001, ge=0)
    entropy_coeff: float = Field(0.0, ge=0)

    reward_function_path: str = str(REWARD_FUNCTION_FILE)
    reward_function_name: str = "compute_score"
    extra_overrides: list[str] = Field(default_factory=list, description="Appended last: they win.")


def hydra_value(value: object) -> str:
    """A value in Hydra's override grammar: bools lower-case, lists bracketed, odd strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(item) for item in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN_VALUE.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def grpo_settings(config: VerlGRPOConfig) -> dict[str, object]:
    """The config as {verl key path: value}, in the order they are passed."""
    c = config
    return {
        "algorithm.adv_estimator": "grpo",
        "algorithm.use_kl_in_reward": False,
        "data.train_files": c.train_files,
        "data.val_files": c.val_files,
        "data.train_batch_size": c.train_batch_size,
        "data.max_prompt_length": c.max_prompt_length,
        "data.max_response_length": c.max_response_length,
        "data.filter_overlong_prompts": True,
        "data.truncation": "error",
        "actor_rollout_ref.model.path": c.model_path,
        "actor_rollout_ref.actor.optim.lr": c.learning_rate,
        "actor_rollout_ref.actor.ppo_mini_batch_size": c.ppo_mini_batch_size,
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": c.micro_batch_size_per_gpu,
        "actor_rollout_ref.actor.use_kl_loss": c.use_kl_loss,
        "actor_rollout_ref.actor.kl_loss_coef": c.kl_loss_coef,
        "actor_rollout_ref.actor.entropy_coeff": c.entropy_coeff,
        "actor_rollout_ref.rollout.name": c.rollout_name,
        "actor_rollout_ref.rollout.n": c.rollout_n,
        "actor_rollout_ref.rollout.gpu_memory_utilization": c.gpu_memory_utilization,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": c.tensor_model_parallel_size,
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": c.micro_batch_size_per_gpu,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": c.micro_batch_size_per_gpu,
        "reward.custom_reward_function.path": c.reward_function_path,
        "reward.custom_reward_function.name": c.reward_function_name,
        "trainer.n_gpus_per_node": c.n_gpus_per_node,
        "trainer.nnodes": c.nnodes,
        "trainer.total_epochs": c.total_epochs,
        "trainer.total_training_steps": c.total_training_steps,
        "trainer.save_freq": c.save_freq,
        "trainer.test_freq": c.test_freq,
        "trainer.val_before_train": c.val_before_train,
        "trainer.default_local_dir": c.output_dir,
        "trainer.project_name": c.project_name,
        "trainer.experiment_name": c.experiment_name,
        "trainer.logger": ["console", "file"],
    }


def grpo_overrides(config: VerlGRPOConfig) -> list[str]:
    """`key=value` arguments for `python -m verl.trainer.main_ppo`; config.extra_overrides come last."""
    return [f"{key}={hydra_value(value)}" for key, value in grpo_settings(config).items()] + list(
        config.extra_overrides
    )
