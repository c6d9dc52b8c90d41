"""Jobs: the main job materializes the dataset-partitioned chain up to the training pairs; the
others train, benchmark and rank."""

import dagster as dg

# A report or leaderboard run is one asset and its checks, seconds of work: in one process it skips
# re-importing the code location per step, which is most of such a run's time (as `rmforge run`).
_ONE_PROCESS = dg.in_process_executor

main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.groups("data", "scoring", "judging", "curation"),
    description="Raw rows → converted samples → rule scores, principles, LLM scores, refined samples → "
    "training pairs; one dataset partition per run.",
)

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets("rm_checkpoints"),
    description="Train a Bradley-Terry reward model on training_pairs; the partition key names the run.",
)

benchmark_job = dg.define_asset_job(
    "benchmark_job",
    executor_def=_ONE_PROCESS,
    selection=dg.AssetSelection.assets("benchmark_reports"),
    description="Score one trained checkpoint on one benchmark and render its report.",
)

principles_benchmark_job = dg.define_asset_job(
    "principles_benchmark_job",
    executor_def=_ONE_PROCESS,
    selection=dg.AssetSelection.assets("principles_benchmark_reports"),
    description="Score the LLM judge with one dataset's learned principles on one benchmark.",
)

baseline_benchmark_job = dg.define_asset_job(
    "baseline_benchmark_job",
    executor_def=_ONE_PROCESS,
    selection=dg.AssetSelection.assets("baseline_benchmark_reports"),
    description="Score one rule reward or default-principles judge on one benchmark.",
)

REPORT_JOBS = (benchmark_job, principles_benchmark_job, baseline_benchmark_job)

leaderboard_job = dg.define_asset_job(
    "leaderboard_job",
    executor_def=_ONE_PROCESS,
    selection=dg.AssetSelection.assets("leaderboard", "served_model"),
    description="Every evaluated model × every benchmark from the latest reports, then the promotion "
    "decision (served_model) on the new leaderboard.",
)

grm_train_job = dg.define_asset_job(
    "grm_train_job",
    selection=dg.AssetSelection.assets("grm_checkpoints"),
    description="Train a generative reward model with verl GRPO (GPUs); the partition key names the run.",
)
