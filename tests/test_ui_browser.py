"""The Dagster UI as a person uses it, in headless Chromium (Debian's `chromium`, driven by
Playwright): `dagster dev` (webserver, daemon) on workspace.yaml with the embedded defaults, a
temporary DAGSTER_HOME (the project's dagster.yaml) and data folder, small datasets.

1. the global asset lineage draws every group and every asset of the chain;
2. one dataset partition of the data stage, materialized with the Materialize button and the
   partition dialog, lands in DuckDB;
3. a backfill over every dataset partition, launched from the same dialog, lands one run per
   partition with no run failed (on a DuckDB lock or otherwise);
4. under the daemon, with nobody launching anything: the schedule benchmarks the registered
   baseline model at its minute; then a checkpoint appears, the new-checkpoint sensor benchmarks it
   and the leaderboard sensor ranks both; the benchmark report and the leaderboard render their
   markdown and plot.

Screenshots of every step go to artifacts/ui/ (gitignored); their paths are printed.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from rm_assets.partitions import dataset_partitions
from tests.support.dagster_dev import ROOT, DagsterDev, dagster_env
from tests.support.dagster_dev import wait_until as _wait

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts" / "ui"
ROWS = 6  # RMFORGE_DATASET_LIMIT: rows per dataset
BASELINE = "reward:length_penalty"
CHECKPOINT = "bt-ui-tiny"
CHAIN = ["raw_rows", "converted_samples", "rule_scores", "auto_principles", "llm_scores", "refined_samples",
         "training_pairs", "rm_checkpoints", "benchmark_reports", "principles_benchmark_reports",
         "baseline_benchmark_reports", "leaderboard"]
LOCK_ERROR = re.compile(r"lock", re.IGNORECASE)


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() or _playwright() is None,
                       reason="needs Debian's chromium and playwright (`make test` installs both)"),
]


# --- waiting on the instance ---------------------------------------------------------------------


def _failures(instance: dg.DagsterInstance) -> dict[str, str]:
    """{run id: why} for every failed run: the step and run failure messages."""
    failed = {}
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
        run_id = record.dagster_run.run_id
        messages = []
        for kind in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
            for event in instance.get_records_for_run(run_id, of_type=kind).records:
                entry = event.event_log_entry
                error = entry.dagster_event.step_failure_data.error if kind == dg.DagsterEventType.STEP_FAILURE else None
                messages.append((error.to_string() if error else "") + (entry.dagster_event.message or ""))
        failed[run_id] = " | ".join(messages)
    return failed


def _unfinished(instance: dg.DagsterInstance) -> list:
    return instance.get_runs(dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))


def _materialized(instance: dg.DagsterInstance, asset: str) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey(asset)))


# --- what the test puts in place -----------------------------------------------------------------


def _register_tiny_checkpoint(instance: dg.DagsterInstance, store, path: Path) -> None:
    """A tiny random BERT score head (tests.support.tiny) saved as a checkpoint and registered the way
    rm_checkpoints registers one (store row, training_runs partition, materialization): what the
    new-checkpoint sensor sees when a training run finishes. Tiny, so its reports take seconds."""
    from tests.support.tiny import make_tiny_backbone
    from training.bt_trainer import TrainResult

    make_tiny_backbone(path)
    store.write_checkpoint(
        CHECKPOINT, TrainResult(final_checkpoint=str(path), steps=0, train_pairs=0, eval_pairs=0, wall_s=0.0, history=[]),
        datasets=[], config={}, data_versions={}, source_runs={}, run_id="ui-test",
    )
    instance.add_dynamic_partitions("training_runs", [CHECKPOINT])
    instance.report_runless_asset_event(dg.AssetMaterialization("rm_checkpoints", partition=CHECKPOINT))


def _cron_at(moment: dt.datetime) -> str:
    """A daily cron that fires at `moment`'s minute (UTC), so the schedules tick once in the test."""
    return f"{moment.minute} {moment.hour} * * *"


# --- the browser ---------------------------------------------------------------------------------


