"""Benchmarks: load RM-Bench, RewardBench 2 and RMB, and score them exactly as their own code does.

items = load_benchmark("rm_bench")                     # bundled sample; source="hub" in production
samples = items_to_samples(items)                      # for any reward's evaluate_batch
table = scores_from_results(items, reward.evaluate_batch(samples))
report = score_benchmark("rm_bench", items, table)     # report.to_markdown(), report.summary()
"""

from rm_rewards.benchmarks.consistency import ConsistencyReport, JudgedPair, consistency_report
from rm_rewards.benchmarks.items import (
    BENCHMARK_NAMES,
    BenchmarkItem,
    BenchmarkName,
    ScoreTable,
    item_to_sample,
    items_to_samples,
    sample_id_for,
    scores_from_results,
)
from rm_rewards.benchmarks.loaders import (
    BenchmarkFormatError,
    load_benchmark,
    load_bundled,
    load_files,
    load_from_hub,
    parse_rows,
)
from rm_rewards.benchmarks.reports import (
    BenchmarkReport,
    RewardBench2Report,
    RewardBench2SubsetResult,
    RMBenchDomainResult,
    RMBenchReport,
    RMBGroupResult,
    RMBReport,
    TiesDetail,
)
from rm_rewards.benchmarks.scoring import (
    score_benchmark,
    score_reward_bench_2,
    score_rm_bench,
    score_rmb,
)

__all__ = [
    "BENCHMARK_NAMES",
    "BenchmarkFormatError",
    "BenchmarkItem",
    "BenchmarkName",
    "BenchmarkReport",
    "ConsistencyReport",
    "JudgedPair",
    "RMBGroupResult",
    "RMBReport",
    "RMBenchDomainResult",
    "RMBenchReport",
    "RewardBench2Report",
    "RewardBench2SubsetResult",
    "ScoreTable",
    "TiesDetail",
    "consistency_report",
    "item_to_sample",
    "items_to_samples",
    "load_benchmark",
    "load_bundled",
    "load_files",
    "load_from_hub",
    "parse_rows",
    "sample_id_for",
    "score_benchmark",
    "score_reward_bench_2",
    "score_rm_bench",
    "score_rmb",
    "scores_from_results",
]
