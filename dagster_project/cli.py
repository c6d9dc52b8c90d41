"""The `rmforge` command: `rewards list`, `run`, `audit`, `datasets`, `ui`, `paths`, `settings`, `serve`."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME defaults to the project's gitignored .dagster_home, so run history persists."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"
    if not config.exists() and template.exists() and template != config:
        shutil.copyfile(template, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _rewards_list(args: argparse.Namespace) -> int:
    from rm_rewards.core import registry

    rows = registry.specs(tag=args.tag, is_llm={"rule": False, "llm": True}.get(args.source))
    if args.rm_gallery:
        from rm_rewards.core.rm_gallery_names import (
            RM_GALLERY_NAMES,
            RM_GALLERY_VERSION,
            format_rm_gallery_table,
        )

        selected = {s.name for s in rows}
        filtered = args.tag is not None or args.source is not None
        # With --tag/--source, the names whose rmforge reward is selected (unsupported ones have none).
        entries = [e for e in RM_GALLERY_NAMES.values() if not filtered or e.rmforge in selected]
        print(format_rm_gallery_table(entries))
        unsupported = sum(not e.supported for e in entries)
        print(f"\n{len(entries)} RM-Gallery {RM_GALLERY_VERSION} reward names: "
              f"{len(entries) - unsupported} resolve to an rmforge reward, {unsupported} unsupported")
        return 0
    print(registry.format_table(rows))
    print(f"\n{len(rows)} rewards")
    return 0


_DEFINITIONS: dict = {}


def definitions_for(settings):
    """The Definitions of `settings`, built once per process and settings."""
    from dagster_project.definitions import build_definitions

    key = settings.model_dump_json()  # secrets are masked here; whether one is set still counts
    if key not in _DEFINITIONS:
        _DEFINITIONS[key] = build_definitions(settings)
    return _DEFINITIONS[key]


def run_settings(llm_base_url: str | None = None, llm_model: str | None = None):
    """This process's settings, with the embedded LLM as the endpoint when `rmforge run` started it."""
    from dagster_project.settings import load_settings

    settings = load_settings()
    return settings.with_embedded_llm(llm_base_url, llm_model) if llm_base_url else settings


def job_definition(name: str, llm_base_url: str | None = None, llm_model: str | None = None):
    """Module-level so `dg.build_reconstructable_job` can rebuild any job in a step process. The
    embedded LLM's URL and model travel as arguments (they become the llm resource's config), never
    through the environment; nothing secret does."""
    return definitions_for(run_settings(llm_base_url, llm_model)).resolve_job_def(name)


def _endpoint(settings) -> dict:
    """The reconstructable job's arguments for these settings' LLM endpoint (none when configured
    by the environment: a step process reads that itself)."""
    from dagster_project.settings import load_settings

    if settings.llm_base_url and settings.llm_base_url != load_settings().llm_base_url:
        return {"llm_base_url": settings.llm_base_url, "llm_model": settings.llm_model}
    return {}


def _execute(instance, job: str, partition, *, settings, run_config: dict | None = None,
             assets: list[str] | None = None):
    """Run one job partition in this process (a run recorded in the instance, as the UI shows it);
    returns (ok, run id, seconds, the first failure's message)."""
    import dagster as dg

    from dagster_project.crashed_runs import process_tags

    began = time.perf_counter()
    # The run names this process, so a later `rmforge run` or `rmforge ui` can fail it if the
    # process dies mid-run (no daemon watches an in-process run): dagster_project/crashed_runs.py.
    tags = process_tags()
    if partition is not None:
        tags["dagster/partition"] = str(partition)
        for dimension, value in getattr(partition, "keys_by_dimension", {}).items():
            tags[f"dagster/partition/{dimension}"] = value
    result = dg.execute_job(
        dg.build_reconstructable_job("dagster_project.cli", "job_definition", reconstructable_args=(job,),
                                     reconstructable_kwargs=_endpoint(settings)),
        instance=instance,
        tags=tags,
        # In process: a short run spends most of a subprocess's time importing the code location.
        # The console stays ours (a line per run, failures in one line); every event, stack traces
        # included, stays in the run history (the UI).
        run_config={
            **_in_process(job, settings),
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            **(run_config or {}),
        },
        asset_selection=[dg.AssetKey(a) for a in assets] if assets else None,
        raise_on_error=False,
    )
    failure = None
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:  # the user's exception, not Dagster's wrapper
                error = error.cause
            message = (error.message or "").strip().splitlines()
            failure = f"{event.step_key}: {message[0] if message else error.cls_name}"
            break
    return result.success, result.run_id, time.perf_counter() - began, failure


