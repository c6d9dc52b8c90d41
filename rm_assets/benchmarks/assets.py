"""Benchmark reports and the leaderboard.

A report scores one model on one benchmark. Three assets, by what the model depends on, so the
lineage says exactly what each number used:

- `benchmark_reports` (benchmark × training run): a trained checkpoint, downstream of that run's
  `rm_checkpoints` partition only;
- `principles_benchmark_reports` (benchmark × dataset): the pointwise LLM judge with the principles
  `auto_principles` learned on that dataset (the default principles, said so, when none survived);
- `baseline_benchmark_reports` (benchmark × model key): rule rewards (`reward:<rule>`) and LLM judges
  with their default principles (`judge:<name>`), which use no upstream asset.

Per-response scores go to DuckDB, summary metrics to the materialization's metadata, and a markdown
report with a plot and the change since the model's previous report renders in the Dagster UI.
`leaderboard` puts every evaluated model × every benchmark in one table.

Items come from the benchmark's source (`DatasetSourceResource.benchmark_source`: configured
`benchmark_files`, the hub in hub mode, or the bundled sample). JudgeBench has no bundled rows:
materializing a judge_bench partition without a configured source fails with how to configure one.
A report whose headline lacks some of its parts (`rm_rewards.benchmarks.report_models`) has status
`partial` and no `headline` in its metadata, only `partial_headline` and `headline_parts`.
"""

import dagster as dg
from pydantic import Field

from rm_assets.checkpoints.assets import rm_checkpoints
from rm_assets.judging.assets import BUDGET_NOTE, auto_principles
from rm_assets.metadata import table_metadata
from rm_assets.partitions import (
    baseline_report_partitions,
    checkpoint_report_partitions,
    principles_report_partitions,
)
from rm_assets.versions import code_version
from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.warehouse import WarehouseResource
from rm_rewards.benchmarks.report_render import DEFAULT_MAX_DROP

_BENCHMARK_CODE = ("rm_assets.benchmarks.assets", "rm_rewards.benchmarks", "rm_rewards.core.kinds", "rm_rewards.core.schema")

# The baseline models the sensor registers (besides every trained checkpoint) are a setting,
# RMFORGE_BENCHMARK_MODELS (dagster_project.settings; default a rule and the LLM judge with its
# default principles). The judge with learned principles is principles_benchmark_reports.

# LLM judges on the embedded 135M model are slow: a spread-out subset of items on the small budget.
JUDGE_ITEMS_SMALL = 2


class DropConfig(dg.Config):
    """The one knob for "how much may a metric fall": both the report's "Change since" verdict and the
    no_regression_since_previous_report check take it (each from its own run config)."""

    max_drop: float = Field(
        default=DEFAULT_MAX_DROP, ge=0,
        description="A metric that falls by more than this against the model's previous report on the same "
        "benchmark is a drop, in the metric's own units (0.02 on an accuracy is 2 points): the report "
        "lists it, and the no_regression_since_previous_report check fails (a warning).",
    )


class BenchmarkConfig(DropConfig):
    max_judge_items: int | None = Field(default=None, description="Items an LLM judge scores; "
                                        + BUDGET_NOTE.format(small=JUDGE_ITEMS_SMALL))


def spread_subset(items: list, limit: int | None) -> list:
    """`limit` items spread over the whole list (so every domain tends to appear), in order."""
    if limit is None or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _metadata_number(value):
    return round(value, 4) if isinstance(value, float) else value


def _status_and_note(result, notes: list[str]) -> tuple[str, str]:
    """'scored'; 'partial' (with the parts) when the headline lacks some of its parts; or
    'not_applicable' with the reasons when no item could be scored."""
    if result.is_partial:
        parts = f"partial {result.headline_metric}: {result.headline_coverage.describe()}"
        return "partial", "; ".join([*notes, parts])
    if result.headline is None:
        reasons = "; ".join(f"{reason} ({n} items)" for reason, n in result.not_applicable_reasons.items())
        return "not_applicable", "; ".join([*notes, reasons or "no headline metric for this model"])
    return "scored", "; ".join(notes)


