"""A run killed with -9 ends as FAILURE with the reason within a bounded time, and its re-execution
completes: under `rmforge run` (in process, no daemon; the next `rmforge run` notices) and under
`dagster dev` (the code server notices the dead run worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from dagster_project.crashed_runs import PID_TAG, fail_crashed_runs, process_tags
from rm_assets.partitions import dataset_partitions
from tests.support.dagster_dev import ROOT, DagsterDev, dagster_env, wait_until

pytestmark = pytest.mark.slow

DATA_STAGE = ["raw_rows", "converted_samples", "rule_scores"]


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def _started_steps(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return {r.event_log_entry.step_key for r in records}


def _wait(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    return wait_until(predicate, timeout_s, what, interval_s)


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return records[-1].event_log_entry.dagster_event.message if records else ""


# --- rmforge run: in process, no daemon --------------------------------------------------------


def test_a_killed_rmforge_run_is_failed_by_the_next_one_which_completes(tmp_path):
    env = dagster_env(tmp_path / "home", tmp_path / "data")
    command = [sys.executable, "-m", "dagster_project.cli", "run", "--skip-llm", "--skip-training", "--skip-benchmarks"]
    victim = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    instance = _instance(tmp_path / "home")
    try:
        def mid_run():
            # A run of this process that is scoring rules (the longest step): kill it there.
            for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED],
                                                                  tags={PID_TAG: str(victim.pid)})):
                if "rule_scores" in _started_steps(instance, record.dagster_run.run_id):
                    return record.dagster_run.run_id
            assert victim.poll() is None, f"rmforge run ended before it could be killed:\n{victim.stdout.read()}"
            return None

        run_id = _wait(mid_run, 240, "an rmforge run scoring rules")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.stdout.close()
    # Nothing watches an in-process run: it still reads STARTED.
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED

    began = time.monotonic()
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"run {run_id[:8]} marked FAILURE" in again.stdout, again.stdout
    killed = instance.get_run_by_id(run_id)
    assert killed.status == dg.DagsterRunStatus.FAILURE
    reason = _failure_message(instance, run_id)
    assert f"process {killed.tags[PID_TAG]} is gone" in reason and "`rmforge run`" in reason, reason

    # The rerun materialized every partition: the killed one included, each by a successful run.
    partition = killed.tags["dagster/partition"]
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": partition}))
    assert runs[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS and runs[0].dagster_run.run_id != run_id
    from rm_resources.store import Store

    store = Store(str(tmp_path / "data" / "rmforge.duckdb"))
    counts = store.count_by_partition("rule_scores")
    assert all(counts.get(key, 0) > 0 for key in dataset_partitions.get_partition_keys()), counts
    print(f"killed rmforge run failed with its reason and rerun in {time.monotonic() - began:.0f}s")


def test_a_live_process_and_a_reexecution_with_inherited_tags_are_left_alone(tmp_path):
    """Only a run whose own process is gone is failed: the process that wrote RUN_START counts, not
    tags a UI re-execution inherited from a killed `rmforge run`."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        @dg.op
        def wait_op():
            return 1

        @dg.job
        def tiny():
            wait_op()

        inherited = {**process_tags(), PID_TAG: str(dead.pid), "dagster/parent_run_id": "x"}
        run = instance.create_run_for_job(tiny, tags=inherited)
        instance.report_dagster_event(dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name="tiny", pid=os.getpid()), run.run_id)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert fail_crashed_runs(instance) == []
        # The same run written by a process that is gone is failed, with the reason.
        other = instance.create_run_for_job(tiny, tags=process_tags())
        instance.report_dagster_event(dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name="tiny", pid=dead.pid), other.run_id)
        failed = fail_crashed_runs(instance)
        assert [run_id for run_id, _ in failed] == [other.run_id]
        assert f"process {dead.pid} is gone" in failed[0][1]
        assert instance.get_run_by_id(other.run_id).status == dg.DagsterRunStatus.FAILURE


# --- dagster dev: the run worker is killed -----------------------------------------------------

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

REEXECUTE = """
mutation Reexecute($params: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""


def _run_id(answer: dict, field: str) -> str:
    result = answer[field]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


@pytest.mark.timeout(420)
def test_a_killed_dagster_dev_run_fails_with_the_reason_and_reexecutes(tmp_path):
    from dagster_project.settings import load_settings

    env = dagster_env(tmp_path / "home", tmp_path / "data")
    instance = _instance(tmp_path / "home")
    # The baseline models are known already, so the new-checkpoint sensor launches nothing meanwhile.
    instance.add_dynamic_partitions("evaluated_models", list(load_settings(env).benchmark_models))
    partition = dataset_partitions.get_partition_keys()[-1]
    with DagsterDev(env, tmp_path / "dagster_dev.log") as dev:
        params = {
            "selector": {"repositoryLocationName": "rmforge", "repositoryName": "__repository__",
                         "jobName": "__ASSET_JOB", "assetSelection": [{"path": [a]} for a in DATA_STAGE]},
            "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        run_id = _run_id(dev.graphql(LAUNCH, {"params": params}), "launchRun")

        def worker_scoring_rules():
            if "rule_scores" not in _started_steps(instance, run_id):
                return None
            start = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START).records
            return start[0].event_log_entry.dagster_event.pid

        worker = _wait(worker_scoring_rules, 240, "the run worker scoring rules", interval_s=0.1)
        # kill -9 the run worker and the step process it started (what an out-of-memory kill does).
        victims = [psutil.Process(worker), *psutil.Process(worker).children(recursive=True)]
        for process in victims:
            process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()

        def failed():
            return instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE

        _wait(failed, 60, "the killed run to be reported FAILURE", interval_s=0.2)
        noticed_s = time.monotonic() - killed_at
        assert noticed_s < 60
        engine = [r.event_log_entry.message or "" for r in
                  instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records]
        assert any("was terminated by signal 9 (SIGKILL)" in message for message in engine), engine

        rerun = _run_id(dev.graphql(REEXECUTE, {"params": {"parentRunId": run_id, "strategy": "FROM_FAILURE"}}),
                        "launchRunReexecution")
        finished = _wait(lambda: instance.get_run_by_id(rerun).is_finished and instance.get_run_by_id(rerun),
                         240, "the re-execution to finish", interval_s=0.5)
        assert finished.status == dg.DagsterRunStatus.SUCCESS, dev.log_tail()
        assert "rule_scores" in _started_steps(instance, rerun)
    from rm_resources.store import Store

    assert Store(str(tmp_path / "data" / "rmforge.duckdb")).count_by_partition("rule_scores").get(partition, 0) > 0
    print(f"killed run worker reported FAILURE after {noticed_s:.1f}s; re-execution {rerun[:8]} succeeded")
