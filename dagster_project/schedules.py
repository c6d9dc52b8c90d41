"""Scheduled benchmark runs (cron RMFORGE_BENCHMARK_CRON, default daily 03:00): every trained
checkpoint, every learned principle set and every registered baseline model, on every benchmark.

A schedule targets one job and each report asset has its own partitions, so there is one schedule
per report job, all built by `report_schedule` on the same cron; `build_schedules(settings)` makes
them when the definitions are built (the cron and whether they run by default are settings).

Only benchmarks with a source are requested (`DatasetSourceResource.benchmark_sources`): JudgeBench
ships no rows, so until it has files or the hub it is skipped, and each tick logs why."""

from collections.abc import Callable

import dagster as dg

from dagster_project.jobs import baseline_benchmark_job, benchmark_job, principles_benchmark_job
from dagster_project.settings import Settings
from rm_assets.partitions import BENCHMARKS, DATASETS, evaluated_models, training_runs
from rm_resources.datasets import DatasetSourceResource


def _profile_datasets() -> DatasetSourceResource:
    """The dataset source of the settings in this process's environment (read now, not at import)."""
    from dagster_project.settings import load_settings, resources_for

    return resources_for(load_settings())["datasets"]


def benchmarks_with_source(datasets: DatasetSourceResource | None = None) -> tuple[list[str], dict[str, str]]:
    """(benchmarks that have a source, {benchmark: why not}) for `datasets` (default: the profile's)."""
    return (datasets or _profile_datasets()).benchmark_sources(BENCHMARKS)


def report_run_requests(
    job_name: str, dimension: str, values: list[str], *, tag: str, benchmarks: list[str] | None = None
) -> list[dg.RunRequest]:
    """One run per benchmark × value of the job's second partition dimension (run, dataset, model);
    `benchmarks` defaults to those with a source in the current profile."""
    if benchmarks is None:
        benchmarks, _ = benchmarks_with_source()
    return [
        dg.RunRequest(
            run_key=f"{tag}:{job_name}:{benchmark}|{value}",
            job_name=job_name,
            partition_key=dg.MultiPartitionKey({"benchmark": benchmark, dimension: value}),
        )
        for value in values
        for benchmark in benchmarks
    ]


def runs_by_default(settings: Settings) -> bool:
    """Automation runs by default in the local profile; production turns it on deliberately."""
    return settings.profile == "local"


def trained_runs(instance: dg.DagsterInstance) -> list[str]:
    materialized = set(instance.get_materialized_partitions(dg.AssetKey("rm_checkpoints")))
    return sorted(materialized & set(instance.get_dynamic_partitions(training_runs.name)))


def principled_datasets(instance: dg.DagsterInstance) -> list[str]:
    return sorted(set(instance.get_materialized_partitions(dg.AssetKey("auto_principles"))) & set(DATASETS))


def baseline_models(instance: dg.DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(evaluated_models.name))


# What each report job re-benchmarks: (partition dimension, the values to run).
SCHEDULED: dict[str, tuple[str, Callable[[dg.DagsterInstance], list[str]]]] = {
    benchmark_job.name: ("run", trained_runs),
    principles_benchmark_job.name: ("dataset", principled_datasets),
    baseline_benchmark_job.name: ("model", baseline_models),
}


def scheduled_benchmark_requests(
    instance: dg.DagsterInstance, tick, job_name: str, datasets: DatasetSourceResource | None = None, log=None
) -> list[dg.RunRequest] | dg.SkipReason:
    """One run per (benchmark with a source × value) of the job, keyed by the tick so a tick never
    runs twice; each benchmark without a source is skipped, and `log` (the tick's log) says why."""
    dimension, values = SCHEDULED[job_name]
    found = values(instance)
    if not found:
        return dg.SkipReason(f"nothing for {job_name} to benchmark yet (no {dimension} to evaluate)")
    benchmarks, skipped = benchmarks_with_source(datasets)
    for benchmark, reason in skipped.items():
        if log is not None:
            log.info(f"{job_name}: skipping {benchmark}: {reason}")
    if not benchmarks:
        return dg.SkipReason(f"no benchmark has a source: {'; '.join(skipped.values())}")
    return report_run_requests(job_name, dimension, found, tag=f"scheduled-{tick.isoformat()}", benchmarks=benchmarks)


def report_schedule(job, name: str, settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=settings.benchmark_cron,
        default_status=dg.DefaultScheduleStatus.RUNNING if runs_by_default(settings) else dg.DefaultScheduleStatus.STOPPED,
        description=f"Re-run {job.name} for every {SCHEDULED[job.name][0]} on every benchmark.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext, datasets: DatasetSourceResource):
        return scheduled_benchmark_requests(context.instance, context.scheduled_execution_time, job.name,
                                            datasets=datasets, log=context.log)

    return _schedule


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    return [
        report_schedule(benchmark_job, "benchmark_schedule", settings),
        report_schedule(principles_benchmark_job, "principles_benchmark_schedule", settings),
        report_schedule(baseline_benchmark_job, "baseline_benchmark_schedule", settings),
    ]
