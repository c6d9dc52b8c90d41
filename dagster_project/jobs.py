"""Jobs: the main job materializes the dataset-partitioned graph end to end."""

import dagster as dg

from rm_assets.partitions import benchmark_partitions, dataset_partitions, grm_training_runs, training_runs

main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.groups("data", "scoring", "judging"),
    partitions_def=dataset_partitions,
    description="Raw rows → converted samples → rule scores, principles, LLM scores, refined samples; "
    "one dataset partition per run.",
)

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets("rm_checkpoints"),
    partitions_def=training_runs,
    description="Train a Bradley-Terry reward model; the partition key names the training run.",
)

benchmark_job = dg.define_asset_job(
    "benchmark_job",
    selection=dg.AssetSelection.assets("benchmark_reports"),
    partitions_def=benchmark_partitions,
    description="Score one evaluated model on one benchmark and render its report.",
)

grm_train_job = dg.define_asset_job(
    "grm_train_job",
    selection=dg.AssetSelection.assets("grm_checkpoints"),
    partitions_def=grm_training_runs,
    description="Train a generative reward model with verl GRPO (GPUs); the partition key names the run.",
)
