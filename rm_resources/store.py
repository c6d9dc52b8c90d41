"""The typed store: every table rmforge writes, its row shape, and every SQL statement.

Assets never write SQL or build row dicts: they hand library objects (samples, reward results,
principle sets, curated pairs, benchmark results) to a `Store` method and get library objects
back. Table definitions live in `TABLES` and nowhere else.

DuckDB lets one process hold a database file open for writing, and no other process may even read
it meanwhile. Dagster runs each step in its own process and backfills in parallel runs, so every
access here is short and serialised across processes by a file lock beside the database: compute
first, then take the lock, open, write in one transaction, close. Two partitions materialised in
parallel runs both land; a reader waits for a writer instead of failing. A MotherDuck database
(``md:...``) is a server and needs no local lock.

Re-materialising a partition replaces exactly its rows in one transaction: a reader sees the old
partition or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from rm_rewards.benchmarks.evaluate import EvaluationResult
    from rm_rewards.benchmarks.leaderboard import LeaderboardEntry
    from rm_rewards.benchmarks.promotion import PromotionDecision, PromotionRule
    from rm_rewards.core.schema import RewardResult, Sample
    from rm_rewards.curation.curate import RefinementRecord, ScoreRecord, TrainingPairRecord
    from rm_rewards.datasets.quarantine import QuarantinedRow
    from rm_rewards.judging.principles import PrincipleSet
    from rm_rewards.judging.refinement import RefinementResult
    from training.bt_trainer import TrainResult

# --- table definitions ---------------------------------------------------------------------------

# One row per sample × reward: per-response values as aligned lists. `input_hash` is the content
# hash of the sample the reward saw, so a score row can be checked against the sample it names.
_SCORE_COLUMNS: dict[str, str] = {
    "partition": "VARCHAR",
    "sample_id": "VARCHAR",
    "reward_name": "VARCHAR",
    "reward_version": "VARCHAR",
    "scores": "DOUBLE[]",
    "reasons": "VARCHAR[]",
    "response_errors": "VARCHAR[]",
    "error": "VARCHAR",
    "metadata_json": "VARCHAR",
    "input_hash": "VARCHAR",
}

# The score columns a result fills (`Store.write_score_batches`), in table order.
_SCORE_ROW_FIELDS = [column for column in _SCORE_COLUMNS if column != "partition"]

# Every table the project writes, with its columns. `partition` is the Dagster partition key the
# rows belong to; `run_id` the Dagster run that wrote them.
TABLES: dict[str, dict[str, str]] = {
    "raw_rows": {
        "partition": "VARCHAR",
        "row_index": "INTEGER",
        "row_json": "VARCHAR",
        "row_hash": "VARCHAR",
        "run_id": "VARCHAR",
    },
    "converted_samples": {
        "partition": "VARCHAR",
        "sample_id": "VARCHAR",
        "source": "VARCHAR",
        "task": "VARCHAR",
        "split": "VARCHAR",
        "n_responses": "INTEGER",
        "preference": "INTEGER",
        "preference_strength": "DOUBLE",
        "reference_json": "VARCHAR",
        "input_json": "VARCHAR",
        "responses_json": "VARCHAR",
        "metadata_json": "VARCHAR",
        "content_hash": "VARCHAR",
        # The raw rows the sample came from (a HelpSteer2 rating pair comes from two).
        "raw_row_indices": "INTEGER[]",
        "raw_row_hashes": "VARCHAR[]",
        "run_id": "VARCHAR",
    },
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
    # The principle set learned per dataset partition.
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
        # The principle set the judge used, and whether it was the learned one or the defaults.
        "principle_set_id": "VARCHAR",
        "principles_source": "VARCHAR",
        "model": "VARCHAR",
        "template_version": "VARCHAR",
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
    # The curated preference set reward models train on; dropped pairs stay, marked as such.
    "training_pairs": {
        "partition": "VARCHAR",
        "pair_id": "VARCHAR",
        "split": "VARCHAR",
        "reason": "VARCHAR",
        "decision": "VARCHAR",
        "decision_notes": "VARCHAR[]",
        "context_json": "VARCHAR",
        "chosen_json": "VARCHAR",
        "rejected_json": "VARCHAR",
        "sample_ids": "VARCHAR[]",
        "raw_row_indices": "INTEGER[]",
        "raw_row_hashes": "VARCHAR[]",
        "decided_by_json": "VARCHAR",
        "policy_hash": "VARCHAR",
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
        # training_pairs content version per dataset, and the Dagster run that wrote each.
        "data_versions_json": "VARCHAR",
        "source_runs_json": "VARCHAR",
        "run_id": "VARCHAR",
    },
    # Per-response benchmark scores of one report partition of one benchmark asset.
    "benchmark_scores": {
        "partition": "VARCHAR",
        "asset": "VARCHAR",
        "benchmark": "VARCHAR",
        "model_key": "VARCHAR",
        "item_id": "VARCHAR",
        "domain": "VARCHAR",
        "response_index": "INTEGER",
        "is_correct": "BOOLEAN",
        "score": "DOUBLE",
        "error": "VARCHAR",
        "status": "VARCHAR",
        "checkpoint_path": "VARCHAR",
        "run_id": "VARCHAR",
    },
    # Append-only history of report summaries: the previous report of a model is the row before.
    "benchmark_summaries": {
        "partition": "VARCHAR",
        "asset": "VARCHAR",
        "benchmark": "VARCHAR",
        "model_key": "VARCHAR",
        "headline_metric": "VARCHAR",
        "headline": "DOUBLE",
        # A partial report (parts of its headline missing) has no headline, only these.
        "partial_headline": "DOUBLE",
        "headline_parts": "VARCHAR",
        "status": "VARCHAR",
        "note": "VARCHAR",
        "summary_json": "VARCHAR",
        "created_at": "TIMESTAMP",
        "run_id": "VARCHAR",
    },
    # Every evaluated model × every benchmark, from each pair's latest report.
    "leaderboard": {
        "partition": "VARCHAR",
        "model_key": "VARCHAR",
        "benchmark": "VARCHAR",
        "headline_metric": "VARCHAR",
        "headline": "DOUBLE",
        "partial_headline": "DOUBLE",
        "headline_parts": "VARCHAR",
        "status": "VARCHAR",
        "note": "VARCHAR",
        "report_asset": "VARCHAR",
        "report_partition": "VARCHAR",
        "report_run_id": "VARCHAR",
        "reported_at": "TIMESTAMP",
        "run_id": "VARCHAR",
    },
    # Append-only history of promotion decisions (served_model): what was served, when and why.
    "promotions": {
        "partition": "VARCHAR",
        "decided_at": "TIMESTAMP",
        "served": "VARCHAR",
        "candidate": "VARCHAR",
        "previous": "VARCHAR",
        "status": "VARCHAR",
        "gate_passed": "BOOLEAN",
        "forced": "BOOLEAN",
        "reason": "VARCHAR",
        "benchmark": "VARCHAR",
        "candidate_headline": "DOUBLE",
        "current_headline": "DOUBLE",
        "decision_json": "VARCHAR",
        "rule_json": "VARCHAR",
        "leaderboard_run_id": "VARCHAR",
        "run_id": "VARCHAR",
    },
}

# The one partition of unpartitioned tables (the leaderboard).
WHOLE_TABLE = "__all__"


def table_columns(table: str) -> list[str]:
    """The columns a caller provides for `table` (the store adds `partition`)."""
    return [column for column in TABLES[table] if column != "partition"]


def content_version(values: Iterable[Any]) -> str:
    """A short hash over values in order: the data version of a table partition."""
    digest = hashlib.sha256()
    for value in values:
        digest.update(str(value).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


class WarehouseBusy(TimeoutError):
    pass


class Store:
    """Serialised, short-lived, typed access to one DuckDB database."""

    def __init__(self, database: str, *, lock_timeout_s: float = 600.0):
        self.database = database
        self.lock_timeout_s = lock_timeout_s
        self._is_local = not database.startswith("md:") and database != ":memory:"
        self._schema_checked = False
        if self._is_local:
            Path(database).parent.mkdir(parents=True, exist_ok=True)

    # --- connection, lock and the generic partition writes -----------------------------------

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
                if not self._schema_checked:
                    _check_schema(connection, self.database)
                    self._schema_checked = True
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

    def replace_partitions(
        self,
        writes: list[tuple[str, str, Any, Mapping[str, str] | None]],
        appends: Sequence[tuple[str, str, Any]] = (),
    ) -> None:
        """Several partition replacements in one transaction (e.g. samples and their quarantine),
        and `appends` (table, partition, frame: history rows) in the same transaction."""
        with self.connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                for table, partition, frame, where in writes:
                    conditions = {"partition": partition, **(where or {})}
                    _check_columns(table, conditions)
                    frame = _shaped(table, partition, frame)
                    where_sql = " AND ".join(f'"{c}" = ?' for c in conditions)
                    connection.execute(f'DELETE FROM "{table}" WHERE {where_sql}', list(conditions.values()))
                    connection.register("incoming_rows", frame)
                    connection.execute(f'INSERT INTO "{table}" SELECT * FROM incoming_rows')
                    connection.unregister("incoming_rows")
                for table, partition, frame in appends:
                    connection.register("incoming_rows", _shaped(table, partition, frame))
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

    def _query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """A read query as a DataFrame; list columns come back as Python lists (DuckDB hands out
        numpy arrays, whose NULLs are easy to misread as numbers)."""
        with self.connect() as connection:
            frame = connection.execute(sql, params or []).df()
        for column in frame.columns:
            if frame[column].dtype == object and frame[column].map(_is_array).any():
                frame[column] = frame[column].map(lambda v: v.tolist() if _is_array(v) else v)
        return frame

    def read_partition(self, table: str, partition: str, *, order_by: str | None = None) -> pd.DataFrame:
        _check_columns(table, [order_by] if order_by else [])
        order = f' ORDER BY "{order_by}"' if order_by else ""
        return self._query(f'SELECT * FROM "{table}" WHERE "partition" = ?{order}', [partition])

    def count_by_partition(self, table: str) -> dict[str, int]:
        _check_columns(table, [])
        frame = self._query(f'SELECT "partition", count(*) AS n FROM "{table}" GROUP BY 1 ORDER BY 1')
        return dict(zip(frame["partition"], frame["n"].astype(int)))

    def row_count(self, table: str, partition: str) -> int:
        _check_columns(table, [])
        frame = self._query(f'SELECT count(*) AS n FROM "{table}" WHERE "partition" = ?', [partition])
        return int(frame["n"][0])

    def run_ids(self, table: str, partition: str) -> list[str]:
        """The Dagster runs whose rows make up the partition now (one, after a whole write)."""
        _check_columns(table, [])
        frame = self._query(
            f'SELECT DISTINCT run_id FROM "{table}" WHERE "partition" = ? ORDER BY 1', [partition]
        )
        return [r for r in frame["run_id"] if r is not None]

    # --- raw rows ---------------------------------------------------------------------------

    def write_raw_rows(self, partition: str, rows: list[Any], run_id: str) -> tuple[int, str]:
        """Store rows exactly as loaded; returns (row count, content version of the rows)."""
        import pandas as pd

        from rm_rewards.datasets.quarantine import raw_row_json

        records = []
        for index, row in enumerate(rows):
            text = raw_row_json(row)
            records.append({"row_index": index, "row_json": text, "row_hash": raw_row_hash(text), "run_id": run_id})
        frame = pd.DataFrame(records, columns=table_columns("raw_rows"))
        self.replace_partition("raw_rows", partition, frame)
        return len(frame), content_version(frame["row_hash"])

    def read_raw_rows(self, partition: str) -> list[Any]:
        """The partition's rows in load order, parsed back from their stored JSON."""
        frame = self.read_partition("raw_rows", partition, order_by="row_index")
        return [json.loads(text) for text in frame["row_json"]]

    def raw_row_hashes(self, partition: str) -> list[str]:
        frame = self._query(
            'SELECT row_hash FROM raw_rows WHERE "partition" = ? ORDER BY row_index', [partition]
        )
        return list(frame["row_hash"])

    def raw_rows_by_hash(self, hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Raw rows (partition, index, JSON text) for the given row hashes, whichever partition."""
        if not hashes:
            return {}
        frame = self._query(
            'SELECT "partition", row_index, row_hash, row_json FROM raw_rows WHERE row_hash IN '
            f"({', '.join('?' for _ in hashes)}) ORDER BY 1, 2",
            list(hashes),
        )
        return {row["row_hash"]: row for row in frame.to_dict(orient="records")}

    # --- converted samples and quarantine ----------------------------------------------------

    def write_converted(
        self, partition: str, samples: Iterable[Sample], quarantined: Sequence[QuarantinedRow], run_id: str
    ) -> str:
        """Samples and their quarantine in one transaction; returns the samples' content version.
        Each sample row records the hashes of the raw rows (`metadata["raw_row_indices"]`) it came
        from, read from the stored raw rows of the same partition. `samples` is read once, each
        sample turned into its row as it comes (a `ConversionStream` is never held whole)."""
        import pandas as pd

        from rm_rewards.core.schema import sample_to_row

        hashes = self.raw_row_hashes(partition)
        rows = []
        for sample in samples:
            indices = [int(i) for i in sample.metadata.get("raw_row_indices", [])]
            rows.append({
                **sample_to_row(sample),
                "content_hash": sample.content_hash(),
                "raw_row_indices": indices,
                "raw_row_hashes": [hashes[i] for i in indices if 0 <= i < len(hashes)],
                "run_id": run_id,
            })
        frame = pd.DataFrame(rows, columns=table_columns("converted_samples"))
        quarantine = pd.DataFrame(
            [
                {"asset": "converted_samples", "row_index": q.row_index, "field": q.field, "reason": q.reason,
                 "row_json": q.row_json, "run_id": run_id}
                for q in quarantined
            ],
            columns=table_columns("quarantine"),
        )
        self.replace_partitions([
            ("converted_samples", partition, frame, None),
            ("quarantine", partition, quarantine, {"asset": "converted_samples"}),
        ])
        return content_version(sorted(frame["content_hash"]))

    def read_samples(
        self, partition: str, *, task: str | None = None, split: str | None = None
    ) -> list[Sample]:
        """The one reader of converted samples: a partition's samples in sample-id order."""
        from rm_rewards.core.schema import samples_from_frame

        return samples_from_frame(self._sample_frame(partition, task=task, split=split))

    def iter_sample_batches(self, partition: str, batch_size: int) -> Iterator[list[Sample]]:
        """`read_samples` in consecutive batches of `batch_size`: one query (the rows as a frame,
        their JSON text: ~0.5 KB a sample), Sample objects made one batch at a time (~8 KB each),
        so a consumer that drops each batch never holds a partition of them."""
        from rm_rewards.core.schema import samples_from_frame

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        frame = self._sample_frame(partition)
        for start in range(0, len(frame), batch_size):
            yield samples_from_frame(frame.iloc[start : start + batch_size])

    def _sample_frame(self, partition: str, *, task: str | None = None, split: str | None = None) -> pd.DataFrame:
        conditions, params = ['"partition" = ?'], [partition]
        for column, value in (("task", task), ("split", split)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        return self._query(
            f"SELECT * FROM converted_samples WHERE {' AND '.join(conditions)} ORDER BY sample_id", params
        )

    def sample_rows(self, sample_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Converted-sample rows by id (any partition), for audits."""
        if not sample_ids:
            return []
        frame = self._query(
            f"SELECT * FROM converted_samples WHERE sample_id IN ({', '.join('?' for _ in sample_ids)}) "
            "ORDER BY sample_id",
            list(sample_ids),
        )
        return frame.to_dict(orient="records")

    def quarantine_stats(self, partition: str, asset: str = "converted_samples") -> dict[str, Any]:
        frame = self._query(
            """
            SELECT
              (SELECT count(*) FROM raw_rows WHERE "partition" = ?) AS raw_rows,
              (SELECT count(DISTINCT row_index) FROM quarantine WHERE "partition" = ? AND asset = ?)
                AS quarantined_rows,
              (SELECT string_agg(DISTINCT field, ', ') FROM quarantine WHERE "partition" = ? AND asset = ?)
                AS fields
            """,
            [partition, partition, asset, partition, asset],
        )
        return {
            "raw_rows": int(frame["raw_rows"][0]),
            "quarantined_rows": int(frame["quarantined_rows"][0]),
            "quarantined_fields": frame["fields"][0] or "",
        }

    def read_quarantine(self, partition: str) -> pd.DataFrame:
        return self.read_partition("quarantine", partition, order_by="row_index")

    # --- reward scores ----------------------------------------------------------------------

    def write_scores(
        self,
        table: str,
        partition: str,
        results: Sequence[RewardResult],
        samples: Sequence[Sample],
        run_id: str,
        **columns: Any,
    ) -> pd.DataFrame:
        """One row per sample × reward (`rule_scores` or `llm_scores`), in the order of `results`;
        `columns` are the table's extra per-partition columns (for llm_scores: principle set,
        model, template version)."""
        return self.write_score_batches(table, partition, [(samples, results)], run_id, **columns)

    def write_score_batches(
        self,
        table: str,
        partition: str,
        scored: Iterable[tuple[Sequence[Sample], Sequence[RewardResult]]],
        run_id: str,
        *,
        reward_order: Sequence[str] | None = None,
        **columns: Any,
    ) -> pd.DataFrame:
        """`write_scores` from a stream of (samples, their results) batches: each result becomes a
        plain row as its batch arrives, so only one batch of sample and result objects need be alive
        at a time (the rows are the table's own; the frame is built once, from them). With `reward_order`, rows are grouped by
        reward in that order, batches in arrival order within a reward: `merge_batch_results`'
        order, so batch-by-batch scoring writes the same table as scoring everything at once."""
        import pandas as pd

        if table not in ("rule_scores", "llm_scores"):
            raise ValueError(f"{table!r} is not a score table")
        buckets: dict[str | None, list[tuple]] = {name: [] for name in reward_order or [None]}
        for samples, results in scored:
            hashes = {s.id: s.content_hash() for s in samples}
            for r in results:
                bucket = buckets[r.reward_name] if reward_order is not None else buckets[None]
                bucket.append((
                    r.sample_id,
                    r.reward_name,
                    r.reward_version,
                    [s.score for s in r.scores],
                    [s.reason for s in r.scores],
                    [s.error for s in r.scores],
                    r.error,
                    json.dumps(r.metadata, ensure_ascii=True, sort_keys=True, default=str),
                    hashes[r.sample_id],
                ))
        frame = pd.DataFrame.from_records(
            [row for bucket in buckets.values() for row in bucket], columns=_SCORE_ROW_FIELDS
        )
        del buckets
        for name, value in {**columns, "run_id": run_id}.items():
            frame[name] = pd.Series([value] * len(frame), dtype=object)
        frame = frame[table_columns(table)]
        self.replace_partition(table, partition, frame)
        return frame

    def read_score_records(self, table: str, partition: str) -> list[ScoreRecord]:
        from rm_rewards.curation.curate import ScoreRecord

        frame = self.read_partition(table, partition, order_by="sample_id")
        return [
            ScoreRecord(
                table=table,
                sample_id=row["sample_id"],
                reward_name=row["reward_name"],
                reward_version=row["reward_version"],
                scores=[_none_if_nan(v) for v in row["scores"] or []],
                reasons=list(row["reasons"] or []),
                response_errors=list(row["response_errors"] or []),
                error=row["error"],
                metadata=json.loads(row["metadata_json"] or "{}"),
            )
            for row in frame.to_dict(orient="records")
        ]

    # --- principles -------------------------------------------------------------------------

    def write_principle_set(self, partition: str, principle_set: PrincipleSet, run_id: str) -> None:
        import pandas as pd

        row = {
            "principle_set_id": principle_set.id,
            "scenario": principle_set.scenario,
            "principles_json": json.dumps(principle_set.principles, ensure_ascii=False),
            "provenance_json": principle_set.provenance.model_dump_json(),
            "model": principle_set.provenance.model,
            "run_id": run_id,
        }
        self.replace_partition("principle_sets", partition, pd.DataFrame([row], columns=table_columns("principle_sets")))

    def read_principle_set(self, partition: str) -> PrincipleSet | None:
        """The principle set `auto_principles` learned for this dataset partition, or None."""
        from rm_rewards.judging.principles import PrincipleProvenance, PrincipleSet

        frame = self.read_partition("principle_sets", partition)
        if frame.empty:
            return None
        row = frame.iloc[0]
        return PrincipleSet(
            id=row["principle_set_id"],
            scenario=row["scenario"],
            principles=json.loads(row["principles_json"]),
            provenance=PrincipleProvenance.model_validate_json(row["provenance_json"]),
        )

    # --- refinements ------------------------------------------------------------------------

    def write_refinements(
        self, partition: str, results: Sequence[RefinementResult], sources: Mapping[str, str], run_id: str
    ) -> pd.DataFrame:
        """Every round of every refined response; `sources` maps a candidate id to the converted
        sample it was taken from."""
        import pandas as pd

        rows = [
            {
                "sample_id": result.sample_id,
                "source_sample_id": sources.get(result.sample_id, result.sample_id),
                "round": refinement_round.round,
                "response_json": json.dumps(refinement_round.response, ensure_ascii=True),
                "score": refinement_round.score,
                "critique": refinement_round.critique,
                "error": refinement_round.error,
                "is_best": refinement_round.round == result.best_round,
                "stop_reason": result.stop_reason,
                "judge": result.judge,
                "run_id": run_id,
            }
            for result in results
            for refinement_round in result.rounds
        ]
        frame = pd.DataFrame(rows, columns=table_columns("refined_samples"))
        self.replace_partition("refined_samples", partition, frame)
        return frame

    def read_refinements(self, partition: str) -> list[RefinementRecord]:
        from rm_rewards.curation.curate import RefinementRecord

        frame = self._query(
            'SELECT * FROM refined_samples WHERE "partition" = ? ORDER BY sample_id, "round"', [partition]
        )
        return [
            RefinementRecord(
                sample_id=row["sample_id"],
                source_sample_id=row["source_sample_id"],
                round=int(row["round"]),
                response=json.loads(row["response_json"]),
                score=_none_if_nan(row["score"]),
                error=row["error"],
                is_best=bool(row["is_best"]),
                judge=row["judge"],
            )
            for row in frame.to_dict(orient="records")
        ]

    # --- training pairs ---------------------------------------------------------------------

    def write_training_pairs(
        self, partition: str, records: Sequence[TrainingPairRecord], policy_hash: str, run_id: str
    ) -> str:
        """The curated pairs of one dataset; returns their content version (pairs, splits,
        decisions and the policy that decided them)."""
        import pandas as pd

        hashes = self.raw_row_hashes(partition)
        rows = [
            {
                "pair_id": r.pair_id,
                "split": r.split,
                "reason": r.reason,
                "decision": r.decision,
                "decision_notes": list(r.decision_notes),
                "context_json": json.dumps([m.model_dump(mode="json") for m in r.context], ensure_ascii=True),
                "chosen_json": r.chosen.model_dump_json(),
                "rejected_json": r.rejected.model_dump_json(),
                "sample_ids": list(r.sample_ids),
                "raw_row_indices": list(r.raw_row_indices),
                "raw_row_hashes": [hashes[i] for i in r.raw_row_indices if 0 <= i < len(hashes)],
                "decided_by_json": json.dumps(r.decided_by, ensure_ascii=True, sort_keys=True),
                "policy_hash": policy_hash,
                "run_id": run_id,
            }
            for r in records
        ]
        frame = pd.DataFrame(rows, columns=table_columns("training_pairs"))
        self.replace_partition("training_pairs", partition, frame)
        return _training_pairs_version(frame)

    def training_pairs_version(self, partition: str) -> str:
        """The content version of a dataset's training pairs as stored now (see write_training_pairs)."""
        frame = self._query(
            'SELECT pair_id, split, decision, policy_hash FROM training_pairs WHERE "partition" = ?', [partition]
        )
        return _training_pairs_version(frame)

    def read_training_pairs(self, partitions: Sequence[str]) -> list[TrainingPairRecord]:
        """The curated pairs of these datasets (every decision), in partition then pair-id order."""
        from rm_rewards.curation.curate import TrainingPairRecord

        if not partitions:
            return []
        frame = self._query(
            "SELECT * FROM training_pairs WHERE \"partition\" IN "
            f"({', '.join('?' for _ in partitions)}) ORDER BY \"partition\", pair_id",
            list(partitions),
        )
        return [
            TrainingPairRecord(
                pair_id=row["pair_id"],
                split=row["split"],
                reason=row["reason"],
                decision=row["decision"],
                decision_notes=list(row["decision_notes"] or []),
                context=json.loads(row["context_json"]),
                chosen=json.loads(row["chosen_json"]),
                rejected=json.loads(row["rejected_json"]),
                sample_ids=list(row["sample_ids"] or []),
                raw_row_indices=list(row["raw_row_indices"] or []),
                decided_by=json.loads(row["decided_by_json"] or "[]"),
            )
            for row in frame.to_dict(orient="records")
        ]

    def training_pair_rows(self, pair_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not pair_ids:
            return []
        frame = self._query(
            f"SELECT * FROM training_pairs WHERE pair_id IN ({', '.join('?' for _ in pair_ids)}) ORDER BY pair_id",
            list(pair_ids),
        )
        return frame.to_dict(orient="records")

    def raw_row_hashes_of(self, table: str, partitions: Sequence[str]) -> list[str]:
        """Distinct raw row hashes that rows of `table` (converted_samples or training_pairs) in these
        partitions came from."""
        if table not in ("converted_samples", "training_pairs"):
            raise ValueError(f"{table!r} records no raw rows")
        if not partitions:
            return []
        frame = self._query(
            f'SELECT DISTINCT unnest(raw_row_hashes) AS h FROM "{table}" WHERE "partition" IN '
            f"({', '.join('?' for _ in partitions)}) ORDER BY 1",
            list(partitions),
        )
        return list(frame["h"])

    # --- checkpoints ------------------------------------------------------------------------

    def write_checkpoint(
        self,
        run_key: str,
        result: TrainResult,
        *,
        datasets: Sequence[str],
        config: Mapping[str, Any],
        data_versions: Mapping[str, str],
        source_runs: Mapping[str, Sequence[str]],
        run_id: str,
    ) -> None:
        """One training run: where its model is, what it trained on (each dataset's training_pairs
        version and the runs that wrote those pairs), its config and accuracies."""
        import pandas as pd

        row = {
            "run_key": run_key,
            "path": result.final_checkpoint,
            "datasets": json.dumps(list(datasets)),
            "train_pairs": result.train_pairs,
            "eval_pairs": result.eval_pairs,
            "baseline_eval_accuracy": result.baseline_eval_accuracy,
            "final_eval_accuracy": result.final_eval_accuracy,
            "config_json": json.dumps(config, sort_keys=True, default=str),
            "data_versions_json": json.dumps(dict(data_versions), sort_keys=True),
            "source_runs_json": json.dumps({k: list(v) for k, v in source_runs.items()}, sort_keys=True),
            "run_id": run_id,
        }
        self.replace_partition("rm_checkpoints", run_key, pd.DataFrame([row], columns=table_columns("rm_checkpoints")))

    def checkpoint(self, run_key: str) -> dict[str, Any] | None:
        frame = self.read_partition("rm_checkpoints", run_key)
        return None if frame.empty else frame.to_dict(orient="records")[0]

    # --- benchmarks -------------------------------------------------------------------------

    def write_benchmark_report(
        self,
        asset: str,
        partition: str,
        result: EvaluationResult,
        *,
        status: str,
        note: str,
        run_id: str,
        checkpoint_path: str | None = None,
    ) -> pd.DataFrame:
        """Per-response scores (replacing the partition's) and one more summary row (history)."""
        import pandas as pd

        scores = pd.DataFrame([row.model_dump() for row in result.scores]).assign(
            asset=asset, benchmark=result.benchmark, model_key=result.model_key,
            checkpoint_path=checkpoint_path, run_id=run_id,
        )
        scores = scores.reindex(columns=table_columns("benchmark_scores"))
        summary = {
            "asset": asset, "benchmark": result.benchmark, "model_key": result.model_key,
            "headline_metric": result.headline_metric, "headline": result.headline,
            "partial_headline": result.partial_headline,
            "headline_parts": "" if result.headline_coverage is None else result.headline_coverage.describe(),
            "status": status, "note": note, "summary_json": json.dumps(result.summary()),
            "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None), "run_id": run_id,
        }
        # One transaction: a kill between the scores and their summary row would leave a report the
        # leaderboard cannot see and the next report would be compared with the one before it.
        self.replace_partitions(
            [("benchmark_scores", partition, scores, {"asset": asset})],
            appends=[("benchmark_summaries", partition,
                      pd.DataFrame([summary], columns=table_columns("benchmark_summaries")))],
        )
        return scores

    def recent_summaries(self, asset: str, partition: str, limit: int = 2) -> list[dict[str, Any]]:
        """The partition's latest report summaries, newest first."""
        frame = self._query(
            'SELECT summary_json FROM benchmark_summaries WHERE asset = ? AND "partition" = ? '
            "ORDER BY created_at DESC LIMIT ?",
            [asset, partition, limit],
        )
        return [json.loads(text) for text in frame["summary_json"]]

    def latest_reports(self) -> list[dict[str, Any]]:
        """Each (model, benchmark)'s newest report summary row."""
        frame = self._query(
            """
            SELECT * EXCLUDE (rank) FROM (
              SELECT *, row_number() OVER (PARTITION BY model_key, benchmark ORDER BY created_at DESC) AS rank
              FROM benchmark_summaries
            ) WHERE rank = 1 ORDER BY model_key, benchmark
            """
        )
        return [{k: _none_if_nan(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]

    def write_leaderboard(self, entries: Sequence[LeaderboardEntry], run_id: str) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame([{**e.model_dump(), "run_id": run_id} for e in entries], columns=table_columns("leaderboard"))
        self.replace_partition("leaderboard", WHOLE_TABLE, frame)
        return frame

    def read_leaderboard(self) -> pd.DataFrame:
        return self.read_partition("leaderboard", WHOLE_TABLE)

    # --- promotions -------------------------------------------------------------------------

    def write_promotion(
        self, decision: PromotionDecision, rule: PromotionRule, *, leaderboard_run_id: str | None, run_id: str
    ) -> dict[str, Any]:
        """One more promotion decision (history: nothing is replaced); returns the row."""
        import pandas as pd

        row = {
            "decided_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            "served": decision.served, "candidate": decision.candidate, "previous": decision.current,
            "status": decision.status, "gate_passed": decision.gate_passed, "forced": decision.forced,
            "reason": decision.reason, "benchmark": decision.benchmark,
            "candidate_headline": decision.candidate_headline, "current_headline": decision.current_headline,
            "decision_json": decision.model_dump_json(), "rule_json": rule.model_dump_json(),
            "leaderboard_run_id": leaderboard_run_id, "run_id": run_id,
        }
        self.append("promotions", WHOLE_TABLE, pd.DataFrame([row], columns=table_columns("promotions")))
        return row

    def promotions(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Promotion decisions, newest first."""
        frame = self._query(
            "SELECT * FROM promotions ORDER BY decided_at DESC" + (" LIMIT ?" if limit else ""),
            [limit] if limit else [],
        )
        return [{k: _none_if_nan(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]

    def served_model(self) -> str | None:
        """The model the latest promotion decision serves (None: nothing promoted yet)."""
        latest = self.promotions(limit=1)
        return latest[0]["served"] if latest else None


    # --- audit reads (rm_assets.lineage) -----------------------------------------------------

    def rows_and_runs(self, table: str, partition: str, *, asset: str | None = None) -> tuple[int, list[str]]:
        """Rows of a table partition, and the runs that wrote them; benchmark reports share one table
        (narrowed by `asset`)."""
        _check_columns(table, [])
        where, params = '"partition" = ?', [partition]
        if table == "benchmark_scores":
            where, params = where + " AND asset = ?", [partition, asset]
        frame = self._query(
            f'SELECT count(*) AS n, coalesce(list(DISTINCT run_id ORDER BY run_id), []) AS runs FROM "{table}" '
            f"WHERE {where}",
            params,
        )
        return int(frame["n"][0]), [r for r in frame["runs"][0] if isinstance(r, str)]

    def score_hash_mismatches(self, table: str, partition: str) -> list[dict[str, Any]]:
        """Score rows whose sample is gone or whose input hash is not the sample's content hash now."""
        if table not in ("rule_scores", "llm_scores"):
            raise ValueError(f"{table!r} is not a score table")
        frame = self._query(
            f'SELECT s.sample_id, s.input_hash, c.content_hash FROM "{table}" s LEFT JOIN converted_samples c '
            'ON c."partition" = s."partition" AND c.sample_id = s.sample_id '
            'WHERE s."partition" = ? '
            "AND (c.content_hash IS NULL OR c.content_hash IS DISTINCT FROM s.input_hash) "
            "ORDER BY 1",
            [partition],
        )
        return frame.to_dict(orient="records")

    def llm_score_principle_ids(self, partition: str) -> list[str]:
        """The principle sets the partition's LLM scores were judged with."""
        frame = self._query(
            'SELECT DISTINCT principle_set_id FROM llm_scores WHERE "partition" = ? '
            "AND principle_set_id IS NOT NULL "
            "ORDER BY 1",
            [partition],
        )
        return list(frame["principle_set_id"])

    def principle_set_id(self, partition: str) -> str | None:
        """The id of the dataset's current principle set, or None."""
        frame = self._query('SELECT principle_set_id FROM principle_sets WHERE "partition" = ?', [partition])
        return None if frame.empty else frame["principle_set_id"][0]

    def missing_refinement_sources(self, partition: str) -> list[str]:
        """Source sample ids of refinements that are no longer converted samples."""
        frame = self._query(
            'SELECT DISTINCT r.source_sample_id AS id FROM refined_samples r WHERE r."partition" = ? '
            'AND NOT EXISTS (SELECT 1 FROM converted_samples c WHERE c."partition" = r."partition" '
            "AND c.sample_id = r.source_sample_id) "
            "ORDER BY 1",
            [partition],
        )
        return list(frame["id"])

    def missing_pair_samples(self, partition: str) -> list[dict[str, Any]]:
        """(pair, sample id) for training pairs naming a sample that is no longer converted."""
        frame = self._query(
            "SELECT pair_id, sample_id FROM (SELECT pair_id, unnest(sample_ids) AS sample_id FROM training_pairs "
            'WHERE "partition" = ?) p WHERE NOT EXISTS (SELECT 1 FROM converted_samples c '
            'WHERE c."partition" = ? AND c.sample_id = p.sample_id) ORDER BY 1, 2',
            [partition, partition],
        )
        return frame.to_dict(orient="records")

    def trained_raw_hashes(self, checkpoint: Mapping[str, Any]) -> dict[str, set[str]]:
        """dataset -> raw row hashes of what the checkpoint trained on: its curated (kept and flagged)
        training pairs, or with `pairs: raw` in its config every pairwise converted sample."""
        from rm_rewards.curation.curate import TRAINED_DECISIONS

        datasets = json.loads(checkpoint["datasets"] or "[]")
        if json.loads(checkpoint["config_json"] or "{}").get("pairs") == "raw":
            table, column, values = "converted_samples", "task", ["pairwise"]
        else:
            table, column, values = "training_pairs", "decision", list(TRAINED_DECISIONS)
        used: dict[str, set[str]] = {}
        for dataset in datasets:
            frame = self._query(
                f'SELECT DISTINCT unnest(raw_row_hashes) AS h FROM "{table}" WHERE "partition" = ? '
                f"AND {column} IN ({', '.join('?' for _ in values)})",
                [dataset, *values],
            )
            used[dataset] = set(frame["h"])
        return used

    def report_checkpoint_paths(self, asset: str, partition: str) -> list[str]:
        """The checkpoint paths a report's benchmark scores were computed with."""
        frame = self._query(
            'SELECT DISTINCT checkpoint_path AS p FROM benchmark_scores WHERE asset = ? AND "partition" = ? '
            "AND checkpoint_path IS NOT NULL ORDER BY 1",
            [asset, partition],
        )
        return list(frame["p"])

    def reference_exists(self, partition: str, reference: Mapping[str, Any]) -> bool:
        """Whether the score or refinement row a training pair's `decided_by` names is still there."""
        table = reference.get("table")
        if table in ("rule_scores", "llm_scores"):  # names from a fixed set, so safe in SQL
            sql = (
                f'SELECT count(*) AS n FROM "{table}" WHERE "partition" = ? AND sample_id = ? '
                "AND reward_name = ? AND reward_version = ?"
            )
            params = [
                partition,
                reference.get("sample_id"),
                reference.get("reward_name"),
                reference.get("reward_version"),
            ]
        elif table == "refined_samples":
            sql = (
                'SELECT count(*) AS n FROM refined_samples WHERE "partition" = ? AND sample_id = ? '
                'AND "round" = ?'
            )
            params = [partition, reference.get("sample_id"), reference.get("round")]
        else:
            return False
        return int(self._query(sql, params)["n"][0]) > 0


def raw_row_hash(row_json: str) -> str:
    return hashlib.sha256(row_json.encode()).hexdigest()[:32]


def _training_pairs_version(frame) -> str:
    rows = sorted(zip(frame["pair_id"], frame["split"], frame["decision"], frame["policy_hash"]))
    return f"{len(rows)}:{content_version(rows)}"


def _shaped(table: str, partition: str, frame):
    """The frame with the partition column added and the table's columns in order."""
    columns = TABLES[table]
    missing = [c for c in columns if c != "partition" and c not in frame.columns]
    if missing:
        raise ValueError(f"rows for {table} lack columns {missing}")
    return frame.assign(partition=partition)[list(columns)]


def _check_columns(table: str, columns: Iterable[str]) -> None:
    """Identifiers reach SQL only when they are known tables and columns."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}")
    unknown = [c for c in columns if c not in TABLES[table]]
    if unknown:
        raise ValueError(f"table {table!r} has no columns {unknown}")


def _is_array(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray)


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def _check_schema(connection, database: str) -> None:
    """A table written by an older rmforge with other columns is a clear error, not a failed insert."""
    frame = connection.execute(
        "SELECT table_name, list(column_name ORDER BY ordinal_position) AS columns "
        "FROM information_schema.columns WHERE table_schema = current_schema() GROUP BY 1"
    ).df()
    for table, columns in zip(frame["table_name"], frame["columns"]):
        if table in TABLES and list(columns) != list(TABLES[table]):
            raise RuntimeError(
                f"table {table!r} in {database} has the columns of an older rmforge ({list(columns)}); "
                f"move the file away or run `make clean`, then re-materialize"
            )


def _create_table_sql(table: str, columns: Mapping[str, str]) -> str:
    body = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns.items())
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({body})'


__all__ = ["TABLES", "Store", "WarehouseBusy", "content_version", "table_columns"]
