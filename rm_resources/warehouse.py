"""The warehouse resource: where the DuckDB database lives, and the typed store over it."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from rm_resources.store import Store


def default_data_dir() -> Path:
    """Where run-time files live: $RMFORGE_DATA_DIR, else ./data under the working directory."""
    return Path(os.environ.get("RMFORGE_DATA_DIR") or Path.cwd() / "data").resolve()


def default_database() -> str:
    return str(default_data_dir() / "rmforge.duckdb")


class WarehouseResource(dg.ConfigurableResource):
    """The project's DuckDB warehouse. `database` is a file path, or `md:<db>` for MotherDuck."""

    database: str = Field(default_factory=default_database, description="DuckDB file path or md:<db>")
    lock_timeout_s: float = Field(default=600.0, description="How long a step waits for another writer")

    def get_store(self) -> Store:
        return Store(self.database, lock_timeout_s=self.lock_timeout_s)


__all__ = ["WarehouseResource", "default_data_dir", "default_database"]
