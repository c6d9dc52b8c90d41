"""Automation: benchmark every new checkpoint (and the baseline models) as soon as it appears, and
refresh the leaderboard after new benchmark reports (one run per burst of reports).

`build_sensors(settings)` makes them when the definitions are built: whether they run by default
and which baseline models are registered (RMFORGE_BENCHMARK_MODELS) are settings."""

import json
import time

import dagster as dg

from dagster_project.jobs import REPORT_JOBS, baseline_benchmark_job, benchmark_job, leaderboard_job
from dagster_project.schedules import (
    benchmarks_with_source,
    report_run_requests,
    runs_by_default,
    trained_runs,
)
from dagster_project.settings import Settings
from rm_assets.partitions import evaluated_models
from rm_resources.datasets import DatasetSourceResource


def unregistered(wanted: list[str], registered: set[str]) -> list[str]:
    return [key for key in wanted if key not in registered]


def new_checkpoint_sensor(settings: Settings) -> dg.SensorDefinition:
    models = list(settings.benchmark_models)

    @dg.sensor(
        name="new_checkpoint_sensor",
        jobs=[benchmark_job, baseline_benchmark_job],
        minimum_interval_seconds=60,
        default_status=_default_status(settings),
        description="Benchmarks each newly trained checkpoint on every benchmark, and registers and benchmarks "
        "the baseline models (RMFORGE_BENCHMARK_MODELS) once.",
    )
    def _sensor(context: dg.SensorEvaluationContext, datasets: DatasetSourceResource):
        benchmarked = set(context.cursor.split(",")) if context.cursor else set()
        new_runs = [run for run in trained_runs(context.instance) if run not in benchmarked]
        new_models = unregistered(models, set(context.instance.get_dynamic_partitions(evaluated_models.name)))
        if not new_runs and not new_models:
            return dg.SkipReason("no new checkpoint or baseline model to benchmark")
        context.update_cursor(",".join(sorted(benchmarked | set(new_runs))))
        benchmarks, _ = benchmarks_with_source(datasets)
        return dg.SensorResult(
            run_requests=report_run_requests(benchmark_job.name, "run", new_runs, tag="new-checkpoint",
                                             benchmarks=benchmarks)
            + report_run_requests(baseline_benchmark_job.name, "model", new_models, tag="new-model",
                                  benchmarks=benchmarks),
            dynamic_partitions_requests=[evaluated_models.build_add_request(new_models)] if new_models else [],
        )

    return _sensor


def _default_status(settings: Settings) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if runs_by_default(settings) else dg.DefaultSensorStatus.STOPPED


REPORT_ASSETS = ("benchmark_reports", "principles_benchmark_reports", "baseline_benchmark_reports")
_UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED]
# While benchmark runs are still going, the leaderboard waits for them, but never longer than this.
LEADERBOARD_MAX_WAIT_S = 600


def _latest_materialization_id(instance: dg.DagsterInstance, asset: str) -> int:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=1).records
    return records[0].storage_id if records else 0


def _unfinished_runs(instance: dg.DagsterInstance, jobs) -> list:
    return [run for job in jobs for run in instance.get_runs(dg.RunsFilter(job_name=job.name, statuses=_UNFINISHED), limit=1)]


def evaluate_leaderboard_sensor(context: dg.SensorEvaluationContext):
    """Cursor: {"seen": the newest report materialization a leaderboard run was asked for,
    "waiting_since": when a newer one was first seen}."""
    instance = context.instance
    state = json.loads(context.cursor) if context.cursor else {"seen": _latest_materialization_id(instance, "leaderboard")}
    latest = max(_latest_materialization_id(instance, asset) for asset in REPORT_ASSETS)
    if latest <= state["seen"]:
        return dg.SkipReason("no benchmark report since the last leaderboard")
    waiting_since = state.get("waiting_since") or time.time()
    busy = _unfinished_runs(instance, REPORT_JOBS)
    if busy and time.time() - waiting_since < LEADERBOARD_MAX_WAIT_S:
        context.update_cursor(json.dumps({"seen": state["seen"], "waiting_since": waiting_since}))
        return dg.SkipReason(f"new reports; waiting for benchmark run {busy[0].run_id[:8]} and the others in flight")
    context.update_cursor(json.dumps({"seen": latest}))
    pending = [run for run in _unfinished_runs(instance, [leaderboard_job]) if run.status != dg.DagsterRunStatus.STARTED]
    if pending:
        return dg.SkipReason(f"leaderboard run {pending[0].run_id[:8]} has not started yet and will include the new reports")
    return dg.RunRequest(run_key=f"reports-{latest}")


def leaderboard_sensor(settings: Settings) -> dg.SensorDefinition:
    return dg.sensor(
        name="leaderboard_sensor",
        job=leaderboard_job,
        minimum_interval_seconds=30,
        default_status=_default_status(settings),
        description="Rebuilds the leaderboard after new benchmark reports, once the benchmark runs in flight "
        f"have finished (at most {LEADERBOARD_MAX_WAIT_S // 60} minutes later): one leaderboard run per burst "
        "of reports.",
    )(evaluate_leaderboard_sensor)


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    return [new_checkpoint_sensor(settings), leaderboard_sensor(settings)]
