"""Partitions: one per dataset (static), later one per training run (dynamic)."""

import dagster as dg

DATASETS = ("helpsteer2", "hh_rlhf_helpful", "hh_rlhf_harmless")

dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))
