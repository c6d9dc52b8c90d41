"""What curation buys: a Bradley-Terry checkpoint trained on the raw human pairs vs one trained on
the curated training pairs, same budget, backbone and seed, both benchmarked.

    .venv/bin/python bench/curation_effect.py [--database data/rmforge.duckdb] [--dataset hh_rlhf_harmless]
        [--epochs 1] [--max-train-pairs N] [--policy '{"rule_gates": [...]}']

Reads a warehouse that `make run` (or `rmforge run`) filled. "raw" is every human-labelled pair of
the dataset as converted (`training.data.pairs_from_samples`); "curated" is the kept and flagged
rows of `training_pairs` (`pairs_from_training_records`), or, with `--policy`, what
`rm_rewards.curation.curate.curate` makes of the same stored scores and refinements under that policy.
Both train with the same BTTrainConfig (in this process, no Ray) and are evaluated on the SAME
held-out pairs (the raw human test-split pairs) and on every bundled benchmark (scored exactly as
each defines it). Pairs are not capped by default: a cap would take a different first-N of each
set. Prints one table and writes bench/out/curation_effect.json. Run it alone: ~15 minutes on 2
free cores with the defaults.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rm_assets.partitions import BENCHMARKS  # noqa: E402
from rm_resources.store import Store  # noqa: E402
from rm_resources.warehouse import default_database  # noqa: E402
from rm_rewards.benchmarks.evaluate import evaluate_model  # noqa: E402
from rm_rewards.benchmarks.loaders import load_benchmark  # noqa: E402
from rm_rewards.benchmarks.model_keys import CheckpointModel  # noqa: E402
from training.bt_scoring import score_with_checkpoint
from training.bt_trainer import train  # noqa: E402
from training.config import BTTrainConfig  # noqa: E402
from training.data import pairs_from_samples, pairs_from_training_records, split_pairs  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def curated_records(store: Store, dataset: str, policy_json: str | None):
    """The stored training pairs, or the same inputs curated again under another policy."""
    if policy_json is None:
        return store.read_training_pairs([dataset])
    from rm_rewards.curation.curate import CurationPolicy, curate
    from rm_rewards.curation.pairs import fold_pairs

    samples = store.read_samples(dataset)
    pairs, _ = fold_pairs([s for s in samples if s.task == "pairwise"])
    scores = store.read_score_records("rule_scores", dataset) + store.read_score_records("llm_scores", dataset)
    result = curate(pairs, {s.id: s for s in samples}, scores, store.read_refinements(dataset),
                    CurationPolicy.model_validate_json(policy_json))
    return result.pairs


def benchmark(path: str, name: str) -> dict[str, float | None]:
    out = {}
    for bench in BENCHMARKS:
        result = evaluate_model(bench, load_benchmark(bench), CheckpointModel(run_id=name, path=path),
                                checkpoint_scorer=functools.partial(score_with_checkpoint, path))
        out[bench] = result.headline
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=default_database())
    parser.add_argument("--dataset", default="hh_rlhf_harmless")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-train-pairs", type=int, default=None)
    parser.add_argument("--policy", default=None, help="a CurationPolicy as JSON (default: the stored pairs)")
    parser.add_argument("--only", choices=["raw", "curated"], help="train one side only (the other from a previous run)")
    parser.add_argument("--out", default="curation_effect", help="name of the JSON summary under bench/out/")
    args = parser.parse_args()

    store = Store(args.database)
    raw = pairs_from_samples(store.read_samples(args.dataset, task="pairwise"))
    records = curated_records(store, args.dataset, args.policy)
    curated = pairs_from_training_records(records)
    raw_train, held_out = split_pairs(raw)
    curated_train, _ = split_pairs(curated)
    decisions = {d: sum(r.decision == d for r in records) for d in ("kept", "flagged", "dropped")}
    reasons = {r: sum(x.reason == r for x in records) for r in ("human", "refined", "relabelled")}
    print(f"{args.dataset}: raw {len(raw_train)} train pairs; curated {len(curated_train)} train pairs "
          f"(reasons {reasons}, decisions {decisions}); {len(held_out)} held-out human pairs for both")

    rows = {}
    for name, train_pairs in (("raw", raw_train), ("curated", curated_train)):
        if args.only and name != args.only:
            continue
        config = BTTrainConfig(epochs=args.epochs, max_train_pairs=args.max_train_pairs, max_eval_pairs=None,
                               eval_before_training=False, output_dir=str(OUT / "curation_effect" / name), seed=0)
        began = time.perf_counter()
        config = config.model_copy(update={"output_dir": str(OUT / args.out / name)})
        result = train(config, list(train_pairs) + list(held_out))
        rows[name] = {
            "train_pairs": result.train_pairs,
            "held_out_accuracy": result.final_eval_accuracy,  # the same held-out pairs for both
            **benchmark(result.final_checkpoint, f"curation-{name}"),
            "train_s": round(time.perf_counter() - began, 1),
        }
    columns = ["train_pairs", "held_out_accuracy", *BENCHMARKS, "train_s"]
    previous_file = OUT / "curation_effect.json"
    if args.only and previous_file.exists():  # the other side from the full run's summary
        previous = json.loads(previous_file.read_text())["rows"]
        rows = {name: rows.get(name) or previous[name] for name in ("raw", "curated")}
    print("\n| pairs | " + " | ".join(columns) + " |\n| --- |" + " ---: |" * len(columns))
    for name, row in rows.items():
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")
    deltas = {c: rows["curated"][c] - rows["raw"][c] for c in columns[1:-1]
              if len(rows) == 2 and rows["raw"][c] is not None and rows["curated"][c] is not None}
    print("curated − raw: " + ", ".join(f"{c} {v:+.4f}" for c, v in deltas.items()))
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps({"args": vars(args), "rows": rows, "deltas": deltas,
                                                          "reasons": reasons, "decisions": decisions}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
