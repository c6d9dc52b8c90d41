"""Quality and speed of the default Bradley-Terry schedule on bundled HH-RLHF harmless pairs.

    .venv/bin/python bench/train_quality.py [--train-pairs 1500] [--eval-pairs 400] [--epochs 2]

Converts `rm_rewards/bundled_data/hh_rlhf/harmless-base_test.jsonl.gz` with the project's HH-RLHF
converter (A/B-swapped samples; `pairs_from_samples` folds the copies back), trains the default
backbone (all-MiniLM-L6-v2) with the default BTTrainConfig in this process, and reports held-out
pairwise accuracy before training (untrained backbone + random score head) and after every
epoch, training tokens/s and wall time. Writes a JSON summary to bench/out/train_quality.json.
(Speed against TRL's RewardTrainer on the same work: bench/train_throughput.py.)
Takes ~10 minutes on 2 free cores: run it alone.

Measured 2026-11-29 with the defaults (1,500 train / 400 held-out pairs, 9 of 2,312 rows
quarantined by the converter): held-out accuracy 51.5% untrained (random score head), 64.0%
after epoch 1, 67.0% after epoch 2; 461 and 744 training tokens/s, 1,145 s wall, on 2 cores
shared with other jobs (load average 3-10), so the speed is a floor (~1,700 tokens/s measured
on free cores for the same recipe).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

from rm_rewards.datasets.bundled import bundled_path
from rm_rewards.datasets.hh_rlhf import convert_hh_rlhf
from training.bt_trainer import train
from training.config import BTTrainConfig

OUT = Path(__file__).resolve().parent / "out"


def hh_harmless_samples(test_fraction: float):
    path = bundled_path("hh_rlhf", "harmless-base_test.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    result = convert_hh_rlhf("hh_rlhf_harmless", rows, test_fraction).collect()
    return rows, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-pairs", type=int, default=1500)
    parser.add_argument("--eval-pairs", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--output-dir", default=str(OUT / "bt_hh_harmless"))
    args = parser.parse_args()

    rows, converted = hh_harmless_samples(args.test_fraction)
    config = BTTrainConfig(
        epochs=args.epochs,
        max_train_pairs=args.train_pairs,
        max_eval_pairs=args.eval_pairs,
        output_dir=args.output_dir,
        log_every_steps=10,
    )
    began = time.perf_counter()
    result = train(config, converted.samples)
    epochs = [row for row in result.history if row["kind"] == "epoch"]
    evals = [row for row in result.history if row["kind"] == "eval"]
    summary = {
        "command": "bench/train_quality.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "rows_in_file": len(rows),
        "quarantined_rows": len(converted.quarantined),
        "train_pairs": result.train_pairs,
        "eval_pairs": result.eval_pairs,
        "config": config.model_dump(mode="json"),
        "eval_accuracy_by_epoch": {str(round(row["epoch"], 2)): row["eval_accuracy"] for row in evals},
        "untrained_eval_accuracy": result.baseline_eval_accuracy,
        "final_eval_accuracy": result.final_eval_accuracy,
        "train_tokens_per_s_by_epoch": [row.get("train_tokens_per_s") for row in epochs],
        "train_loss_by_epoch": [row.get("train_loss") for row in epochs],
        "wall_s": time.perf_counter() - began,
        "final_checkpoint": result.final_checkpoint,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "train_quality.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
