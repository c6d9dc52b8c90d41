"""The TRL side of bench/train_throughput.py; runs inside .venvs/trl only (bench/setup_trl_venv.sh).

    .venvs/trl/bin/python bench/trl_reward_peer.py --input pairs.jsonl --result trl.json \
        --model-path <all-MiniLM-L6-v2 dir> --steps 65 --batch-size 16 --max-length 128 --lr 3e-5

Reads the (prompt, chosen, rejected) texts written by bench/train_throughput.py, already rendered
with rmforge's `render_text` and listed in the order rmforge's trainer visits them, and trains
TRL's `RewardTrainer` on them for `--steps` optimizer steps, configured like rmforge's
BTTrainConfig defaults (see `reward_config`). Writes the wall and CPU clock at the end of every
optimizer step, the tokens TRL itself counted, peak RSS and the losses TRL logged, as JSON.
Never imported by rmforge.

Why the texts are tokenized here and not by TRL: TRL 1.16 tokenizes `prompt + chosen` without
truncation, drops pairs longer than `max_length` and appends the tokenizer's EOS token (this BERT
tokenizer has none, so that step fails). rmforge truncates from the left to `max_length`. To give
both trainers identical token sequences, this script tokenizes each text exactly as rmforge does
(left truncation, `max_length`, special tokens) and hands TRL the `chosen_ids` / `rejected_ids`
columns, TRL's documented input for pre-tokenized preference data; it then checks that TRL's
collator builds the same padded batch as rmforge's one `tokenizer(texts, padding=True)` call.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer, TrainerCallback  # noqa: E402
from trl import RewardConfig, RewardTrainer  # noqa: E402
from trl.trainer.reward_trainer import DataCollatorForPreference  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class StepClock(TrainerCallback):
    """Wall and CPU clock at the end of every optimizer step (after the optimizer and scheduler step)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003 - TrainerCallback API
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())


def load_tokenizer(model_path: str, max_length: int):  # noqa: ANN201 - a transformers tokenizer
    """Set up as rmforge's `load_model_and_tokenizer` does: truncate from the left at max_length."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.truncation_side = "left"
    tokenizer.model_max_length = max_length
    return tokenizer


def tokenized_dataset(rows: list[dict], tokenizer, max_length: int) -> Dataset:  # noqa: ANN001
    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]

    return Dataset.from_dict(
        {
            "chosen_ids": ids([row["prompt"] + row["chosen"] for row in rows]),
            "rejected_ids": ids([row["prompt"] + row["rejected"] for row in rows]),
        }
    )


def check_same_batch(rows: list[dict], dataset: Dataset, tokenizer, max_length: int, batch_size: int) -> None:  # noqa: ANN001
    """TRL's collated first batch must equal rmforge's batch encoding of the same texts."""
    texts = [row["prompt"] + row["chosen"] for row in rows[:batch_size]]
    texts += [row["prompt"] + row["rejected"] for row in rows[:batch_size]]
    ours = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    collated = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(
        [dataset[i] for i in range(batch_size)]
    )
    for key in ("input_ids", "attention_mask"):
        if not torch.equal(collated[key], ours[key]):
            raise SystemExit(f"TRL's collated {key} differs from rmforge's encoding of the same texts")


def reward_config(args: argparse.Namespace, output_dir: str) -> RewardConfig:
    """TRL set up to do the work rmforge's trainer does with its BTTrainConfig defaults.

    Changed from TRL's defaults because rmforge differs: fp32 (TRL: bf16), no gradient
    checkpointing (TRL: on), dropout kept (TRL disables it; rmforge trains with the backbone's
    dropout), constant learning rate (Trainer: linear decay), batches in the given order (rmforge's
    own seeded order, written by the caller), no checkpoints, no eval, no reporting integrations.
    Kept at TRL's defaults: its logging every 10 steps, its progress bar, its optimizer
    (`adamw_torch_fused`; rmforge uses `torch.optim.AdamW`, same algorithm), gradient clipping 1.0.
    """
    return RewardConfig(
        output_dir=output_dir,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.steps,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        disable_dropout=args.disable_dropout,
        max_length=args.max_length,
        center_rewards_coefficient=None,
        train_sampling_strategy="sequential",
        dataloader_num_workers=0,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=args.seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--disable-dropout", action="store_true", help="TRL's own default (off here: rmforge keeps dropout)"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rss_after_imports = peak_rss_mb()
    with open(args.input, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if len(rows) < args.steps * args.batch_size:
        raise SystemExit(f"{args.input}: {len(rows)} pairs, need {args.steps * args.batch_size}")
    tokenizer = load_tokenizer(args.model_path, args.max_length)
    dataset = tokenized_dataset(rows, tokenizer, args.max_length)
    check_same_batch(rows, dataset, tokenizer, args.max_length, args.batch_size)

    clock = StepClock()
    rss_before_training = peak_rss_mb()
    with tempfile.TemporaryDirectory() as output_dir:
        began = time.perf_counter()
        trainer = RewardTrainer(
            model=args.model_path,
            args=reward_config(args, output_dir),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[clock],
        )
        setup_s = time.perf_counter() - began
        train_began = (time.perf_counter(), time.process_time())
        trainer.train()
    result = {
        "trainer": "trl",
        "versions": {
            name: importlib.metadata.version(name) for name in ("trl", "transformers", "torch", "accelerate")
        },
        "threads": torch.get_num_threads(),
        "optimizer": type(
            trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer
        ).__name__,
        "optim": str(trainer.args.optim),
        "setup_s": setup_s,
        "train_start": {"wall": train_began[0], "cpu": train_began[1]},
        "step_wall": clock.wall,
        "step_cpu": clock.cpu,
        "tokens_counted_by_trainer": int(trainer._total_train_tokens),
        "losses": [row["loss"] for row in trainer.state.log_history if "loss" in row],
        "rss_after_imports_mb": rss_after_imports,
        "rss_before_training_mb": rss_before_training,
        "peak_rss_mb": peak_rss_mb(),
    }
    with open(args.result, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
