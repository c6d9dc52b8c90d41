"""Benchmark reports: one partition per (benchmark × evaluated model).

A model is a registry reward (`reward:<rule>`), an LLM judge (`judge:<name>`), the pointwise judge
with the principles learned on a dataset (`principles:<dataset>`), or a trained checkpoint
(`checkpoint:<training run>`). Per-response scores go to DuckDB, summary metrics to
the materialization's metadata, and a markdown report with a plot and the change since the
model's previous report renders in the Dagster UI.
"""

import json
import os

import dagster as dg

from rm_assets.checkpoints.assets import rm_checkpoints
from rm_assets.judging.assets import learned_principles, local_budget
from rm_assets.partitions import benchmark_partitions
from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.warehouse import WarehouseResource

# What the sensor registers for benchmarking besides every trained checkpoint: a rule, the LLM
# judge with its default principles, and the same judge with the principles learned on HelpSteer2.
DEFAULT_MODELS = ("reward:length_penalty", "judge:helpfulness_pointwise", "principles:helpsteer2")


def default_models() -> list[str]:
    configured = os.environ.get("RMFORGE_BENCHMARK_MODELS")
    return [m.strip() for m in configured.split(",") if m.strip()] if configured else list(DEFAULT_MODELS)


class BenchmarkConfig(dg.Config):
    # LLM judges on the embedded 135M model are slow: a spread-out subset of items locally.
    max_judge_items: int | None = local_budget(3)
    drop_threshold: float = 0.02


def spread_subset(items: list, limit: int | None) -> list:
    """`limit` items spread over the whole list (so every domain tends to appear), in order."""
    if limit is None or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _checkpoint_path(warehouse, run_key: str) -> str:
    frame = warehouse.query("SELECT path FROM rm_checkpoints WHERE run_key = ?", [run_key])
    if frame.empty:
        raise ValueError(f"no trained checkpoint {run_key!r} in the warehouse: materialize rm_checkpoints first")
    return frame["path"][0]


def _principles_judge(warehouse, dataset: str, client):
    """A pointwise judge with the principle set `auto_principles` learned for `dataset`."""
    from rm_rewards.judges import PointwiseJudge

    learned = learned_principles(warehouse, dataset)
    if learned is None:
        raise ValueError(f"no principle set for {dataset!r}: materialize auto_principles for it first")
    if not learned.principles:
        raise ValueError(f"the principle set for {dataset!r} is empty (no principle survived): nothing to evaluate")
    judge = PointwiseJudge(client=client, **learned.judge_params())
    return judge.named(f"principles_{learned.principle_set_id}")


def _previous_summary(warehouse, partition: str) -> dict | None:
    frame = warehouse.query(
        "SELECT summary_json FROM benchmark_summaries WHERE partition = ? ORDER BY created_at DESC LIMIT 1",
        [partition],
    )
    return None if frame.empty else json.loads(frame["summary_json"][0])


def _metadata_number(value):
    return round(value, 4) if isinstance(value, float) else value


@dg.asset(
    partitions_def=benchmark_partitions,
    deps=[dg.AssetDep(rm_checkpoints, partition_mapping=dg.AllPartitionMapping())],
    group_name="benchmarks",
    kinds={"duckdb"},
    code_version="1",
    description="RM-Bench / RewardBench 2 / RMB scored exactly as the benchmarks define it, per model.",
)
def benchmark_reports(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    datasets: DatasetSourceResource,
    warehouse: WarehouseResource,
    llm: LLMClientResource,
) -> dg.MaterializeResult:
    import functools

    import pandas as pd

    from rm_rewards.benchmarks import load_benchmark
    from rm_rewards.benchmarks.evaluate import evaluate, evaluate_model, model_from_key
    from rm_rewards.benchmarks.report import render_report

    keys = context.partition_key.keys_by_dimension
    benchmark, model_key = keys["benchmark"], keys["model"]
    partition = context.partition_key
    store = warehouse.get_warehouse()

    items = load_benchmark(benchmark, source="hub" if datasets.mode == "hub" else "bundled")
    client = None
    if model_key.startswith("principles:"):
        client = llm.get_client()
        before = client.stats.snapshot()
        judge = _principles_judge(store, model_key.split(":", 1)[1], client)
        items = spread_subset(items, config.max_judge_items)
        result = evaluate(benchmark, items, judge, model_key=model_key)
    elif model_key.startswith("checkpoint:"):
        from training.bt_trainer import score_samples

        checkpoint_path = _checkpoint_path(store, model_key.split(":", 1)[1])
        model = model_from_key(model_key, checkpoint_path=checkpoint_path)
        result = evaluate_model(
            benchmark, items, model, checkpoint_scorer=functools.partial(score_samples, checkpoint_path)
        )
    else:
        model = model_from_key(model_key)
        if model.is_llm:
            client = llm.get_client()
            before = client.stats.snapshot()
            items = spread_subset(items, config.max_judge_items)
        result = evaluate_model(benchmark, items, model, client=client)

    previous = _previous_summary(store, partition)
    report = render_report(result, previous_summary=previous, drop_threshold=config.drop_threshold)
    summary = result.summary()

    rows = pd.DataFrame([row.model_dump() for row in result.scores]).assign(
        benchmark=benchmark, model_key=model_key, run_id=context.run_id
    )
    store.replace_partition("benchmark_scores", partition, rows)
    store.append(
        "benchmark_summaries",
        partition,
        pd.DataFrame([{
            "benchmark": benchmark, "model_key": model_key, "headline": result.headline,
            "summary_json": json.dumps(summary), "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            "run_id": context.run_id,
        }]),
    )
    usage = (client.stats.snapshot() - before).as_metadata() if client else {}
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(report),
            "headline_metric": result.headline_metric,
            **({"headline": round(result.headline, 4)} if result.headline is not None else {}),
            **{f"metric/{k}": _metadata_number(v) for k, v in summary.items() if v is not None},
            "items": len(items),
            "dagster/row_count": len(rows),
            "dagster/table_name": "benchmark_scores",
            **usage,
        }
    )
