"""The `rmforge` command: `rmforge rewards list`, `rmforge run`, `rmforge ui`, `rmforge paths`."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
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
    from rm_rewards import registry

    rows = registry.specs(tag=args.tag, is_llm={"rule": False, "llm": True}.get(args.source))
    print(registry.format_table(rows))
    print(f"\n{len(rows)} rewards")
    return 0


def main_job_definition():
    """Module-level so `dg.reconstructable` can rebuild the job in each step process."""
    from dagster_project.definitions import defs

    return defs.resolve_job_def("main_job")


def train_job_definition():
    from dagster_project.definitions import defs

    return defs.resolve_job_def("train_job")


def benchmark_job_definition():
    from dagster_project.definitions import defs

    return defs.resolve_job_def("benchmark_job")


def _execute(instance, job_factory, partition: str, run_config: dict | None = None, assets=None) -> bool:
    import dagster as dg

    result = dg.execute_job(
        dg.reconstructable(job_factory),
        instance=instance,
        tags={"dagster/partition": partition},
        # Step-by-step events stay in the run history (the UI); the console shows INFO and up.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})},
        asset_selection=assets,
    )
    print(f"  run {result.run_id}: {'success' if result.success else 'FAILED'}", flush=True)
    return result.success


def _train_default(instance, warehouse, *, retrain: bool) -> str | None:
    """Train the default checkpoint once per (config, data version); a finished run is skipped.
    Returns the training run key, or None when training failed."""
    from rm_assets.checkpoints.assets import TrainingRunConfig, training_data_versions, training_run_key

    config = TrainingRunConfig()
    key = training_run_key(config, training_data_versions(warehouse, config.datasets))
    if not retrain and warehouse.count_by_partition("rm_checkpoints").get(key):
        print(f"checkpoint {key} already trained on this data and config; skipping (--retrain to redo)")
        return key
    instance.add_dynamic_partitions("training_runs", [key])
    print(f"training reward model {key} on {', '.join(config.datasets)} ...", flush=True)
    ok = _execute(instance, train_job_definition, key, {"ops": {"rm_checkpoints": {"config": config.model_dump()}}})
    return key if ok else None


def _benchmark(instance, models: list[str]) -> list[str]:
    """Register the models and report each on every benchmark; returns the failed partitions."""
    import dagster as dg

    from rm_assets.partitions import BENCHMARKS

    instance.add_dynamic_partitions("evaluated_models", models)
    failed = []
    for model in models:
        for benchmark in BENCHMARKS:
            partition = dg.MultiPartitionKey({"benchmark": benchmark, "model": model})
            print(f"benchmark_reports {partition} ...", flush=True)
            if not _execute(instance, benchmark_job_definition, partition):
                failed.append(str(partition))
    return failed


def _run(args: argparse.Namespace) -> int:
    ensure_dagster_home()
    import dagster as dg

    from rm_assets.partitions import DATASETS
    from rm_resources.warehouse import TABLES, Warehouse, default_database

    partitions = args.partition or list(DATASETS)
    unknown = sorted(set(partitions) - set(DATASETS))
    if unknown:
        print(f"unknown partitions {unknown}; known: {', '.join(DATASETS)}", file=sys.stderr)
        return 2
    warehouse = Warehouse(default_database())
    # Without the LLM: only the data and rule-scoring assets of the main job.
    assets = [dg.AssetKey(k) for k in ("raw_rows", "converted_samples", "rule_scores")] if args.skip_llm else None
    failed = []
    llm = contextlib.nullcontext() if args.skip_llm else _embedded_llm()
    with llm, dg.DagsterInstance.get() as instance:
        for partition in partitions:
            print(f"materializing main_job for partition {partition} ...", flush=True)
            if not _execute(instance, main_job_definition, partition, assets=assets):
                failed.append(partition)
        run_key = None
        if not args.skip_training and not failed:
            run_key = _train_default(instance, warehouse, retrain=args.retrain)
            failed += [] if run_key else ["training"]
        if not args.skip_benchmarks and not failed:
            from rm_assets.benchmarks.assets import default_models

            models = [m for m in default_models() if not (args.skip_llm and m.startswith("judge:"))]
            failed += _benchmark(instance, models + ([f"checkpoint:{run_key}"] if run_key else []))
    print(f"\nDuckDB warehouse: {warehouse.database}")
    for table in TABLES:
        counts = warehouse.count_by_partition(table)
        print(f"  {table}: " + (", ".join(f"{k}={v}" for k, v in counts.items()) or "no rows"))
    print(f"Dagster run history (DAGSTER_HOME): {os.environ['DAGSTER_HOME']}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _embedded_llm():
    """Start the embedded llama.cpp server for the step processes, unless an endpoint is configured."""
    from rm_resources.embedded_llm import embedded_llm_environment
    from rm_resources.warehouse import default_data_dir

    default_data_dir().mkdir(parents=True, exist_ok=True)
    if not os.environ.get("RMFORGE_LLM_BASE_URL"):
        print(f"starting the embedded LLM server (log: {default_data_dir() / 'llm_server.log'}) ...", flush=True)
    return embedded_llm_environment(log_path=default_data_dir() / "llm_server.log")


def _ui(args: argparse.Namespace) -> int:
    """`dagster dev` with the embedded LLM running beside it, both stopped together."""
    import subprocess

    ensure_dagster_home()
    with _embedded_llm():
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
        process = subprocess.Popen(command, cwd=PROJECT_ROOT)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            return process.wait()


def _paths(args: argparse.Namespace) -> int:
    from rm_resources.warehouse import default_data_dir, default_database

    print(f"data folder:      {default_data_dir()}")
    print(f"DuckDB warehouse: {default_database()}")
    print(f"DAGSTER_HOME:     {ensure_dagster_home()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmforge", description="Reward models as Dagster assets.")
    commands = parser.add_subparsers(dest="command", required=True)

    rewards = commands.add_parser("rewards", help="the reward registry")
    rewards_commands = rewards.add_subparsers(dest="rewards_command", required=True)
    listing = rewards_commands.add_parser("list", help="print every registered reward")
    listing.add_argument("--tag", help="only rewards with this area tag")
    listing.add_argument("--source", choices=["rule", "llm"], help="only rule-based or LLM rewards")
    listing.set_defaults(handler=_rewards_list)

    run = commands.add_parser("run", help="materialize the main job for every (or the given) partition")
    run.add_argument("--partition", action="append", help="a dataset partition (repeatable)")
    run.add_argument("--skip-training", action="store_true", help="do not train the default checkpoint")
    run.add_argument("--skip-llm", action="store_true", help="no LLM assets and no LLM judge benchmarks")
    run.add_argument("--skip-benchmarks", action="store_true", help="do not produce benchmark reports")
    run.add_argument("--retrain", action="store_true", help="train again even if this run key exists")
    run.set_defaults(handler=_run)

    ui = commands.add_parser("ui", help="dagster dev on workspace.yaml, with the embedded LLM server")
    ui.set_defaults(handler=_ui)

    paths = commands.add_parser("paths", help="where the warehouse and run history live")
    paths.set_defaults(handler=_paths)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
