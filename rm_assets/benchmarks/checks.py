"""A benchmark check: flag a model whose report dropped against its previous report."""

import json

import dagster as dg

from rm_assets.benchmarks.assets import benchmark_reports
from rm_assets.partitions import benchmark_partitions
from rm_resources.warehouse import WarehouseResource


class RegressionConfig(dg.Config):
    max_drop: float = 0.02  # a metric falling by more than this fails the check


@dg.asset_check(asset=benchmark_reports, partitions_def=benchmark_partitions)
def no_regression_since_previous_report(
    context: dg.AssetCheckExecutionContext, config: RegressionConfig, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    from rm_rewards.benchmarks.report import detect_drops

    frame = warehouse.get_warehouse().query(
        "SELECT summary_json FROM benchmark_summaries WHERE partition = ? ORDER BY created_at DESC LIMIT 2",
        [context.partition_key],
    )
    if len(frame) < 2:
        return dg.AssetCheckResult(passed=True, metadata={"compared": "no previous report yet"})
    current, previous = (json.loads(text) for text in frame["summary_json"])
    drops = detect_drops(previous, current, config.max_drop)
    return dg.AssetCheckResult(
        passed=not drops,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "max_drop": config.max_drop,
            "drops": dg.MetadataValue.json([d.model_dump() for d in drops]),
        },
    )