def _in_process(job: str, settings) -> dict:
    """Run config that puts the job's steps in this process: the report and leaderboard jobs run in
    one process already (their executor is in_process); the others choose at launch."""
    if definitions_for(settings).resolve_job_def(job).executor_def.name == "in_process":
        return {}
    return {"execution": {"config": {"in_process": {}}}}


def _say(outcome, label: str) -> bool:
    ok, run_id, seconds, failure = outcome
    if ok:
        print(f"  {label}: done in {seconds:.0f}s (run {run_id[:8]})", flush=True)
    else:
        print(f"  {label}: FAILED in {seconds:.0f}s: {failure or 'see the run'} "
              f"(full log: Dagster UI, run {run_id})", flush=True)
    return ok


# --- what is already up to date ----------------------------------------------------------------


def _latest(instance, asset: str, partition: str | None):
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return records[0] if records else None


def up_to_date(instance, asset_graph, assets: list[str], partition_of) -> bool:
    """True when every asset has a materialization of its partition (`partition_of(asset)`) with the
    current code version, written after the latest materialization of each of its parents in the
    list: nothing changed since, so running again would recompute the same rows."""
    import dagster as dg

    latest = {}
    for asset in assets:
        record = _latest(instance, asset, partition_of(asset))
        node = asset_graph.get(dg.AssetKey(asset))
        if record is None or record.asset_materialization.tags.get("dagster/code_version") != node.code_version:
            return False
        latest[asset] = record
    for asset in assets:
        for parent in asset_graph.get(dg.AssetKey(asset)).parent_keys:
            name = parent.to_user_string()
            if name in latest and latest[name].timestamp > latest[asset].timestamp:
                return False
    return True


def _raw_rows_unchanged(instance, datasets_resource, dataset: str) -> bool:
    """The dataset's rows hash to the data version of the last raw_rows materialization."""
    from rm_resources.store import content_version, raw_row_hash
    from rm_rewards.datasets.quarantine import raw_row_json

    record = _latest(instance, "raw_rows", dataset)
    if record is None:
        return False
    version = content_version(raw_row_hash(raw_row_json(row)) for row in datasets_resource.load_rows(dataset))
    return record.asset_materialization.tags.get("dagster/data_version") == version


# --- the stages of `rmforge run` -----------------------------------------------------------------

MAIN_ASSETS = ("raw_rows", "converted_samples", "rule_scores", "auto_principles", "llm_scores",
               "refined_samples", "training_pairs")
LLM_ASSETS = ("auto_principles", "llm_scores", "refined_samples")


def _main_stage(instance, settings, partitions: list[str], *, skip_llm: bool, force: bool) -> list[str]:
    assets = [a for a in MAIN_ASSETS if not (skip_llm and a in LLM_ASSETS)]
    defs = definitions_for(settings)
    datasets_resource = defs.resources["datasets"]
    graph = defs.resolve_asset_graph()
    failed = []
    for partition in partitions:
        label = f"main_job [{partition}]"
        if not force and _raw_rows_unchanged(instance, datasets_resource, partition) and up_to_date(
            instance, graph, assets, lambda _asset: partition
        ):
            print(f"  {label}: up to date (same rows, same code), skipped", flush=True)
            continue
        if not _say(_execute(instance, "main_job", partition, settings=settings, assets=assets), label):
            failed.append(partition)
    return failed


def _datasets(args: argparse.Namespace) -> int:
    """The project's datasets: the built-ins and the datasets file's, which are partitions, where rows come from."""
    from dagster_project.settings import load_settings
    from rm_resources.datasets import dataset_catalog
    from rm_rewards.datasets.catalog import FORMATS, DatasetConfigError

    source = load_settings().effective_datasets_file()
    try:
        catalog = dataset_catalog()
    except (DatasetConfigError, FileNotFoundError) as exc:  # the message names the file, dataset and field
        print(f"rmforge datasets: {exc}", file=sys.stderr)
        return 2
    print(f"datasets file: {source if source else 'none (the built-in datasets only)'}\n")
    rows = []
    for info in catalog.datasets.values():
        where = (
            str(info.path) if info.path else f"hub {info.hub.repo_id}" if info.own_source and info.hub
            else "bundled" if info.bundled_files else "hub/local only (no bundled rows)"
        )
        rows.append((info.name, info.format, "yes" if info.name in catalog.partitions else "no", where))
    widths = [max(len(r[i]) for r in rows + [("dataset", "format", "partition", "source")]) for i in range(4)]
    for row in [("dataset", "format", "partition", "source"), *rows]:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
    print("\nformats:")
    for fmt in FORMATS.values():
        print(f"  {fmt.name:<22} {fmt.description}")
    return 0


