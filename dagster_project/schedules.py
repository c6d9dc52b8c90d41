"""Scheduled benchmark runs: every registered model on every benchmark."""

import os

import dagster as dg

from dagster_project.jobs import benchmark_job
from rm_assets.partitions import BENCHMARKS, evaluated_models


def benchmark_run_requests(model_keys: list[str], *, tag: str) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            run_key=f"{tag}:{benchmark}|{model}",
            partition_key=dg.MultiPartitionKey({"benchmark": benchmark, "model": model}),
        )
        for model in model_keys
        for benchmark in BENCHMARKS
    ]


def benchmark_cron() -> str:
    return os.environ.get("RMFORGE_BENCHMARK_CRON", "0 3 * * *")


def runs_by_default() -> bool:
    """Automation runs by default in the local profile; production turns it on deliberately."""
    return os.environ.get("RMFORGE_PROFILE", "local") == "local"


@dg.schedule(
    job=benchmark_job,
    cron_schedule=benchmark_cron(),
    default_status=dg.DefaultScheduleStatus.RUNNING if runs_by_default() else dg.DefaultScheduleStatus.STOPPED,
    description="Benchmark every registered model (rules, judges, checkpoints) on every benchmark.",
)
def benchmark_schedule(context: dg.ScheduleEvaluationContext):
    return scheduled_benchmark_requests(context.instance, context.scheduled_execution_time)


def scheduled_benchmark_requests(instance: dg.DagsterInstance, tick) -> list[dg.RunRequest] | dg.SkipReason:
    """One run per (benchmark × registered model), keyed by the tick so a tick never runs twice."""
    models = instance.get_dynamic_partitions(evaluated_models.name)
    if not models:
        return dg.SkipReason("no evaluated models registered yet (the checkpoint sensor registers them)")
    return benchmark_run_requests(sorted(models), tag=f"scheduled-{tick.isoformat()}")
