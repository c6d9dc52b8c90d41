"""A content-addressed, on-disk cache of LLM responses (SQLite in WAL mode).

The key is the sha256 of everything that decides an answer: model, messages, sampling parameters,
response format / output schema, and the caller's template version (`cache_key`). Same inputs, same
key, zero HTTP calls on a re-run; change any sampling parameter and it is a different entry.

Only good answers are stored: the client never writes an error, an empty completion, or text that
failed to parse into the requested output model, so a re-run asks again for exactly those.

Several processes may share one file (Dagster runs each step in its own process): WAL mode lets
readers proceed while one writer commits, `busy_timeout` makes a writer wait for another instead
of failing, and every write is a single `INSERT OR REPLACE` (two processes racing on one key
both write the same kind of answer; the last one wins). Each thread of each process opens its
own connection, so the cache is safe to use from `asyncio.to_thread` workers and after a fork.
The async methods run SQLite in a worker thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Bump when the key recipe below changes: old entries then simply stop matching.
KEY_SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    template_version TEXT NOT NULL,
    content TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""


def cache_key(
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    sampling: Mapping[str, Any],
    response_format: Mapping[str, Any] | None,
    output_schema: Mapping[str, Any] | None = None,
    template_version: str = "",
) -> str:
    """sha256 hex of the canonical JSON of every input that can change the answer.

    `sampling` holds temperature, max_tokens, top_p, seed, stop and any extra body fields; None
    values are dropped so "not sent" and "sent as null" share a key.
    """
    payload = {
        "v": KEY_SCHEMA_VERSION,
        "model": model,
        "messages": [dict(m) for m in messages],
        "sampling": {k: v for k, v in sorted(sampling.items()) if v is not None},
        "response_format": response_format,
        "output_schema": output_schema,
        "template_version": template_version,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    model: str = ""
    template_version: str = ""
    created_at: float = 0.0


class ResponseCache:
    """`get(key)` / `put(key, response)` and their async twins over one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._connection()  # create the file and table now: a bad path fails here, not mid-batch

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    # Connections belong to a thread and a process; pickling (e.g. to a worker) keeps the path only.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: the parent's connections must not be touched
            self._local = threading.local()
            self._connections = []
            self._pid = os.getpid()
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False only so close() may close every thread's connection; each
        # connection is otherwise used by the one thread that opened it.
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process crashes in WAL mode; only a power cut can lose the
        # last commits, and a lost cache entry costs one repeated call.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(_SCHEMA)
        return connection

    def get(self, key: str) -> CachedResponse | None:
        row = (
            self._connection()
            .execute(
                "SELECT content, finish_reason, prompt_tokens, completion_tokens, model, template_version,"
                " created_at FROM responses WHERE key = ?",
                (key,),
            )
            .fetchone()
        )
        return None if row is None else CachedResponse(*row)

    def put(self, key: str, response: CachedResponse) -> None:
        self._connection().execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                response.model,
                response.template_version,
                response.content,
                response.finish_reason,
                response.prompt_tokens,
                response.completion_tokens,
                response.created_at or time.time(),
            ),
        )

    async def aget(self, key: str) -> CachedResponse | None:
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, response: CachedResponse) -> None:
        await asyncio.to_thread(self.put, key, response)

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def clear(self) -> None:
        self._connection().execute("DELETE FROM responses")

    def close(self) -> None:
        """Close every connection this process opened; the cache reopens on next use."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()


__all__ = ["KEY_SCHEMA_VERSION", "CachedResponse", "ResponseCache", "cache_key"]
