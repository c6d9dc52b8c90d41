"""The DuckDB warehouse: one writer at a time, partitions replaced atomically.

DuckDB lets one process hold a database file open for writing, and no other process may even read
it meanwhile. Dagster runs each step in its own process and backfills in parallel runs, so every
access here is short and serialised across processes by a file lock beside the database:
compute first, then take the lock, open, write in one transaction, close. Two partitions
materialised in parallel runs both land; a reader waits for a writer instead of failing.

A MotherDuck database (``md:...``) is a server and needs no local lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from rm_rewards.schema import SAMPLE_COLUMNS

# One row per sample × reward: per-response values as aligned lists (rm_rewards.scoring.result_to_row).
_SCORE_COLUMNS: dict[str, str] = {
    "partition": "VARCHAR",
    "sample_id": "VARCHAR",
    "reward_name": "VARCHAR",
    "reward_version": "VARCHAR",
    "scores": "DOUBLE[]",
    "reasons": "VARCHAR[]",
    "response_errors": "VARCHAR[]",
    "error": "VARCHAR",
    "input_hash": "VARCHAR",
}

# Every table the project writes, with its columns. `partition` is the Dagster partition key the
# rows belong to; re-materialising a partition replaces exactly those rows.
TABLES: dict[str, dict[str, str]] = {
    "raw_rows": {
        "partition": "VARCHAR",
        "row_index": "INTEGER",
        "row_json": "VARCHAR",
        "row_hash": "VARCHAR",
        "run_id": "VARCHAR",
    },
    "converted_samples": {"partition": "VARCHAR", **SAMPLE_COLUMNS, "run_id": "VARCHAR"},
    "quarantine": {
        "partition": "VARCHAR",
        "asset": "VARCHAR",
        "row_index": "INTEGER",
        "field": "VARCHAR",
        "reason": "VARCHAR",
        "row_json": "VARCHAR",
        "run_id": "VARCHAR",
    },
    "rule_scores": {**_SCORE_COLUMNS, "run_id": "VARCHAR"},
    # The principle sets learned per dataset partition (latest one is used by the judges).
    "principle_sets": {
        "partition": "VARCHAR",
        "principle_set_id": "VARCHAR",
        "scenario": "VARCHAR",
        "principles_json": "VARCHAR",
        "provenance_json": "VARCHAR",
        "model": "VARCHAR",
        "run_id": "VARCHAR",
    },
    "llm_scores": {
        **_SCORE_COLUMNS,
        "principle_set_id": "VARCHAR",
        "model": "VARCHAR",
        "run_id": "VARCHAR",
    },
    # Every refinement round of every refined response (round 0 is the original).
    "refined_samples": {
        "partition": "VARCHAR",
        "sample_id": "VARCHAR",
        "source_sample_id": "VARCHAR",
        "round": "INTEGER",
        "response_json": "VARCHAR",
        "score": "DOUBLE",
        "critique": "VARCHAR",
        "error": "VARCHAR",
        "is_best": "BOOLEAN",
        "stop_reason": "VARCHAR",
        "judge": "VARCHAR",
        "run_id": "VARCHAR",
    },
    # Per-response benchmark scores of one (benchmark × model) partition.
    "benchmark_scores": {
        "partition": "VARCHAR",
        "benchmark": "VARCHAR",
        "model_key": "VARCHAR",
        "item_id": "VARCHAR",
        "domain": "VARCHAR",
        "response_index": "INTEGER",
        "is_correct": "BOOLEAN",
        "score": "DOUBLE",
        "error": "VARCHAR",
        "status": "VARCHAR",
        "run_id": "VARCHAR",
    },
    # Append-only history of report summaries: the previous report of a model is the row before.
    "benchmark_summaries": {
        "partition": "VARCHAR",
        "benchmark": "VARCHAR",
        "model_key": "VARCHAR",
        "headline": "DOUBLE",
        "summary_json": "VARCHAR",
        "created_at": "TIMESTAMP",
        "run_id": "VARCHAR",
    },
    # One row per training run (partition = run key), so benchmarks find checkpoints by key.
    "rm_checkpoints": {
        "partition": "VARCHAR",
        "run_key": "VARCHAR",
        "path": "VARCHAR",
        "datasets": "VARCHAR",
        "train_pairs": "INTEGER",
        "eval_pairs": "INTEGER",
        "baseline_eval_accuracy": "DOUBLE",
        "final_eval_accuracy": "DOUBLE",
        "config_json": "VARCHAR",
        "data_versions_json": "VARCHAR",
        "run_id": "VARCHAR",
    },
}


def default_data_dir() -> Path:
    """Where run-time files live: $RMFORGE_DATA_DIR, else ./data under the working directory."""
    return Path(os.environ.get("RMFORGE_DATA_DIR") or Path.cwd() / "data").resolve()


def default_database() -> str:
    return str(default_data_dir() / "rmforge.duckdb")


class WarehouseBusy(TimeoutError):
    pass


class Warehouse:
    """Serialised, short-lived access to one DuckDB database."""

    def __init__(self, database: str, *, lock_timeout_s: float = 600.0):
        self.database = database
        self.lock_timeout_s = lock_timeout_s
        self._is_local = not database.startswith("md:") and database != ":memory:"
        if self._is_local:
            Path(database).parent.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        if not self._is_local:
            yield
            return
        import filelock

        lock = filelock.FileLock(self.database + ".lock")
        try:
            lock.acquire(timeout=self.lock_timeout_s)
        except filelock.Timeout as exc:
            raise WarehouseBusy(
                f"another process held the warehouse lock {self.database}.lock for more than "
                f"{self.lock_timeout_s:.0f}s"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        """An open connection under the cross-process lock; every table exists."""
        import duckdb

        with self._lock():
            connection = duckdb.connect(self.database)
            try:
                for table, columns in TABLES.items():
                    connection.execute(_create_table_sql(table, columns))
                yield connection
            finally:
                connection.close()

    def replace_partition(
        self, table: str, partition: str, frame, *, where: Mapping[str, str] | None = None
    ) -> int:
        """Delete the partition's rows (narrowed by `where`) and insert `frame`, in one transaction.

        Either the new rows are all there or the old ones still are: a failure rolls back.
        """
        self.replace_partitions([(table, partition, frame, where)])
        return len(frame)

    def replace_partitions(self, writes: list[tuple[str, str, Any, Mapping[str, str] | None]]) -> None:
        """Several partition replacements in one transaction (e.g. samples and their quarantine)."""
        with self.connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                for table, partition, frame, where in writes:
                    frame = _shaped(table, partition, frame)
                    conditions = {"partition": partition, **(where or {})}
                    where_sql = " AND ".join(f'"{c}" = ?' for c in conditions)
                    connection.execute(f'DELETE FROM "{table}" WHERE {where_sql}', list(conditions.values()))
                    connection.register("incoming_rows", frame)
                    connection.execute(f'INSERT INTO "{table}" SELECT * FROM incoming_rows')
                    connection.unregister("incoming_rows")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def append(self, table: str, partition: str, frame) -> int:
        """Insert rows without replacing anything (history tables)."""
        frame = _shaped(table, partition, frame)
        with self.connect() as connection:
            connection.register("incoming_rows", frame)
            connection.execute(f'INSERT INTO "{table}" SELECT * FROM incoming_rows')
            connection.unregister("incoming_rows")
        return len(frame)

    def query(self, sql: str, params: list[Any] | None = None):
        """Run a read query and return a pandas DataFrame; list columns come back as Python lists
        (DuckDB hands out numpy masked arrays, whose NULLs are easy to misread as numbers)."""
        with self.connect() as connection:
            frame = connection.execute(sql, params or []).df()
        for column in frame.columns:
            if frame[column].dtype == object and frame[column].map(_is_array).any():
                frame[column] = frame[column].map(lambda v: v.tolist() if _is_array(v) else v)
        return frame

    def read_partition(self, table: str, partition: str, *, order_by: str | None = None):
        order = f' ORDER BY "{order_by}"' if order_by else ""
        return self.query(f'SELECT * FROM "{table}" WHERE "partition" = ?{order}', [partition])

    def count_by_partition(self, table: str) -> dict[str, int]:
        frame = self.query(f'SELECT "partition", count(*) AS n FROM "{table}" GROUP BY 1 ORDER BY 1')
        return dict(zip(frame["partition"], frame["n"].astype(int)))


def _shaped(table: str, partition: str, frame):
    """The frame with the partition column added and the table's columns in order."""
    columns = TABLES[table]
    missing = [c for c in columns if c != "partition" and c not in frame.columns]
    if missing:
        raise ValueError(f"rows for {table} lack columns {missing}")
    return frame.assign(partition=partition)[list(columns)]


def _is_array(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray)


def _create_table_sql(table: str, columns: Mapping[str, str]) -> str:
    body = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns.items())
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({body})'


def table_columns(table: str) -> list[str]:
    """The columns a caller provides for `table` (the warehouse adds `partition`)."""
    return [column for column in TABLES[table] if column != "partition"]


def table_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, sql_type) for name, sql_type in TABLES[table].items()])


class WarehouseResource(dg.ConfigurableResource):
    """The project's DuckDB warehouse. `database` is a file path, or `md:<db>` for MotherDuck."""

    database: str = Field(default_factory=default_database, description="DuckDB file path or md:<db>")
    lock_timeout_s: float = Field(default=600.0, description="How long a step waits for another writer")

    def get_warehouse(self) -> Warehouse:
        return Warehouse(self.database, lock_timeout_s=self.lock_timeout_s)


__all__ = ["TABLES", "Warehouse", "WarehouseBusy", "WarehouseResource", "default_data_dir", "table_schema"]

