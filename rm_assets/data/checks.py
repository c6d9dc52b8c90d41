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
    dataset = context.partition_key
    frame = warehouse.get_warehouse().query(
        """
        SELECT
          (SELECT count(*) FROM raw_rows WHERE "partition" = ?) AS raw_rows,
          (SELECT count(DISTINCT row_index) FROM quarantine
            WHERE "partition" = ? AND asset = 'converted_samples') AS quarantined_rows,
          (SELECT string_agg(DISTINCT field, ', ') FROM quarantine
            WHERE "partition" = ? AND asset = 'converted_samples') AS fields
        """,
        [dataset, dataset, dataset],
    )
    raw, quarantined = int(frame["raw_rows"][0]), int(frame["quarantined_rows"][0])
    rate = quarantine_rate(raw, quarantined)
    return dg.AssetCheckResult(
        passed=rate <= config.max_quarantine_rate,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "quarantine_rate": round(rate, 4),
            "max_quarantine_rate": config.max_quarantine_rate,
            "raw_rows": raw,
            "quarantined_rows": quarantined,
            "quarantined_fields": frame["fields"][0] or "",
        },
    )
