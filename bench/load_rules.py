"""Load: one TRL partition of up to 20,000 samples scored end to end with rules only, peak memory and time.

    .venv/bin/python bench/load_rules.py [--sizes 2000,5000,10000,20000] [--workdir DIR]

For every size N, a fresh child process (so peak RSS is that size's alone):

1. writes N/2 TRL rows (conversational prompt, chosen, rejected) to a local jsonl file, made from
   the bundled HH-RLHF harmless pairs, each copy's last user turn tagged with its copy number so
   every row is distinct (a repeated row would be quarantined as a duplicate); each row becomes an
   A/B-swapped pair, so N samples;
2. registers it in a datasets file as partition `load` (format trl) and materializes, through the
   real assets and resources (`dg.materialize`, in process, a DuckDB file, no LLM and no Ray),
   `raw_rows`, then `converted_samples`, then `rule_scores` (every registered rule reward: the
   rules-only path, what `rmforge run --skip-llm` runs for the data stage);
3. reports wall time and peak RSS per asset (a thread samples the process RSS every 20 ms), the
   RSS after imports, the row counts landed in DuckDB, and the size of the jsonl file.

The parent prints one table row per size, the load average at start and end, and how much each
stage's peak RSS grows per 1,000 more samples: with memory that is the rows' own, that is the
rows' size in memory (the jsonl file is ~0.5 MB per 1,000 samples), not a per-row overhead of
objects on top of them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

PARTITION = "load"


def write_rows(path: Path, n_samples: int) -> int:
    """N/2 distinct TRL rows from the bundled HH-RLHF harmless pairs; returns the row count."""
    from rm_resources.datasets import DatasetSourceResource
    from rm_rewards.datasets.convert import convert_rows

    source = DatasetSourceResource(mode="bundled")
    samples = convert_rows("hh_rlhf_harmless", source.load_rows("hh_rlhf_harmless"), format="hh_rlhf").samples
    pairs = [s for s in samples if not s.metadata.get("swapped")]
    n_rows = n_samples // 2
    with open(path, "w", encoding="utf-8") as handle:
        for k in range(n_rows):
            pair = pairs[k % len(pairs)]
            turns = [{"role": m.role, "content": m.content} for m in pair.input]
            copy = k // len(pairs)
            if copy:
                turns[-1] = {**turns[-1], "content": f"{turns[-1]['content']} (variant {copy})"}
            row = {"prompt": turns, "chosen": pair.responses[0].text, "rejected": pair.responses[1].text}
            handle.write(json.dumps(row) + "\n")
    return n_rows


class PeakRss:
    """Samples this process's RSS every `interval_s` in a thread; `peak()` since the last reset."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval_s
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def reset(self) -> None:
        self._peak = self._process.memory_info().rss

    def peak(self) -> int:
        return max(self._peak, self._process.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def child(n_samples: int, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "load.jsonl"
    datasets_file = workdir / "datasets.yaml"
    datasets_file.write_text(
        f"datasets:\n  {PARTITION}:\n    format: trl\n    path: {data.name}\nbundled_defaults: false\n",
        encoding="utf-8",
    )
    # Written before the definitions import: the partition set is read from the datasets file then.
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n", encoding="utf-8")
    os.environ["RMFORGE_DATASETS_FILE"] = str(datasets_file)

    import resource

    import dagster as dg

    from rm_assets.data.assets import converted_samples, raw_rows, rule_scores
    from rm_resources.datasets import DatasetSourceResource
    from rm_resources.ray_cluster import RayClusterResource
    from rm_resources.store import Store
    from rm_resources.warehouse import WarehouseResource

    n_rows = write_rows(data, n_samples)
    database = workdir / "load.duckdb"
    resources = {
        "datasets": DatasetSourceResource(),
        "warehouse": WarehouseResource(database=str(database)),
        "ray": RayClusterResource(),  # no address: scoring in process
    }
    sampler = PeakRss()
    baseline = sampler.peak()
    stages = {}
    with dg.instance_for_test() as instance:
        for asset in (raw_rows, converted_samples, rule_scores):
            sampler.reset()
            start = time.perf_counter()
            result = dg.materialize([asset], resources=resources, partition_key=PARTITION, instance=instance)
            assert result.success, asset.key
            stages[asset.key.to_user_string()] = {
                "wall_s": round(time.perf_counter() - start, 2),
                "peak_rss_mb": round(sampler.peak() / 2**20, 1),
            }
    sampler.stop()
    store = Store(str(database))
    counts = {table: store.row_count(table, PARTITION) for table in ("raw_rows", "converted_samples", "rule_scores")}
    quarantined = store.row_count("quarantine", PARTITION)
    return {
        "samples": n_samples,
        "rows": n_rows,
        "file_mb": round(data.stat().st_size / 2**20, 1),
        "baseline_rss_mb": round(baseline / 2**20, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stages": stages,
        "counts": counts,
        "quarantined": quarantined,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,5000,10000,20000")
    parser.add_argument("--workdir", default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, Path(args.workdir))))
        return

    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.workdir or scratch)
        for size in (int(s) for s in args.sizes.split(",")):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--workdir", str(root / f"n{size}")],
                capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            if out.returncode != 0:
                sys.exit(f"size {size} failed:\n{out.stderr[-4000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    load_end = os.getloadavg()

    print(f"\nload average at start {load_start[0]:.2f}, at end {load_end[0]:.2f}\n")
    print("| samples | rule score rows | file MB | RSS after imports MB | peak RSS MB: raw / converted / rules "
          "| growth per 1,000 more samples, MB: raw / converted / rules | wall s: raw / converted / rules |")
    print("| ---: | ---: | ---: | ---: | --- | --- | --- |")
    previous = None
    for row in rows:
        stages = list(row["stages"].values())
        peaks = [s["peak_rss_mb"] for s in stages]
        if previous is None:
            growth = "–"
        else:
            more = (row["samples"] - previous["samples"]) / 1000
            before = [s["peak_rss_mb"] for s in previous["stages"].values()]
            growth = " / ".join(f"{(now - then) / more:.1f}" for now, then in zip(peaks, before))
        walls = " / ".join(f"{s['wall_s']:.1f}" for s in stages)
        print(
            f"| {row['samples']:,} | {row['counts']['rule_scores']:,} | {row['file_mb']} "
            f"| {row['baseline_rss_mb']:.0f} | {' / '.join(f'{p:.0f}' for p in peaks)} | {growth} | {walls} |"
        )
        previous = row

if __name__ == "__main__":
    main()
