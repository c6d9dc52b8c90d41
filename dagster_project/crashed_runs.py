"""Runs whose process died (kill -9, out of memory) end as FAILURE with the reason.

Under `dagster dev` the code server that started a run worker notices within a second that the
process is gone and fails the run itself. Nothing notices for a run of `rmforge run`, which executes
in its own process with no daemon watching, or for a `dagster dev` run whose code server died with
it. So each `rmforge run` run records its process on the run (`process_tags`), and the next
`rmforge run` or `rmforge ui` calls `fail_crashed_runs`: every unfinished run on this host whose
process is gone is reported FAILURE with the reason, and its concurrency slots are freed, so the
run history says what happened and a re-execution can start.

The process of a started run is the one that wrote its RUN_START event (Dagster records the pid of
every event), not the tags: a re-execution launched from the UI inherits its parent's tags.
"""

from __future__ import annotations

import socket

import dagster as dg

PID_TAG = "rmforge/pid"
HOST_TAG = "rmforge/host"
# The process's start time, so a pid reused by another process is not taken for the run's.
PROCESS_STARTED_TAG = "rmforge/process_started"

UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
              dg.DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    """Tags naming this process, for the runs it executes in process."""
    import psutil

    me = psutil.Process()
    return {PID_TAG: str(me.pid), HOST_TAG: socket.gethostname(), PROCESS_STARTED_TAG: f"{me.create_time():.3f}"}


def _gone(pid: int, started_by: float) -> str | None:
    """Why process `pid` (which had started by the time `started_by`) no longer runs, or None."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return f"process {pid} has exited"
        if process.create_time() > started_by + 1.0:
            return f"process {pid} is gone; the pid now belongs to a newer process"
    except psutil.NoSuchProcess:
        return f"process {pid} is gone"
    except psutil.AccessDenied:
        return None
    return None


def _run_process(instance: dg.DagsterInstance, record) -> tuple[int, float] | None:
    """(pid, a time by which it had started) of the process executing an unfinished run: the one
    that wrote its RUN_START event, or, for a run of `rmforge run` that died before starting, the one
    its tags name. None when no process is known."""
    run = record.dagster_run
    if run.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING):
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
        entry = records[0].event_log_entry if records else None
        if entry is None or entry.dagster_event is None or entry.dagster_event.pid is None:
            return None
        return entry.dagster_event.pid, entry.timestamp
    # Not started: only a run of `rmforge run` names its process (a re-execution from the UI that
    # inherited the tags is left to the daemon's start timeout).
    if PID_TAG in run.tags and "dagster/parent_run_id" not in run.tags:
        return int(run.tags[PID_TAG]), float(run.tags.get(PROCESS_STARTED_TAG, record.create_timestamp.timestamp()))
    return None


def why_crashed(instance: dg.DagsterInstance, record) -> str | None:
    """Why an unfinished run's process is known to be gone, or None (alive, unknown, or elsewhere:
    only runs of `rmforge run` on this host and of the local default run launcher are judged)."""
    run = record.dagster_run
    here = socket.gethostname()
    local_launcher = type(instance.run_launcher).__name__ == "DefaultRunLauncher"
    if run.tags.get(HOST_TAG, here if local_launcher else None) != here:
        return None
    process = _run_process(instance, record)
    reason = _gone(*process) if process else None
    if reason is None:
        return None
    who = "`rmforge run`" if run.tags.get(PID_TAG) == str(process[0]) else "run worker"
    return f"the {who} process ended while the run was {run.status.value} ({reason}) without reporting the run's end"


def fail_crashed_runs(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """Report every unfinished run whose process is gone as FAILURE with the reason, and free the
    concurrency slots it held; returns (run id, reason) for each."""
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED)):
        reason = why_crashed(instance, record)
        if reason is None:
            continue
        run = record.dagster_run
        instance.report_run_failed(run, reason)
        storage = instance.event_log_storage
        if getattr(storage, "supports_global_concurrency_limits", False):
            storage.free_concurrency_slots_for_run(run.run_id)
        failed.append((run.run_id, reason))
    return failed


def say_crashed_runs(instance: dg.DagsterInstance) -> None:
    """`fail_crashed_runs`, with a line on the console for each run it ended."""
    for run_id, reason in fail_crashed_runs(instance):
        print(f"  run {run_id[:8]} marked FAILURE: {reason}", flush=True)