def _report(
    context: dg.AssetExecutionContext,
    asset: str,
    store,
    result,
    *,
    config: BenchmarkConfig,
    notes: list[str],
    items: int,
    usage: dict,
    source: str,
    checkpoint_path: str | None = None,
) -> dg.MaterializeResult:
    """Store a result, render its report against the previous one, and describe it as metadata."""
    from rm_assets.lineage import audit
    from rm_rewards.benchmarks.report_render import render_report

    partition = str(context.partition_key)
    previous = store.recent_summaries(asset, partition, limit=1)
    report = render_report(result, previous_summary=previous[0] if previous else None,
                           max_drop=config.max_drop)
    status, note = _status_and_note(result, notes)
    rows = store.write_benchmark_report(asset, partition, result, status=status, note=note,
                                        run_id=context.run_id, checkpoint_path=checkpoint_path)
    chain = audit(context.instance, store, asset, partition, limit=5, current_run_id=context.run_id)
    summary = result.summary()
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(report),
            "model_key": result.model_key,
            "status": status,
            **({"note": note} if note else {}),
            "headline_metric": result.headline_metric,
            **({"headline": round(result.headline, 4)} if result.headline is not None else {}),
            **({"partial_headline": round(result.partial_headline, 4)} if result.partial_headline is not None else {}),
            **({"headline_parts": result.headline_coverage.describe()} if result.headline_coverage else {}),
            "benchmark_source": source,
            **{f"metric/{k}": _metadata_number(v) for k, v in summary.items() if v is not None},
            "items": items,
            "lineage": dg.MetadataValue.md(chain.to_markdown()),
            **({"checkpoint_path": dg.MetadataValue.path(checkpoint_path)} if checkpoint_path else {}),
            "dagster/row_count": len(rows),
            "dagster/table_name": "benchmark_scores",
            **usage,
        }
    )


def _dimensions(context: dg.AssetExecutionContext) -> dict[str, str]:
    """The report's partition by dimension (a run launched with only the string key gives a str)."""
    key = context.partition_key
    if not isinstance(key, dg.MultiPartitionKey):
        key = context.assets_def.partitions_def.get_partition_key_from_str(str(key))
    return key.keys_by_dimension


def _items(datasets: DatasetSourceResource, benchmark: str) -> tuple[list, str]:
    """The benchmark's items and a one-line description of their source. No configured source
    (JudgeBench by default) is an error saying how to configure one: never an empty report."""
    from rm_rewards.benchmarks.loaders import NoBenchmarkSource

    try:
        source = datasets.benchmark_source(benchmark)
    except NoBenchmarkSource as problem:
        raise NoBenchmarkSource(f"cannot report {benchmark}: {problem}") from None
    return datasets.load_benchmark_items(benchmark), source.describe()


