"""Partitions: one per dataset (static), later one per training run (dynamic)."""

import dagster as dg

DATASETS = ("helpsteer2", "hh_rlhf_helpful", "hh_rlhf_harmless")

dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))

# One partition per training run; keys are derived from the run's config and data versions.
training_runs = dg.DynamicPartitionsDefinition(name="training_runs")