class Shots:
    def __init__(self, page):
        self.page = page
        self.paths: list[Path] = []
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)

    def take(self, name: str, *, full_page: bool = False) -> None:
        path = ARTIFACTS / f"{len(self.paths) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.paths.append(path)
        print(f"screenshot: {path}", flush=True)


def _node_labels(page) -> list[str]:
    return page.evaluate("() => Array.from(document.querySelectorAll('svg foreignObject')).map(e => e.textContent || '')")


def _drawn(name: str, labels: list[str]) -> bool:
    """The graph shows `name`, whole or middle-truncated ("baseline_…_reports") at low zoom."""
    for label in labels:
        if label == name:
            return True
        if "…" in label:
            head, _, tail = label.partition("…")
            if head and name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
                return True
    return False


def _open_markdown(page, key: str):
    """Click the metadata row `key`'s [Show Markdown] and return the dialog once it rendered."""
    row = page.locator("tr", has=page.get_by_text(key, exact=True))
    row.get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.locator("img").first.wait_for()
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[role=dialog] img')).every(i => i.complete && i.naturalWidth > 0)")
    return dialog


def _launch_from_group(page, url: str, choose) -> None:
    """The data group's page → Materialize all… → the partition dialog → `choose(dialog)`."""
    page.goto(f"{url}/locations/rmforge/asset-groups/data")
    page.get_by_role("button", name="Materialize all").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    choose(dialog)