@dg.asset(
    partitions_def=checkpoint_report_partitions,
    deps=[dg.AssetDep(rm_checkpoints, partition_mapping=dg.MultiToSingleDimensionPartitionMapping("run"))],
    group_name="benchmarks",
    kinds={"duckdb"},
    code_version=code_version(*_BENCHMARK_CODE, "training.bt_scoring", "training.bt_trainer"),
    description="A trained checkpoint scored on RM-Bench / RewardBench 2 / RMB / JudgeBench exactly as each benchmark "
    "defines it; per-item scores, summary metrics and a report with the change since the previous one.",
)
def benchmark_reports(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    datasets: DatasetSourceResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    import functools

    from rm_rewards.benchmarks.evaluate import evaluate_model
    from rm_rewards.benchmarks.model_keys import CheckpointModel
    from training.bt_scoring import score_with_checkpoint

    keys = _dimensions(context)
    benchmark, run_key = keys["benchmark"], keys["run"]
    store = warehouse.get_store()
    checkpoint = store.checkpoint(run_key)
    if checkpoint is None:
        raise ValueError(f"no trained checkpoint {run_key!r} in the warehouse: materialize rm_checkpoints first")
    items, source = _items(datasets, benchmark)
    model = CheckpointModel(run_id=run_key, path=checkpoint["path"])
    result = evaluate_model(
        benchmark, items, model, checkpoint_scorer=functools.partial(score_with_checkpoint, checkpoint["path"])
    )
    return _report(context, "benchmark_reports", store, result, config=config, notes=[], items=len(items),
                   usage={"checkpoint_run_id": checkpoint["run_id"]}, source=source,
                   checkpoint_path=checkpoint["path"])


@dg.asset(
    partitions_def=principles_report_partitions,
    deps=[dg.AssetDep(auto_principles, partition_mapping=dg.MultiToSingleDimensionPartitionMapping("dataset"))],
    group_name="benchmarks",
    kinds={"openai", "duckdb"},
    pool="llm",
    code_version=code_version(*_BENCHMARK_CODE, "rm_rewards.judging.judges", "rm_rewards.judging.alignment", "rm_rewards.judging.templates", "rm_rewards.judging.principles"),
    description="The pointwise LLM judge with the principles auto_principles learned on a dataset, on every "
    "benchmark (the default principles, said so, when no principle survived).",
)
def principles_benchmark_reports(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    datasets: DatasetSourceResource,
    warehouse: WarehouseResource,
    llm: LLMClientResource,
) -> dg.MaterializeResult:
    from rm_rewards.benchmarks.evaluate import evaluate
    from rm_rewards.benchmarks.model_keys import PrinciplesModel

    keys = _dimensions(context)
    benchmark, dataset = keys["benchmark"], keys["dataset"]
    store = warehouse.get_store()
    principle_set = store.read_principle_set(dataset)
    if principle_set is None:
        raise ValueError(f"no principle set for {dataset!r}: materialize auto_principles for it first")
    all_items, source = _items(datasets, benchmark)
    client = llm.get_client()
    before = client.stats.snapshot()
    model = PrinciplesModel(dataset=dataset)
    built = model.build(client, principle_set.scenario, principle_set.principles, principle_set_id=principle_set.id)
    items = spread_subset(all_items, llm.items(config.max_judge_items, small=JUDGE_ITEMS_SMALL))
    result = evaluate(benchmark, items, built.judge, model_key=model.key)
    notes = [] if built.principles_source == "learned" else [f"principles: {built.principles_source}"]
    usage = {**built.metadata(), **(client.stats.snapshot() - before).as_metadata()}
    return _report(context, "principles_benchmark_reports", store, result, config=config, notes=notes,
                   items=len(items), usage=usage, source=source)


@dg.asset(
    partitions_def=baseline_report_partitions,
    group_name="benchmarks",
    kinds={"duckdb"},
    code_version=code_version(*_BENCHMARK_CODE, "rm_rewards.rules", "rm_rewards.judging.judges", "rm_rewards.judging.alignment", "rm_rewards.judging.templates", "rm_rewards.core.registry"),
    description="Baselines on every benchmark: registry rule rewards (reward:<rule>) and LLM judges with "
    "their default principles (judge:<name>); they use no upstream asset.",
)
def baseline_benchmark_reports(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    datasets: DatasetSourceResource,
    warehouse: WarehouseResource,
    llm: LLMClientResource,
) -> dg.MaterializeResult:
    from rm_rewards.benchmarks.evaluate import evaluate_model
    from rm_rewards.benchmarks.model_keys import RewardModel, model_from_key

    keys = _dimensions(context)
    benchmark, model_key = keys["benchmark"], keys["model"]
    model = model_from_key(model_key)
    if not isinstance(model, RewardModel):
        raise ValueError(
            f"{model_key!r} is not a rule or judge key: checkpoints are benchmark_reports partitions and "
            "principle judges principles_benchmark_reports partitions"
        )
    store = warehouse.get_store()
    items, source = _items(datasets, benchmark)
    client = usage = None
    if model.is_llm:
        client = llm.get_client()
        before = client.stats.snapshot()
        items = spread_subset(items, llm.items(config.max_judge_items, small=JUDGE_ITEMS_SMALL))
    result = evaluate_model(benchmark, items, model, client=client)
    usage = (client.stats.snapshot() - before).as_metadata() if client else {}
    return _report(context, "baseline_benchmark_reports", store, result, config=config, notes=[],
                   items=len(items), usage=usage, source=source)


REPORT_ASSETS = (benchmark_reports, principles_benchmark_reports, baseline_benchmark_reports)


@dg.asset(
    deps=[dg.AssetDep(asset, partition_mapping=dg.AllPartitionMapping()) for asset in REPORT_ASSETS],
    group_name="benchmarks",
    kinds={"duckdb"},
    code_version=code_version(*_BENCHMARK_CODE, "rm_rewards.benchmarks.leaderboard"),
    description="Every evaluated model × every benchmark, from each pair's latest report: one DuckDB table "
    "and one markdown table with a plot; models or benchmarks that do not apply show as such.",
)
def leaderboard(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, datasets: DatasetSourceResource
) -> dg.MaterializeResult:
    from rm_assets.partitions import BENCHMARKS
    from rm_rewards.benchmarks.leaderboard import (
        build_leaderboard,
        leaderboard_benchmarks,
        leaderboard_markdown,
    )
    from rm_rewards.benchmarks.loaders import BUNDLED_FILES

    store = warehouse.get_store()
    reports = store.latest_reports()
    shown, left_out = leaderboard_benchmarks(reports, BENCHMARKS, always_shown=BUNDLED_FILES)
    entries = build_leaderboard(reports, shown)
    frame = store.write_leaderboard(entries, context.run_id)
    _, no_source = datasets.benchmark_sources(left_out)
    reasons = {b: f"no report yet; {no_source.get(b, 'its source is configured, but nothing has been reported')}"
               for b in left_out}
    markdown = leaderboard_markdown(entries, shown)
    if reasons:
        markdown += "\n\nNot on the leaderboard:\n" + "\n".join(f"- {b}: {why}" for b, why in reasons.items())
    return dg.MaterializeResult(
        metadata=table_metadata(
            "leaderboard",
            frame,
            models=len({e.model_key for e in entries}),
            benchmarks=", ".join(shown),
            **({"benchmarks_left_out": dg.MetadataValue.json(reasons)} if reasons else {}),
            leaderboard=dg.MetadataValue.md(markdown),
        )
    )