def training_config(max_steps: int | None, datasets: list[str] | None = None):
    from rm_assets.checkpoints.assets import TrainingRunConfig

    overrides: dict = {}
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    if datasets:
        overrides["datasets"] = list(dict.fromkeys(datasets))
    return TrainingRunConfig(**overrides)


def _train_default(instance, settings, store, config, *, retrain: bool) -> str | None:
    """Train the default checkpoint once per (config, training pairs); a finished run is skipped.
    Returns the training run key, or None when training failed."""
    from rm_assets.checkpoints.assets import training_data_versions, training_run_key

    key = training_run_key(config, training_data_versions(store, config.datasets))
    if not retrain and store.checkpoint(key) is not None:
        print(f"  train_job [{key}]: already trained on these pairs with this config, skipped", flush=True)
        return key
    instance.add_dynamic_partitions("training_runs", [key])
    print(f"  train_job [{key}]: training on the training_pairs of {', '.join(config.datasets)} ...", flush=True)
    outcome = _execute(instance, "train_job", key, settings=settings, run_config={"ops": {"rm_checkpoints": {"config": config.model_dump()}}})
    return key if _say(outcome, f"train_job [{key}]") else None


def _report_partitions(run_key: str | None, *, skip_llm: bool, datasets: list[str],
                       models: list[str]) -> list[tuple[str, str, object]]:
    """(job, report asset, partition key) for every benchmark of every model `rmforge run` reports."""
    import dagster as dg

    from rm_assets.partitions import BENCHMARKS
    from rm_rewards.benchmarks.model_keys import parse_model_key

    plan = []
    for benchmark in BENCHMARKS:
        if run_key:
            plan.append(("benchmark_job", "benchmark_reports", dg.MultiPartitionKey({"benchmark": benchmark, "run": run_key})))
        if not skip_llm:
            for dataset in datasets:
                plan.append(("principles_benchmark_job", "principles_benchmark_reports",
                             dg.MultiPartitionKey({"benchmark": benchmark, "dataset": dataset})))
        for model in models:
            if skip_llm and parse_model_key(model).prefix == "judge":
                continue
            plan.append(("baseline_benchmark_job", "baseline_benchmark_reports",
                         dg.MultiPartitionKey({"benchmark": benchmark, "model": model})))
    return plan


def _benchmark_stage(instance, settings, plan, *, force: bool, judge_items: int | None) -> list[str]:
    """Report each planned partition unless it is up to date; then rebuild the leaderboard. A
    benchmark without a source (JudgeBench unless configured) is skipped, and the reason printed."""
    defs = definitions_for(settings)
    graph = defs.resolve_asset_graph()
    planned = sorted({p.keys_by_dimension["benchmark"] for _, _, p in plan})
    _, no_source = defs.resources["datasets"].benchmark_sources(planned)
    for benchmark, reason in no_source.items():
        print(f"  {benchmark}: skipped, no source: {reason}", flush=True)
    plan = [entry for entry in plan if entry[2].keys_by_dimension["benchmark"] not in no_source]
    models = sorted({p.keys_by_dimension["model"] for job, _, p in plan if job == "baseline_benchmark_job"})
    instance.add_dynamic_partitions("evaluated_models", models)
    failed = []
    for job, asset, partition in plan:
        label = f"{job} [{partition}]"
        upstream = {"benchmark_reports": "rm_checkpoints", "principles_benchmark_reports": "auto_principles"}.get(asset)
        dimension = {"rm_checkpoints": "run", "auto_principles": "dataset"}.get(upstream)

        def partition_of(name, partition=partition, dimension=dimension):
            return str(partition) if name == asset else partition.keys_by_dimension[dimension]

        if not force and up_to_date(instance, graph, [a for a in (upstream, asset) if a], partition_of):
            print(f"  {label}: up to date, skipped", flush=True)
            continue
        run_config = {"ops": {asset: {"config": {"max_judge_items": judge_items}}}} if judge_items else None
        if not _say(_execute(instance, job, partition, settings=settings, run_config=run_config), label):
            failed.append(str(partition))
    if not _say(_execute(instance, "leaderboard_job", None, settings=settings), "leaderboard_job"):
        failed.append("leaderboard")
    return failed


