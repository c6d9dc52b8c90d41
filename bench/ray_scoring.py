"""Rule scoring of one partition: in process vs Ray tasks with 1 and 2 workers, in the same run.

    .venv/bin/python bench/ray_scoring.py [--partition hh_rlhf_harmless] [--repeat 3] [--batch-size 500]
                                          [--copies 1]

Loads the partition's bundled rows and converts them as `converted_samples` does (`--copies N`
repeats the samples N times under new ids, for more work per run), then times every registered
rule reward over all samples three ways, each `--repeat` times in turn:

- in process: `rm_rewards.core.apply.apply_rewards` (what `rule_scores` runs by default);
- Ray, 1 worker and 2 workers: `rm_resources.ray_scoring.score_rules` on one local Ray
  (2 CPUs, no dashboard, 200 MB object store; started once, its start-up timed apart), batches of
  `--batch-size` samples, at most that many workers' tasks in flight.

The first Ray run of each width includes starting its worker processes and their imports; the
best run is the steady state. Every Ray run's results must equal the in-process results (the run
stops otherwise). Prints samples/s and score rows/s per mode, the CPU seconds of the whole
process tree (this process, Ray's daemons and workers, math_verify's pools) and how many cores
that kept busy, the 2-worker / 1-worker scaling ratio, Ray vs in process, and the load average
before and after (other work on the same cores changes every wall-clock figure).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from rm_resources.datasets import DatasetSourceResource  # noqa: E402
from rm_resources.ray_scoring import RayScoring, score_rules  # noqa: E402
from rm_rewards.core.apply import apply_rewards, rule_rewards  # noqa: E402
from rm_rewards.core.schema import Sample  # noqa: E402
from rm_rewards.datasets.convert import convert_rows  # noqa: E402
from tests.support.measure import process_tree_cpu_s  # noqa: E402
from training.ray_local import LOCAL_OBJECT_STORE_BYTES  # noqa: E402


def partition_samples(dataset: str, copies: int) -> list[Sample]:
    source = DatasetSourceResource(mode="bundled")
    samples = convert_rows(dataset, source.load_rows(dataset), format=source.info(dataset).format).samples
    if copies == 1:
        return samples
    return [s.model_copy(update={"id": f"{s.id}#{k}"}) for k in range(copies) for s in samples]


def timed(run) -> tuple[float, float, list]:
    """(wall s, CPU s of the process tree, the run's value)."""
    cpu, started = process_tree_cpu_s(), time.perf_counter()
    results = run()
    return time.perf_counter() - started, process_tree_cpu_s() - cpu, results


def _fingerprint(results) -> list:
    return [r.model_dump() for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partition", default="hh_rlhf_harmless")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()

    load_before = os.getloadavg()
    samples = partition_samples(args.partition, args.copies)
    rewards = rule_rewards()
    print(f"{args.partition} x{args.copies}: {len(samples)} samples, {len(rewards)} rule rewards, "
          f"batch size {args.batch_size}, {os.cpu_count()} CPUs, load {load_before[0]:.2f}")

    import ray

    ray_start, _, _ = timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                                          object_store_memory=LOCAL_OBJECT_STORE_BYTES))
    modes = {"in process": None, "Ray, 1 worker": RayScoring(workers=1, batch_size=args.batch_size),
             "Ray, 2 workers": RayScoring(workers=2, batch_size=args.batch_size)}
    walls: dict[str, list[float]] = {name: [] for name in modes}
    cpus: dict[str, list[float]] = {name: [] for name in modes}
    reference = None
    rows = 0
    try:
        for _ in range(args.repeat):
            for name, target in modes.items():
                if target is None:
                    wall, cpu, results = timed(lambda: apply_rewards(samples, rewards))
                else:
                    wall, cpu, results = timed(lambda: score_rules(samples, rewards, on_ray=target))
                walls[name].append(wall)
                cpus[name].append(cpu)
                if reference is None:
                    reference, rows = _fingerprint(results), len(results)
                elif _fingerprint(results) != reference:
                    sys.exit(f"{name}: results differ from the in-process results")
    finally:
        ray.shutdown()
    load_after = os.getloadavg()

    print(f"local Ray start: {ray_start:.1f} s; every run's {rows} score rows equal the in-process ones\n")
    print("| mode | first run s | best run s | samples/s (best) | score rows/s (best) | CPU s, best run "
          "(process tree) | cores busy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    best = {name: min(values) for name, values in walls.items()}
    for name, values in walls.items():
        cpu = cpus[name][values.index(best[name])]
        print(f"| {name} | {values[0]:.2f} | {best[name]:.2f} | {len(samples) / best[name]:,.0f} | "
              f"{rows / best[name]:,.0f} | {cpu:.2f} | {cpu / best[name]:.2f} |")
    print(f"\nscaling, Ray 2 workers / 1 worker (best runs): {best['Ray, 1 worker'] / best['Ray, 2 workers']:.2f}x")
    print(f"Ray 2 workers / in process (best runs): {best['in process'] / best['Ray, 2 workers']:.2f}x")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")


if __name__ == "__main__":  # math_verify's pool spawns processes that re-import this file
    main()