@pytest.mark.timeout(600)
def test_the_ui_lineage_materialize_backfill_automation_and_reports(tmp_path):
    from rm_resources.datasets import DatasetSourceResource
    from rm_resources.store import Store

    began = time.monotonic()
    partitions = dataset_partitions.get_partition_keys()
    expected_rows = {p: len(DatasetSourceResource(mode="bundled", limit=ROWS).load_rows(p)) for p in partitions}
    # The schedules fire once, at the first whole minute after start-up: the baseline model's
    # benchmarks are re-run (the checkpoint appears only after that tick, for the sensor to find).
    schedule_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=120)).replace(second=0, microsecond=0)
    env = dagster_env(tmp_path / "home", tmp_path / "data", RMFORGE_DATASET_LIMIT=str(ROWS),
                      RMFORGE_BENCHMARK_MODELS=BASELINE, RMFORGE_BENCHMARK_CRON=_cron_at(schedule_at))
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home"))
    store = Store(str(tmp_path / "data" / "rmforge.duckdb"))
    # The baseline model is registered (as `rmforge run` registers it); the schedule benchmarks it.
    instance.add_dynamic_partitions("evaluated_models", [BASELINE])
    from dagster_project.definitions import defs

    graph = defs().resolve_asset_graph()
    groups = sorted({graph.get(key).group_name for key in graph.get_all_asset_keys()})
    sync_playwright = _playwright()

    with DagsterDev(env, tmp_path / "dagster_dev.log") as dev, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000})
        page = browser.new_page()
        page.set_default_timeout(60_000)
        shots = Shots(page)
        try:
            # 1. The global lineage: every group, then every asset of the chain once expanded.
            page.goto(f"{dev.url}/asset-groups")
            page.get_by_role("button", name="Materialize all").first.wait_for()
            page.wait_for_timeout(1500)  # the community modal would open after a second: it must not
            assert not page.get_by_text("Join the Dagster community").is_visible()
            shots.take("lineage-groups")
            tooltips = page.evaluate(
                "() => Array.from(document.querySelectorAll('svg foreignObject [data-tooltip]')).map(e => e.dataset.tooltip)")
            assert set(groups) <= set(tooltips), (groups, tooltips)
            page.get_by_role("button", name="settings", exact=True).click()
            page.get_by_role("menuitem", name="Expand all groups").click()
            page.keyboard.press("Escape")
            _wait(lambda: all(_drawn(a, _node_labels(page)) for a in CHAIN), 30, "every asset drawn", 0.5)
            shots.take("lineage-assets")

            # 2. One partition of the data stage from the Materialize button and the partition dialog.
            first = partitions[0]

            def one_partition(dialog):
                dialog.get_by_text("Select a partition or create one").click()
                page.get_by_role("menuitem", name=re.compile(rf"^{re.escape(first)}(\s+{re.escape(first)})?$")).click()
                shots.take("materialize-one-partition")
                dialog.get_by_role("button", name="Launch 1 run").click()

            _launch_from_group(page, dev.url, one_partition)
            page.get_by_text("View", exact=True).first.click()
            page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
            run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)
            run = _wait(lambda: instance.get_run_by_id(run_id).is_finished and instance.get_run_by_id(run_id), 240,
                        "the one-partition run")
            assert run.status == dg.DagsterRunStatus.SUCCESS, _failures(instance).get(run_id)
            assert run.tags["dagster/partition"] == first
            page.get_by_text("Success").first.wait_for()
            shots.take("one-partition-run-succeeded")
            assert store.count_by_partition("raw_rows") == {first: expected_rows[first]}
            assert store.count_by_partition("converted_samples").get(first, 0) > 0
            assert store.run_ids("raw_rows", first) == [run_id]

            # Once the schedules have ticked (at their minute, a minute or two in), a checkpoint
            # appears, as when a training run finishes: checked for while the backfill runs.
            registered: list[float] = []

            def checkpoint_after_the_schedule_tick() -> None:
                if not registered and time.time() > schedule_at.timestamp() + 5 and instance.get_runs(
                        dg.RunsFilter(tags={"dagster/schedule_name": "baseline_benchmark_schedule"}), limit=1):
                    _register_tiny_checkpoint(instance, store, tmp_path / "checkpoint")
                    registered.append(time.monotonic())

            # 3. A backfill over every dataset partition, from the same dialog.
            def all_partitions(dialog):
                dialog.get_by_role("button", name="All", exact=True).click()
                dialog.get_by_text(f"{len(partitions)} partitions").first.wait_for()
                shots.take("backfill-all-partitions")
                dialog.get_by_role("button", name="Launch backfill").click()

            _launch_from_group(page, dev.url, all_partitions)
            backfill = _wait(lambda: next(iter(instance.get_backfills(limit=1)), None), 60, "the backfill")
            page.goto(f"{dev.url}/runs/b/{backfill.backfill_id}")

            def backfill_done():
                checkpoint_after_the_schedule_tick()
                status = instance.get_backfill(backfill.backfill_id).status
                return status if status.value.startswith(("COMPLETED", "FAILED", "CANCELED")) else None

            status = _wait(backfill_done, 300, "the backfill over every partition", 2.0)
            backfill_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
            failures = _failures(instance)
            assert not [why for why in failures.values() if LOCK_ERROR.search(why)], failures
            assert status.value in ("COMPLETED", "COMPLETED_SUCCESS"), (status, failures)
            # One run per partition (BackfillPolicy.multi_run(1): a one-partition range each), all successful.
            by_partition = {}
            for r in backfill_runs:
                start, end = r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]
                assert start == end, r.tags
                by_partition[start] = r.run_id
            assert sorted(by_partition) == sorted(partitions) and len(backfill_runs) == len(partitions)
            assert {r.status for r in backfill_runs} == {dg.DagsterRunStatus.SUCCESS}
            page.reload()
            page.get_by_text(backfill.backfill_id).first.wait_for()
            shots.take("backfill-completed", full_page=True)
            assert store.count_by_partition("raw_rows") == expected_rows
            converted = store.count_by_partition("converted_samples")
            assert all(converted.get(p, 0) > 0 for p in partitions), converted
            for partition in partitions:  # each partition's rows replaced by its own backfill run
                assert store.run_ids("raw_rows", partition) == [by_partition[partition]]
                assert store.run_ids("converted_samples", partition) == [by_partition[partition]]

            # 4. Automation under the daemon, nobody launching anything: the schedule benchmarked the
            # baseline model at its minute; the checkpoint that appeared after it is benchmarked by
            # the new-checkpoint sensor; the leaderboard sensor ranks both.
            def automation_done():
                checkpoint_after_the_schedule_tick()
                if not registered or _unfinished(instance):
                    return False
                board = store.read_leaderboard()
                return {f"checkpoint:{CHECKPOINT}", BASELINE} <= set(board["model_key"]) if len(board) else False

            _wait(automation_done, 420, "the schedule's tick, then the sensor's benchmark runs of the checkpoint and "
                  "the leaderboard", 3.0)
            print(f"checkpoint benchmarked and ranked {time.monotonic() - registered[0]:.0f}s after it appeared", flush=True)
            failures = _failures(instance)
            assert not failures, failures
            sensor_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": "new_checkpoint_sensor"}))
            assert sensor_runs and {r.tags.get("dagster/partition/run") for r in sensor_runs} == {CHECKPOINT}
            scheduled = instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": "baseline_benchmark_schedule"}))
            assert {r.tags.get("dagster/partition/model") for r in scheduled} == {BASELINE}
            assert {r.status for r in scheduled} == {dg.DagsterRunStatus.SUCCESS}
            leaderboard_runs = instance.get_runs(dg.RunsFilter(job_name="leaderboard_job"))
            assert leaderboard_runs and leaderboard_runs[0].status == dg.DagsterRunStatus.SUCCESS

            reported = sorted(k for k in _materialized(instance, "benchmark_reports") if k.endswith(f"|{CHECKPOINT}"))
            key = reported[0]
            page.goto(f"{dev.url}/assets/benchmark_reports?view=partitions&partition={key.replace('|', '%7C')}")
            report = _open_markdown(page, "report")
            assert f"checkpoint:{CHECKPOINT}" in report.inner_text()
            shots.take("benchmark-report")
            page.goto(f"{dev.url}/assets/leaderboard")
            board_dialog = _open_markdown(page, "leaderboard")
            text = board_dialog.inner_text()
            assert board_dialog.locator("table").count() >= 1
            assert f"checkpoint:{CHECKPOINT}" in text and BASELINE in text
            shots.take("leaderboard")
        except Exception:
            shots.take("failure", full_page=True)
            print(dev.log_tail(), flush=True)
            raise
        finally:
            browser.close()
    print(f"UI test: {len(shots.paths)} screenshots in {ARTIFACTS}, {time.monotonic() - began:.0f}s", flush=True)


