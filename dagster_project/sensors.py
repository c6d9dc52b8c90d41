"""Benchmark every new checkpoint as soon as its training run materializes."""

import dagster as dg

from dagster_project.jobs import benchmark_job
from dagster_project.schedules import benchmark_run_requests, runs_by_default
from rm_assets.benchmarks.assets import default_models
from rm_assets.partitions import evaluated_models, training_runs


def models_to_register(trained_runs: set[str], registered: set[str], defaults: list[str]) -> list[str]:
    """Model keys not yet registered: the configured defaults and one per trained checkpoint."""
    wanted = list(defaults) + [f"checkpoint:{run}" for run in sorted(trained_runs)]
    return [key for key in wanted if key not in registered]


@dg.sensor(
    job=benchmark_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING if runs_by_default() else dg.DefaultSensorStatus.STOPPED,
    description="Registers each newly trained checkpoint (and the default models) as an evaluated model "
    "and benchmarks it on every benchmark.",
)
def new_checkpoint_sensor(context: dg.SensorEvaluationContext):
    trained = set(context.instance.get_materialized_partitions(dg.AssetKey("rm_checkpoints")))
    trained &= set(context.instance.get_dynamic_partitions(training_runs.name))
    registered = set(context.instance.get_dynamic_partitions(evaluated_models.name))
    new = models_to_register(trained, registered, default_models())
    if not new:
        return dg.SkipReason("no new checkpoint or model to benchmark")
    return dg.SensorResult(
        run_requests=benchmark_run_requests(new, tag="new-model"),
        dynamic_partitions_requests=[evaluated_models.build_add_request(new)],
    )
