"""Reward-model training, plain Python (no Dagster): Samples in, checkpoints and metrics out.

- `training.config.BTTrainConfig`: every knob of the Bradley-Terry trainer, with defaults.
- `training.data`: `pairs_from_samples` (pairwise Samples → deduplicated (context, chosen, rejected)),
  `pairs_from_training_records` (curated `rm_rewards.curation.curate` records → the kept and flagged pairs),
  `render_text` (the one text template), `load_samples` (.jsonl / .jsonl.gz / .parquet).
- `training.bt_trainer`: `train(config, samples_or_paths)` in-process; `run_bt_training` (the shared
  loop); checkpoints load with plain transformers.
- `training.bt_scoring`: `score_texts` / `score_with_checkpoint` (batched, no grad) for benchmarks and rewards.
- `training.ray_launch.train_with_ray`: the same loop under Ray Train (TorchTrainer), resumable.
- `training.verl_export` / `verl_reward` / `verl_config` / `verl_launch`: GRPO training of a
  generative judge with verl 0.9.1, run in its own venv (`bash training/setup_verl_venv.sh`).
- `tests.support.tiny`: tiny random backbones and a toy preference set for fast tests.

Heavy imports (torch, transformers, ray) happen inside these modules, never in this package root.
"""
