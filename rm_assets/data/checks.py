"""Asset checks: data quality gates that stop bad data flowing downstream."""


import dagster as dg

from rm_assets.data.assets import converted_samples
from rm_assets.partitions import dataset_partitions
from rm_resources.warehouse import WarehouseResource


class QuarantineRateConfig(dg.Config):
    max_quarantine_rate: float = 0.05


def quarantine_rate(raw_rows: int, quarantined_rows: int) -> float:
    return quarantined_rows / raw_rows if raw_rows else 0.0


@dg.asset_check(asset=converted_samples, blocking=True, partitions_def=dataset_partitions)
def quarantine_rate_below_threshold(
    context: dg.AssetCheckExecutionContext, config: QuarantineRateConfig, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Blocks scoring when too many raw rows of the partition failed conversion."""
    stats = warehouse.get_store().quarantine_stats(context.partition_key)
    rate = quarantine_rate(stats["raw_rows"], stats["quarantined_rows"])
    return dg.AssetCheckResult(
        passed=rate <= config.max_quarantine_rate,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"quarantine_rate": round(rate, 4), "max_quarantine_rate": config.max_quarantine_rate, **stats},
    )