def _summary(store, partitions: list[str], judge_items: int | None = None, llm=None) -> str:
    """Rows per stage and partition, then each model's headline numbers and what did not apply."""
    from rm_rewards.benchmarks.leaderboard import LeaderboardEntry

    lines = ["", "Stages (rows per dataset partition):"]
    for table in ("raw_rows", "converted_samples", "quarantine", "rule_scores", "principle_sets", "llm_scores",
                  "refined_samples", "training_pairs"):
        counts = store.count_by_partition(table)
        cells = ", ".join(f"{p}={counts.get(p, 0)}" for p in partitions)
        lines.append(f"  {table:<18} {cells}")
    checkpoints = store.count_by_partition("rm_checkpoints")
    lines.append(f"  {'rm_checkpoints':<18} {len(checkpoints)} trained run(s)")
    frame = store.read_leaderboard()
    entries = [LeaderboardEntry(**{k: (None if v != v else v) for k, v in row.items() if k in LeaderboardEntry.model_fields})
               for row in frame.to_dict(orient="records")]
    if entries:
        benchmarks = sorted({e.benchmark for e in entries})
        width = max(len(e.model_key) for e in entries)
        from rm_assets.benchmarks.assets import JUDGE_ITEMS_SMALL

        budget = llm.items(judge_items, small=JUDGE_ITEMS_SMALL) if llm is not None else judge_items
        lines += ["", "Leaderboard (headline metric per benchmark"
                  + (f"; LLM judges on {budget} items each, the local profile's budget" if budget else "") + "):",
                  f"  {'model':<{width}}  " + "  ".join(f"{b:>14}" for b in benchmarks)]
        by_model: dict[str, dict[str, LeaderboardEntry]] = {}
        for entry in entries:
            by_model.setdefault(entry.model_key, {})[entry.benchmark] = entry
        for model, cells in by_model.items():
            values = []
            for benchmark in benchmarks:
                entry = cells.get(benchmark)
                if entry is not None and entry.status == "scored" and entry.headline is not None:
                    values.append(f"{entry.headline:>14.3f}")
                else:
                    values.append(f"{'n/a' if entry is not None and entry.status == 'not_applicable' else '-':>14}")
            lines.append(f"  {model:<{width}}  " + "  ".join(values))
        notes: dict[tuple[str, str, str], list[str]] = {}
        for e in entries:
            if e.status != "scored" or e.note:
                notes.setdefault((e.model_key, e.status, e.note), []).append(e.benchmark)
        if notes:
            lines.append("  notes:")
            for (model, status, note), on in notes.items():
                where = "every benchmark" if len(on) == len(benchmarks) else ", ".join(on)
                lines.append(f"    {model} ({where}): {status.replace('_', ' ')}" + (f" — {note}" if note else ""))
    latest = store.promotions(limit=1)
    if latest:
        decision = latest[0]
        lines += ["", f"Served model: {decision['served'] or 'none'} ({decision['status']}: {decision['reason']})",
                  "  serve it: rmforge serve  (history: rmforge audit served_model)"]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    ensure_dagster_home()
    _quiet_libraries()
    import dagster as dg

    from dagster_project.crashed_runs import say_crashed_runs
    from dagster_project.settings import load_settings
    from rm_assets.partitions import DATASETS
    from rm_resources.store import Store

    partitions = args.partition or list(DATASETS)
    unknown = sorted(set(partitions + (args.train_on or [])) - set(DATASETS))
    if unknown:
        print(f"unknown partitions {unknown}; known: {', '.join(DATASETS)}", file=sys.stderr)
        return 2
    settings = load_settings()
    store = Store(settings.effective_database())
    config = training_config(args.training_steps, args.train_on)
    began = time.perf_counter()
    llm = contextlib.nullcontext(settings) if args.skip_llm else _embedded_llm(settings)
    with llm as settings, dg.DagsterInstance.get() as instance:
        say_crashed_runs(instance)
        print("1. data → scores → principles → refinements → training pairs", flush=True)
        failed = _main_stage(instance, settings, partitions, skip_llm=args.skip_llm, force=args.force)
        run_key = None
        if not args.skip_training and not failed:
            print("2. reward model", flush=True)
            missing = sorted(set(config.datasets) - set(partitions))
            if missing:
                print(f"  training skipped: it trains on {missing}, which this run did not materialize", flush=True)
            else:
                run_key = _train_default(instance, settings, store, config, retrain=args.retrain)
                failed += [] if run_key else ["training"]
        if not args.skip_benchmarks and not failed:
            print("3. benchmark reports and leaderboard", flush=True)
            plan = _report_partitions(run_key, skip_llm=args.skip_llm, datasets=partitions,
                                      models=list(settings.benchmark_models))
            failed += _benchmark_stage(instance, settings, plan, force=args.force, judge_items=args.judge_items)
    print(_summary(store, partitions, args.judge_items, llm=definitions_for(settings).resources["llm"]))
    print(f"\nDuckDB warehouse: {store.database}")
    print(f"Dagster run history (DAGSTER_HOME): {os.environ['DAGSTER_HOME']}  — browse it with `make ui`")
    if run_key and not args.skip_benchmarks:
        print(f"Where a number came from: rmforge audit benchmark_reports 'rm_bench|{run_key}'")
    print(f"Finished in {time.perf_counter() - began:.0f}s.")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _quiet_libraries() -> None:
    """The console is the user's: library chatter (deprecations, previews, load reports) stays out."""
    import logging
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    for module in ("dagster", "ray", "torch", "transformers", "pydantic", "duckdb", "matplotlib", "sklearn"):
        warnings.filterwarnings("ignore", module=module)
    for name in ("ray", "transformers", "httpx", "urllib3", "filelock", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Our own progress lines (training steps with ETA, ...) go to the console.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("    %(message)s"))
    for name in ("training", "rmforge"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


@contextlib.contextmanager
def _embedded_llm(settings):
    """Yields the settings with the embedded llama.cpp server as their LLM endpoint while it runs,
    or the settings as they are when an endpoint is configured (RMFORGE_LLM_BASE_URL)."""
    from rm_resources.embedded_llm import EMBEDDED_MODEL_NAME, embedded_llm_server

    if settings.llm_base_url:
        yield settings
        return
    data_dir = settings.effective_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"starting the embedded LLM server (log: {data_dir / 'llm_server.log'}) ...", flush=True)
    with embedded_llm_server(log_path=data_dir / "llm_server.log") as server:
        yield settings.with_embedded_llm(server.base_url, EMBEDDED_MODEL_NAME)


