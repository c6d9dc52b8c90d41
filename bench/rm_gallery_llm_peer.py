"""The rm-gallery 0.1.7 side of bench/llm_throughput.py; runs inside .venvs/rm-gallery only.

    .venvs/rm-gallery/bin/python bench/rm_gallery_llm_peer.py --input rows.jsonl \
        --base-url http://127.0.0.1:PORT/v1 --output peer.json [--max-workers N]

Reads the workload rows written by bench/llm_throughput.py (id, question, answer), builds one
rm-gallery DataSample per row (the question as the user turn, the answer as its one output) and
times `evaluate_batch` of rm-gallery's registered LLM pointwise reward
`base_helpfulness_pointwise`, whose `llm` is rm-gallery's own `OpenaiLLM` (the sync `openai`
client) pointed at the fake server. Everything is left at rm-gallery's defaults (`max_workers`
8, its retries, its INFO logging of every prompt and answer) unless `--max-workers` is given.

A sample counts as judged when its one output got a reward detail with the score the scripted
answer implies; the rest count as failed, each with the reason rm-gallery recorded. Writes the
figures as JSON. Never imported by rmforge.
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
from rm_gallery.core.model.openai_llm import OpenaiLLM
from rm_gallery.core.reward.registry import RewardRegistry

REWARD_NAME = "base_helpfulness_pointwise"


def to_data_sample(row: dict) -> DataSample:
    answer = DataOutput(answer=Step(role="assistant", content=row["answer"]))
    return DataSample(
        unique_id=row["id"], input=[ChatMessage(role="user", content=row["question"])], output=[answer]
    )


def judged(sample: DataSample, expected_score: float) -> str | None:
    """None when the sample got the expected score, else why not (rm-gallery's own reason)."""
    answer = sample.output[0].answer
    if not answer.reward.details:
        extra = answer.additional_kwargs.get(REWARD_NAME) or {}
        return str(extra.get("error", "no reward detail"))[:200]
    score = answer.reward.details[0].score
    return None if abs(score - expected_score) < 1e-9 else f"score {score}, expected {expected_score}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--expected-score", type=float, required=True)
    parser.add_argument("--max-workers", type=int, default=0, help="0: rm-gallery's default")
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    samples = [to_data_sample(row) for row in rows]
    # OPENAI_API_KEY is read from the environment, as rm-gallery documents.
    llm = OpenaiLLM(model=args.model, base_url=args.base_url)
    reward = RewardRegistry.get(REWARD_NAME)(llm=llm)
    cpu_start, start = time.process_time(), time.perf_counter()  # process_time: all threads
    results = reward.evaluate_batch(samples, max_workers=args.max_workers)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    failures = [reason for sample in results if (reason := judged(sample, args.expected_score))]
    report = {
        "rm_gallery_version": importlib.metadata.version("rm-gallery"),
        "openai_version": importlib.metadata.version("openai"),
        "reward": REWARD_NAME,
        "max_workers": args.max_workers or reward.max_workers,
        "requests": len(samples),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "judged_ok": len(samples) - len(failures),
        "failure_reasons": sorted(set(failures))[:10],
        "cpus": os.cpu_count(),
    }
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
