"""A benchmark check: flag a model whose report dropped against its previous report."""

import dagster as dg

from rm_assets.benchmarks.assets import REPORT_ASSETS, DropConfig
from rm_resources.warehouse import WarehouseResource


def _regression_check(asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    name = asset.key.to_user_string()

    @dg.asset_check(asset=asset, name="no_regression_since_previous_report", partitions_def=asset.partitions_def)
    def _check(
        context: dg.AssetCheckExecutionContext, config: DropConfig, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        return regression_result(warehouse.get_store().recent_summaries(name, str(context.partition_key)), config)

    return _check


def regression_result(summaries: list[dict], config: DropConfig) -> dg.AssetCheckResult:
    """Flag a report whose metrics dropped by more than `max_drop` against the previous report."""
    from rm_rewards.benchmarks.report_render import detect_drops

    if len(summaries) < 2:
        return dg.AssetCheckResult(passed=True, metadata={"compared": "no previous report yet"})
    current, previous = summaries[0], summaries[1]
    drops = detect_drops(previous, current, config.max_drop)
    return dg.AssetCheckResult(
        passed=not drops,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "max_drop": config.max_drop,
            "drops": dg.MetadataValue.json([d.model_dump() for d in drops]),
        },
    )


regression_checks = [_regression_check(asset) for asset in REPORT_ASSETS]