def test_leaderboard_sensor_waits_for_the_benchmark_runs_in_flight():
    """One leaderboard run per burst of reports: none while benchmark runs are still going, one
    once they are done, none again until a newer report."""
    from dagster_project.definitions import defs as load_definitions

    defs = load_definitions()
    leaderboard_sensor = defs.get_sensor_def("leaderboard_sensor")

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(leaderboard_sensor(context), dg.SkipReason)  # no report yet
        instance.report_runless_asset_event(dg.AssetMaterialization("baseline_benchmark_reports", partition="a|b"))
        busy = instance.create_run_for_job(defs.resolve_job_def("baseline_benchmark_job"),
                                           status=dg.DagsterRunStatus.STARTED)
        waiting = leaderboard_sensor(context)
        assert isinstance(waiting, dg.SkipReason) and busy.run_id[:8] in waiting.skip_message
        instance.report_run_failed(busy)
        request = leaderboard_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.job_name in (None, "leaderboard_job")
        assert isinstance(leaderboard_sensor(context), dg.SkipReason)  # nothing newer
        instance.report_runless_asset_event(dg.AssetMaterialization("benchmark_reports", partition="a|c"))
        queued = instance.create_run_for_job(defs.resolve_job_def("leaderboard_job"),
                                             status=dg.DagsterRunStatus.NOT_STARTED)
        pending = leaderboard_sensor(context)  # a leaderboard run not started yet will read the new report
        assert isinstance(pending, dg.SkipReason) and queued.run_id[:8] in pending.skip_message
        assert isinstance(leaderboard_sensor(context), dg.SkipReason)
