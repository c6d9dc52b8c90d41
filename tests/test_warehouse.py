"""The warehouse: atomic partition replacement and many processes sharing one DuckDB file."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest

from rm_resources.store import Store


def _raw_frame(n: int, tag: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_index": list(range(n)),
            "row_json": [f'{{"tag": "{tag}", "i": {i}}}' for i in range(n)],
            "row_hash": [f"{tag}-{i}" for i in range(n)],
            "run_id": [tag] * n,
        }
    )


def test_replace_partition_replaces_exactly_that_partition(tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    store.replace_partition("raw_rows", "a", _raw_frame(3, "a1"))
    store.replace_partition("raw_rows", "b", _raw_frame(2, "b1"))
    store.replace_partition("raw_rows", "a", _raw_frame(4, "a2"))

    assert store.count_by_partition("raw_rows") == {"a": 4, "b": 2}
    a_rows = store.read_partition("raw_rows", "a", order_by="row_index")
    assert set(a_rows["run_id"]) == {"a2"}


def test_failed_write_rolls_back_and_keeps_old_rows(tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    store.replace_partition("raw_rows", "a", _raw_frame(3, "old"))
    bad = _raw_frame(2, "new").assign(row_index=["not-an-int", "x"])
    with pytest.raises(Exception):
        store.replace_partition("raw_rows", "a", bad)
    assert store.count_by_partition("raw_rows") == {"a": 3}
    assert set(store.read_partition("raw_rows", "a")["run_id"]) == {"old"}


def test_missing_columns_are_a_clear_error(tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    with pytest.raises(ValueError, match="row_hash"):
        store.replace_partition("raw_rows", "a", _raw_frame(1, "x").drop(columns=["row_hash"]))


def test_where_narrows_replacement_within_partition(tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    rows = lambda asset: pd.DataFrame(  # noqa: E731
        {"asset": [asset], "row_index": [0], "field": ["f"], "reason": ["r"], "row_json": ["{}"], "run_id": ["1"]}
    )
    store.replace_partition("quarantine", "p", rows("one"), where={"asset": "one"})
    store.replace_partition("quarantine", "p", rows("two"), where={"asset": "two"})
    store.replace_partition("quarantine", "p", rows("one"), where={"asset": "one"})
    assert sorted(store.read_partition("quarantine", "p")["asset"]) == ["one", "two"]


def _writer(database: str, partition: str, rounds: int) -> None:
    store = Store(database)
    for round_ in range(rounds):
        store.replace_partition("raw_rows", partition, _raw_frame(50, f"{partition}-{round_}"))
        store.count_by_partition("raw_rows")  # readers interleave with other writers


def test_parallel_processes_writing_different_partitions_all_land(tmp_path):
    database = str(tmp_path / "w.duckdb")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(database, p, 5)) for p in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = Store(database)
    assert store.count_by_partition("raw_rows") == {"a": 50, "b": 50, "c": 50}
    for partition in ("a", "b", "c"):
        assert set(store.read_partition("raw_rows", partition)["run_id"]) == {f"{partition}-4"}


def test_lock_timeout_names_the_lock(tmp_path):
    import filelock

    from rm_resources.store import WarehouseBusy

    database = str(tmp_path / "w.duckdb")
    holder = filelock.FileLock(database + ".lock")
    holder.acquire()
    try:
        store = Store(database, lock_timeout_s=0.2)
        with pytest.raises(WarehouseBusy, match=r"w\.duckdb\.lock"):
            store.count_by_partition("raw_rows")
    finally:
        holder.release()


def test_identifiers_reach_sql_only_when_known(tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    with pytest.raises(ValueError, match="unknown table"):
        store.count_by_partition("raw_rows; DROP TABLE rule_scores; --")
    with pytest.raises(ValueError, match="no columns"):
        store.replace_partition("quarantine", "p", pd.DataFrame(), where={"asset' OR 1=1 --": "x"})
    # A partition key is a parameter: stored and found literally.
    hostile = "x'; DROP TABLE rule_scores; --"
    store.replace_partition("raw_rows", hostile, _raw_frame(1, "h"))
    assert store.count_by_partition("raw_rows") == {hostile: 1}


def test_a_table_from_an_older_schema_is_a_clear_error(tmp_path):
    import duckdb

    database = str(tmp_path / "w.duckdb")
    connection = duckdb.connect(database)
    connection.execute('CREATE TABLE raw_rows ("partition" VARCHAR, row_index INTEGER)')
    connection.close()
    with pytest.raises(RuntimeError, match="older rmforge"):
        Store(database).count_by_partition("raw_rows")
