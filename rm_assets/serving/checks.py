"""The promotion gate as a blocking check: a promotion that fails the gate stops the run."""

import dagster as dg

from rm_assets.serving.assets import served_model
from rm_resources.warehouse import WarehouseResource


def gate_result(latest: dict | None) -> dg.AssetCheckResult:
    """Fails when the latest decision is `blocked` (a candidate failed the gate); a forced override
    passes and says so."""
    import json

    if latest is None:
        return dg.AssetCheckResult(passed=True, metadata={"decision": "no promotion decided yet"})
    failures = json.loads(latest["decision_json"]).get("failures", [])
    return dg.AssetCheckResult(
        passed=latest["status"] != "blocked",
        severity=dg.AssetCheckSeverity.ERROR,
        description=latest["reason"],
        metadata={
            "status": latest["status"],
            "served": latest["served"] or "nothing",
            "candidate": latest["candidate"] or "none",
            "forced": bool(latest["forced"]),
            "failures": dg.MetadataValue.json(failures),
        },
    )


@dg.asset_check(asset=served_model, name="promotion_passes_gate", blocking=True)
def promotion_passes_gate(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    latest = warehouse.get_store().promotions(limit=1)
    return gate_result(latest[0] if latest else None)