def _ui(args: argparse.Namespace) -> int:
    """`dagster dev` with the embedded LLM running beside it, both stopped together. Runs left
    unfinished by a process that died since are marked failed first (dagster_project/crashed_runs.py)."""
    import subprocess

    import dagster as dg

    from dagster_project.crashed_runs import say_crashed_runs
    from dagster_project.settings import load_settings
    from rm_resources.parent_watch import module_command

    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        say_crashed_runs(instance)
    with _embedded_llm(load_settings()) as settings:
        # Under a parent watch: dagster dev (and what it started) ends even if this process is killed -9.
        command = module_command("dagster", ["dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                                             "--host", args.host, "--port", str(args.port)])
        # dagster dev is another program: its code server builds the definitions from its own
        # environment, so the embedded endpoint is given to that process (this one's stays as it is).
        endpoint = {"RMFORGE_LLM_BASE_URL": settings.llm_base_url, "RMFORGE_LLM_MODEL": settings.llm_model}
        env = {**os.environ, **{name: value for name, value in endpoint.items() if value}}
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)
        print(f"Dagster UI: http://{args.host}:{args.port} (the lineage: http://{args.host}:{args.port}/asset-groups; "
              "Ctrl-C stops it)", flush=True)
        try:
            return _wait_in_slices(process)
        except KeyboardInterrupt as stop:
            print(f"rmforge ui: {str(stop) or 'interrupted'}; stopping dagster dev and the LLM server ...",
                  file=sys.stderr, flush=True)
            process.terminate()
            return _stop_within(process, UI_STOP_TIMEOUT_S)


# A timed wait: a signal the kernel hands to another thread of this process runs its Python handler
# only when the main thread next runs Python code; a blocking waitpid would never return to it.
SIGNAL_POLL_S = 0.5
# dagster dev waits for its code server, which waits for the runs in flight (a benchmark run a sensor
# launched just before the stop goes on for a minute or more): past this, what is left is killed.
UI_STOP_TIMEOUT_S = 60


def _wait_in_slices(process) -> int:
    import subprocess

    while True:
        try:
            return process.wait(timeout=SIGNAL_POLL_S)
        except subprocess.TimeoutExpired:
            continue


def _stop_within(process, timeout_s: float) -> int:
    """`process`'s exit code once it has stopped; after `timeout_s`, it and everything under it are
    killed (runs still in flight end as failures: the next start says so, crashed_runs)."""
    import subprocess

    import psutil

    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        left = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        left = []
    print(f"rmforge ui: dagster dev still running {timeout_s:.0f}s after the stop (runs in flight?); "
          f"killing it and {len(left)} processes under it", file=sys.stderr, flush=True)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    process.kill()
    return process.wait()


def _paths(args: argparse.Namespace) -> int:
    from dagster_project.settings import load_settings

    settings = load_settings()
    print(f"data folder:      {settings.effective_data_dir()}")
    print(f"DuckDB warehouse: {settings.effective_database()}")
    print(f"DAGSTER_HOME:     {ensure_dagster_home()}")
    return 0


def _settings(args: argparse.Namespace) -> int:
    """Every RMFORGE_* setting's effective value; secrets only as set / not set."""
    from dagster_project.settings import format_settings, load_settings

    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"rmforge settings: {exc}", file=sys.stderr)
        return 2
    print(format_settings(settings))
    if args.verbose:
        from dagster_project.settings import READ_BY, SETTINGS

        print("\nwho reads each variable (load_settings reads all of them):")
        for setting in SETTINGS:
            print(f"  {setting.env}: {READ_BY[setting.read]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dagster_project.audit_cli import add_audit_parser
    from dagster_project.serve_cli import add_serve_parser

    parser = argparse.ArgumentParser(prog="rmforge", description="Reward models as Dagster assets.")
    commands = parser.add_subparsers(dest="command", required=True)

    rewards = commands.add_parser("rewards", help="the reward registry")
    rewards_commands = rewards.add_subparsers(dest="rewards_command", required=True)
    listing = rewards_commands.add_parser("list", help="print every registered reward")
    listing.add_argument("--tag", help="only rewards with this area tag")
    listing.add_argument("--source", choices=["rule", "llm"], help="only rule-based or LLM rewards")
    listing.add_argument("--rm-gallery", action="store_true",
                         help="RM-Gallery's reward names, the rmforge reward each resolves to, and how they differ")
    listing.set_defaults(handler=_rewards_list)

    run = commands.add_parser("run", help="the whole chain for every (or the given) dataset partition")
    run.add_argument("--partition", action="append", help="a dataset partition (repeatable)")
    run.add_argument("--skip-training", action="store_true", help="do not train the default checkpoint")
    run.add_argument("--train-on", action="append", metavar="DATASET",
                     help="train the checkpoint on this dataset's training pairs (repeatable; "
                     "default: the training config's datasets)")
    run.add_argument("--skip-llm", action="store_true", help="no LLM assets and no LLM judge benchmarks")
    run.add_argument("--skip-benchmarks", action="store_true", help="do not produce benchmark reports")
    run.add_argument("--retrain", action="store_true", help="train again even if this run key exists")
    run.add_argument("--force", action="store_true", help="re-materialize partitions that are up to date")
    run.add_argument("--training-steps", type=int, metavar="N",
                     help="stop training after N optimizer steps (a quick run; a different run key)")
    run.add_argument("--judge-items", type=int, metavar="N",
                     help="LLM judges score N items per benchmark (default: the profile's budget)")
    run.set_defaults(handler=_run)

    add_audit_parser(commands)
    add_serve_parser(commands)

    datasets = commands.add_parser("datasets", help="the project's datasets (built in and from the datasets file)")
    datasets.set_defaults(handler=_datasets)

    ui = commands.add_parser("ui", help="dagster dev on workspace.yaml, with the embedded LLM server")
    ui.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=3000, help="port of the UI (default 3000)")
    ui.set_defaults(handler=_ui)

    paths = commands.add_parser("paths", help="where the warehouse and run history live")
    paths.set_defaults(handler=_paths)

    settings = commands.add_parser("settings", help="every RMFORGE_* setting's effective value (secrets masked)")
    settings.add_argument("--verbose", action="store_true", help="also say who reads each variable, and when")
    settings.set_defaults(handler=_settings)
    return parser


def _sigterm_as_ctrl_c() -> None:
    """SIGTERM (a supervisor's stop: systemd, Kubernetes, `kill`) stops a command as Ctrl-C does, so
    the same cleanup runs: `rmforge ui` stops dagster dev and the embedded LLM server, `rmforge run`
    its LLM server, instead of dying on the spot and leaving them running."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _sigterm_as_ctrl_c()
    try:
        return args.handler(args)
    except KeyboardInterrupt as stop:
        print(f"rmforge {args.command}: {stop or 'interrupted'}; stopped", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
