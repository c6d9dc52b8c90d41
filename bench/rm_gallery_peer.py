"""The rm-gallery 0.1.7 side of bench/rule_rewards.py; runs inside .venvs/rm-gallery only.

    .venvs/rm-gallery/bin/python bench/rm_gallery_peer.py --input rows.jsonl --output peer.json

Reads the rows written by bench/rule_rewards.py, turns each into an rm-gallery DataSample (one
output per response, the reference in each answer's label, where rm-gallery's rules look for
it), and times each rule reward's `evaluate_batch` with its default `max_workers` (8); writes
samples/s, error counts and (for math) correct counts as JSON. Never imported by rmforge.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time

import rm_gallery.gallery.rm  # noqa: F401  (registers the built-in rewards)
from rm_gallery.core.data.schema import DataOutput, DataSample, Step
from rm_gallery.core.model.message import ChatMessage
from rm_gallery.core.reward.registry import RewardRegistry

# rmforge registry name -> (rm-gallery registry name, constructor parameters).
# The tokenizer of f1_score and ngram_repetition_penalty defaults to tiktoken, which is not
# installed with rm-gallery and falls back to str.split after a failed import on every call;
# "simple" is the same split without that import, i.e. rm-gallery's fastest configuration.
PEER_REWARDS: dict[str, tuple[str, dict]] = {
    "token_f1": ("f1_score", {"tokenizer_type": "simple"}),
    "rouge_l": ("rouge", {}),
    "length_penalty": ("length_penalty", {}),
    "ngram_repetition_penalty": ("ngram_repetition_penalty", {"tokenizer_type": "simple"}),
    "privacy_leakage": ("privacy_leakage", {}),
    "reasoning_format": ("reasoning_format", {}),
    "number_accuracy": ("number_accuracy", {}),
    "math_verify": ("math_verify_reward", {}),
}


def to_data_sample(row: dict) -> DataSample:
    outputs = [
        DataOutput(answer=Step(role="assistant", content=text, label={"reference": row["reference"]}))
        for text in row["responses"]
    ]
    return DataSample(
        unique_id=row["id"], input=[ChatMessage(role="user", content=row["question"])], output=outputs
    )


def math_error(reason: str) -> bool:
    """rm-gallery turns math-verify failures into a 0 score with a reason; find them by the reason.

    Every reference in the benchmark ends with a plain number that math-verify parses, so an
    empty gold parse means the parse itself failed (in batch mode: SIGALRM outside the main thread).
    """
    return reason.startswith("Exception occurred") or "gold: []" in reason


def tally(name: str, rows: list[dict], results: list[DataSample]) -> dict:
    errored = correct = 0
    scores = []
    for row, result in zip(rows, results):
        details = [output.answer.reward.details for output in result.output]
        if any(not d for d in details):
            errored += 1
            continue
        scores.extend(d[0].score for d in details)
        if name == "math_verify":
            if any(math_error(d[0].reason) for d in details):
                errored += 1
            elif all((d[0].score == 1.0) == truth for d, truth in zip(details, row["correct"])):
                correct += 1
    out = {"errored_samples": errored, "mean_score": sum(scores) / len(scores) if scores else None}
    if name == "math_verify":
        out["correct_samples"] = correct
    return out


def time_reward(name: str, rows: list[dict], samples: list[DataSample], repeat: int) -> dict:
    registry_name, params = PEER_REWARDS[name]
    reward = RewardRegistry.get(registry_name)(**params)
    seconds, cpu_seconds, results, failure = [], [], None, None
    for _ in range(repeat):
        cpu_start, start = time.process_time(), time.perf_counter()  # process_time: all threads
        try:
            results = reward.evaluate_batch(samples)
        except Exception as exc:  # noqa: BLE001 - a crash of the whole batch: every sample errored
            failure = f"{type(exc).__name__}: {exc}"[:300]
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    best = min(seconds)
    out = {"peer_name": registry_name, "seconds": best, "all_seconds": seconds,
           "cpu_seconds": cpu_seconds[seconds.index(best)], "samples_per_s": len(samples) / best}
    if failure or results is None:
        out.update(errored_samples=len(samples), failure=failure)
        if name == "math_verify":
            out["correct_samples"] = 0
    else:
        out.update(tally(name, rows, results))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rewards", default=",".join(PEER_REWARDS))
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    samples = [to_data_sample(row) for row in rows]
    report = {
        "rm_gallery_version": importlib.metadata.version("rm-gallery"),
        "math_verify_version": importlib.metadata.version("math-verify"),
        "n_samples": len(samples),
        "cpus": os.cpu_count(),
        "rewards": {},
    }
    for name in args.rewards.split(","):
        report["rewards"][name] = time_reward(name, rows, samples, args.repeat)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
