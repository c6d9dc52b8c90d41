"""Environment profiles: which resources back the graph.

`RMFORGE_PROFILE=local` (default) runs everything embedded on one machine: bundled datasets, a
DuckDB file under the data folder. `RMFORGE_PROFILE=production` reads endpoints and locations
from the environment (`RMFORGE_DATABASE`, `RMFORGE_DATASET_MODE`, ...). Secrets are only ever
referenced through `dg.EnvVar`, so they never appear in run config or metadata.
"""

from __future__ import annotations

import os
from typing import Any

from rm_resources.datasets import DatasetSourceResource
from rm_resources.warehouse import WarehouseResource, default_database

PROFILES = ("local", "production")


def current_profile() -> str:
    profile = os.environ.get("RMFORGE_PROFILE", "local")
    if profile not in PROFILES:
        raise ValueError(f"RMFORGE_PROFILE={profile!r}: expected one of {', '.join(PROFILES)}")
    return profile


def resources_for(profile: str) -> dict[str, Any]:
    if profile == "local":
        return {
            "datasets": DatasetSourceResource(mode="bundled"),
            "warehouse": WarehouseResource(database=default_database()),
        }
    return {
        "datasets": DatasetSourceResource(mode=os.environ.get("RMFORGE_DATASET_MODE", "hub")),
        "warehouse": WarehouseResource(database=os.environ.get("RMFORGE_DATABASE", default_database())),
    }

