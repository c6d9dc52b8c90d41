"""Benchmarks: load RM-Bench, RewardBench 2, RMB and JudgeBench, and score them exactly as their own
code does.

items = load_benchmark("rm_bench")                     # bundled sample; source="hub" in production
samples = items_to_samples(items)                      # for any reward's evaluate_batch
table = scores_from_results(items, reward.evaluate_batch(samples))
report = score_benchmark("rm_bench", items, table)     # report.to_markdown(), report.summary()

result = evaluate_model("rm_bench", items, RewardModel(reward="length_penalty"))  # or evaluate(...)

JudgeBench ships no rows: `benchmark_source("judge_bench", files={"judge_bench": [path]})` (or
mode="hub") says where they come from, and `NoBenchmarkSource` says how to configure one.

Evaluated models and their keys (`model_keys`): `reward:<rule>`, `judge:<llm judge>`,
`checkpoint:<run>`, `principles:<dataset>`; `model_from_key(key)` gives the spec back,
`model_kind(key)` routes, `checkpoint_key(run)` / `principles_key(dataset)` build keys.
"""

from rm_rewards.benchmarks.consistency import ConsistencyReport, JudgedPair, consistency_report
from rm_rewards.benchmarks.evaluate import (
    EvaluationResult,
    aevaluate,
    aevaluate_model,
    evaluate,
    evaluate_model,
)
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
    BenchmarkSource,
    NoBenchmarkSource,
    benchmark_source,
    load_benchmark,
    load_bundled,
    load_files,
    load_from_hub,
    parse_rows,
)
from rm_rewards.benchmarks.metrics import (
    score_benchmark,
    score_judge_bench,
    score_reward_bench_2,
    score_rm_bench,
    score_rmb,
)
from rm_rewards.benchmarks.model_keys import (
    MODEL_KINDS,
    PRINCIPLES_DEFAULT,
    PRINCIPLES_LEARNED,
    CheckpointModel,
    EvaluatedModel,
    ModelKey,
    ModelKind,
    PrinciplesJudge,
    PrinciplesModel,
    PrinciplesSource,
    RewardModel,
    checkpoint_key,
    model_from_key,
    model_kind,
    parse_evaluated_model,
    parse_model_key,
    principles_key,
)
from rm_rewards.benchmarks.report_models import (
    BenchmarkReport,
    HeadlineCoverage,
    JudgeBenchGroupResult,
    JudgeBenchReport,
    RewardBench2Report,
    RewardBench2SubsetResult,
    RMBenchDomainResult,
    RMBenchReport,
    RMBGroupResult,
    RMBReport,
    TiesDetail,
)

__all__ = [
    "BENCHMARK_NAMES",
    "MODEL_KINDS",
    "PRINCIPLES_DEFAULT",
    "PRINCIPLES_LEARNED",
    "BenchmarkFormatError",
    "BenchmarkItem",
    "BenchmarkName",
    "BenchmarkReport",
    "BenchmarkSource",
    "CheckpointModel",
    "ConsistencyReport",
    "EvaluatedModel",
    "EvaluationResult",
    "HeadlineCoverage",
    "JudgeBenchGroupResult",
    "JudgeBenchReport",
    "JudgedPair",
    "ModelKey",
    "ModelKind",
    "NoBenchmarkSource",
    "PrinciplesJudge",
    "PrinciplesModel",
    "PrinciplesSource",
    "RMBGroupResult",
    "RMBReport",
    "RMBenchDomainResult",
    "RMBenchReport",
    "RewardBench2Report",
    "RewardBench2SubsetResult",
    "RewardModel",
    "ScoreTable",
    "TiesDetail",
    "aevaluate",
    "aevaluate_model",
    "benchmark_source",
    "checkpoint_key",
    "consistency_report",
    "evaluate",
    "evaluate_model",
    "item_to_sample",
    "items_to_samples",
    "load_benchmark",
    "load_bundled",
    "load_files",
    "load_from_hub",
    "model_from_key",
    "model_kind",
    "parse_evaluated_model",
    "parse_model_key",
    "parse_rows",
    "principles_key",
    "sample_id_for",
    "score_benchmark",
    "score_judge_bench",
    "score_reward_bench_2",
    "score_rm_bench",
    "score_rmb",
    "scores_from_results",
]
