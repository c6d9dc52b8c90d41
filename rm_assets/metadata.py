"""Materialization metadata every table asset carries: row count, schema, table name, preview."""

from __future__ import annotations

from typing import Any

import dagster as dg

from rm_resources.store import TABLES


def table_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, sql_type) for name, sql_type in TABLES[table].items()])


def preview_markdown(frame, *, rows: int = 5, max_chars: int = 80) -> str:
    """A few rows as a markdown table, long cells cut so the UI stays readable."""
    if frame is None or len(frame) == 0:
        return "_no rows_"
    head = frame.head(rows).copy()
    for column in head.columns:
        head[column] = head[column].map(lambda v: _cell(v, max_chars))
    header = "| " + " | ".join(head.columns) + " |"
    rule = "| " + " | ".join("---" for _ in head.columns) + " |"
    body = ["| " + " | ".join(row) + " |" for row in head.astype(str).itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _cell(value: Any, max_chars: int) -> str:
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def table_metadata(table: str, frame, **extra: Any) -> dict[str, Any]:
    return {
        "dagster/row_count": len(frame),
        "dagster/table_name": table,
        "dagster/column_schema": table_schema(table),
        "preview": dg.MetadataValue.md(preview_markdown(frame)),
        **extra,
    }
