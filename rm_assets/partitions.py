"""Partitions: one per dataset (static), one per training run (dynamic), and the benchmark reports'
two-dimensional partitions (benchmark × what is evaluated).

The dataset partitions are the project's datasets file (`rm_resources.datasets.dataset_catalog`),
read when the definitions load: a dataset added to the file appears after a definitions reload."""

import dagster as dg

from rm_resources.datasets import dataset_catalog
from rm_rewards.benchmarks.items import BENCHMARK_NAMES

DATASETS = dataset_catalog().partitions

dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))

# One partition per training run; keys are derived from the run's config and data versions.
training_runs = dg.DynamicPartitionsDefinition(name="training_runs")

BENCHMARKS = BENCHMARK_NAMES  # one list: the library's benchmarks
benchmark_names = dg.StaticPartitionsDefinition(list(BENCHMARKS))

# Reports of trained checkpoints: benchmark × training run (the run is rm_checkpoints' partition).
checkpoint_report_partitions = dg.MultiPartitionsDefinition({"benchmark": benchmark_names, "run": training_runs})

# Reports of the LLM judge with the principles learned on a dataset: benchmark × dataset.
principles_report_partitions = dg.MultiPartitionsDefinition({"benchmark": benchmark_names, "dataset": dataset_partitions})

# Reports of models that use no upstream asset (rule rewards `reward:<rule>`, LLM judges with their
# default principles `judge:<judge>`): benchmark × model key (rm_rewards.benchmarks model keys).
evaluated_models = dg.DynamicPartitionsDefinition(name="evaluated_models")
baseline_report_partitions = dg.MultiPartitionsDefinition({"benchmark": benchmark_names, "model": evaluated_models})

# Generative reward models trained with verl GRPO: one partition per run (needs GPUs).
grm_training_runs = dg.DynamicPartitionsDefinition(name="grm_training_runs")
