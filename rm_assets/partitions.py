"""Partitions: one per dataset (static), later one per training run (dynamic)."""

import dagster as dg

DATASETS = ("helpsteer2", "hh_rlhf_helpful", "hh_rlhf_harmless")

dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))

# One partition per training run; keys are derived from the run's config and data versions.
training_runs = dg.DynamicPartitionsDefinition(name="training_runs")

# Benchmark reports: one partition per (benchmark × evaluated model). Model keys are
# `reward:<rule>`, `judge:<llm judge>` or `checkpoint:<training run>` (rm_rewards.benchmarks.evaluate).
BENCHMARKS = ("rm_bench", "reward_bench_2", "rmb_pairwise", "rmb_bon")
evaluated_models = dg.DynamicPartitionsDefinition(name="evaluated_models")
benchmark_partitions = dg.MultiPartitionsDefinition(
    {"benchmark": dg.StaticPartitionsDefinition(list(BENCHMARKS)), "model": evaluated_models}
)

# Generative reward models trained with verl GRPO: one partition per run (needs GPUs).
grm_training_runs = dg.DynamicPartitionsDefinition(name="grm_training_runs")
