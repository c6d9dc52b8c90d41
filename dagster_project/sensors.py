"""Automation: benchmark every new checkpoint (and the baseline models) as soon as it appears, and
refresh the leaderboard after every successful benchmark run."""

import dagster as dg

from dagster_project.jobs import REPORT_JOBS, baseline_benchmark_job, benchmark_job, leaderboard_job
from dagster_project.schedules import report_run_requests, runs_by_default, trained_runs
from rm_assets.benchmarks.assets import default_models
from rm_assets.partitions import evaluated_models

_DEFAULT_STATUS = dg.DefaultSensorStatus.RUNNING if runs_by_default() else dg.DefaultSensorStatus.STOPPED


def unregistered(wanted: list[str], registered: set[str]) -> list[str]:
    return [key for key in wanted if key not in registered]


@dg.sensor(
    jobs=[benchmark_job, baseline_benchmark_job],
    minimum_interval_seconds=60,
    default_status=_DEFAULT_STATUS,
    description="Benchmarks each newly trained checkpoint on every benchmark, and registers and benchmarks "
    "the baseline models (RMFORGE_BENCHMARK_MODELS) once.",
)
def new_checkpoint_sensor(context: dg.SensorEvaluationContext):
    benchmarked = set(context.cursor.split(",")) if context.cursor else set()
    new_runs = [run for run in trained_runs(context.instance) if run not in benchmarked]
    new_models = unregistered(default_models(), set(context.instance.get_dynamic_partitions(evaluated_models.name)))
    if not new_runs and not new_models:
        return dg.SkipReason("no new checkpoint or baseline model to benchmark")
    context.update_cursor(",".join(sorted(benchmarked | set(new_runs))))
    return dg.SensorResult(
        run_requests=report_run_requests(benchmark_job.name, "run", new_runs, tag="new-checkpoint")
        + report_run_requests(baseline_benchmark_job.name, "model", new_models, tag="new-model"),
        dynamic_partitions_requests=[evaluated_models.build_add_request(new_models)] if new_models else [],
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=list(REPORT_JOBS),
    request_job=leaderboard_job,
    default_status=_DEFAULT_STATUS,
    description="Rebuilds the leaderboard after every successful benchmark run.",
)
def leaderboard_sensor(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}")
