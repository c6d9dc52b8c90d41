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
own connections, so the cache is safe to use from worker threads and after a fork; a thread's
connections are closed once the thread has ended (when another thread opens its own).

The async methods (`aget`, `aput`) run on the event loop's thread, because handing each call to a
worker thread cost more than the SQLite work itself (measured: a get takes ~5-11 us and a put
~8-49 us when called directly; `asyncio.to_thread` added ~0.1 ms of CPU and two thread hand-offs
per call). They still never make the loop wait on disk or on another process:

- they use a connection of their own that never waits for a lock (`busy_timeout=0`); when another
  connection holds the write lock, the call is handed to a worker thread that waits as `get` and
  `put` do;
- that connection never checkpoints the WAL itself (a checkpoint syncs the file to disk: up to
  ~20 ms); every `CHECKPOINT_EVERY_PUTS` inline puts, one `aput` runs a passive checkpoint in a
  worker thread instead.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rm_rewards.llm.structured import SCHEMA_MEMO_SIZE, cached_schema

# Bump when the key recipe below changes: old entries then simply stop matching.
KEY_SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
# Inline puts between two WAL checkpoints: at ~6 WAL pages per put, about SQLite's default of
# checkpointing every 1,000 pages.
CHECKPOINT_EVERY_PUTS = 160
# sqlite3 error codes for "another connection holds the lock".
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6

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


# One encoder for every key: `json.dumps` with these options builds a new encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_json(value: Any) -> str:
    """The one JSON spelling keys are made of: keys sorted at every level, no spaces, text as is
    (`json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`)."""
    return _CANONICAL.encode(value)


def cache_key(
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    sampling: Mapping[str, Any],
    response_format: Mapping[str, Any] | None,
    output_schema: Mapping[str, Any] | None = None,
    template_version: str = "",
) -> str:
    """sha256 hex of the canonical JSON of every input that can change the answer:

        canonical_json({"v": KEY_SCHEMA_VERSION, "model": ..., "messages": [...], "sampling": {...},
                        "response_format": ..., "output_schema": ..., "template_version": ...})

    `sampling` holds temperature, max_tokens, top_p, seed, stop and any extra body fields; None
    values are dropped so "not sent" and "sent as null" share a key.
    """
    return cache_key_from_json(
        model=model,
        messages=messages,
        sampling=sampling,
        response_format_json=canonical_json(response_format),
        output_schema_json=canonical_json(output_schema),
        template_version=template_version,
    )


def cache_key_from_json(
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    sampling: Mapping[str, Any],
    response_format_json: str,
    output_schema_json: str,
    template_version: str = "",
) -> str:
    """`cache_key`, given the canonical JSON of the response format and the output schema.

    The same key, built piecewise: the client keeps those two strings per output model, because
    serialising a schema (twice) was most of a key's cost. The pieces are joined in sorted key
    order, so the text is exactly what `canonical_json` makes of the whole dict.
    """
    canonical = "".join(
        (
            '{"messages":',
            canonical_json([dict(m) for m in messages]),
            ',"model":',
            canonical_json(model),
            ',"output_schema":',
            output_schema_json,
            ',"response_format":',
            response_format_json,
            ',"sampling":',
            canonical_json({k: v for k, v in sampling.items() if v is not None}),
            ',"template_version":',
            canonical_json(template_version),
            ',"v":',
            canonical_json(KEY_SCHEMA_VERSION),
            "}",
        )
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def request_key(
    body: Mapping[str, Any], *, response_format_json: str, output_schema_json: str, template_version: str
) -> str:
    """`cache_key` of a request body as the client builds it (`wire.request_body`): everything but
    model and messages is sampling; the format's and schema's canonical JSON come ready-made."""
    return cache_key_from_json(
        model=body["model"],
        messages=body["messages"],
        sampling={k: v for k, v in body.items() if k not in ("model", "messages")},
        response_format_json=response_format_json,
        output_schema_json=output_schema_json,
        template_version=template_version,
    )


@functools.lru_cache(maxsize=SCHEMA_MEMO_SIZE)
def schema_key_json(output_model: type[BaseModel]) -> str:
    """The canonical JSON of an output model's schema, as keys hold it: made once per model."""
    return canonical_json(cached_schema(output_model))


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
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._pid = os.getpid()
        self._inline_puts = itertools.count(1)
        self._connection()  # create the file and table now: a bad path fails here, not mid-batch

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    # Connections belong to a thread and a process; pickling (e.g. to a worker) keeps the path only.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    def _connection(self, *, waits: bool = True) -> sqlite3.Connection:
        """This thread's connection: one that waits for locks (`waits`), or one that never does."""
        if self._pid != os.getpid():  # forked: the parent's connections must not be touched
            self._local = threading.local()
            self._connections = []
            self._pid = os.getpid()
        name = "waiting" if waits else "nowait"
        connection = getattr(self._local, name, None)
        if connection is None:
            connection = self._open() if waits else self._open_nowait()
            setattr(self._local, name, connection)
            with self._lock:
                ended = [pair for pair in self._connections if not pair[0].is_alive()]
                self._connections = [pair for pair in self._connections if pair[0].is_alive()]
                self._connections.append((threading.current_thread(), connection))
            for _thread, stale in ended:  # threads that have ended never use theirs again
                stale.close()
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

    def _open_nowait(self) -> sqlite3.Connection:
        """For the event loop's thread: fails at once on a held lock, and never checkpoints
        (the file is already in WAL mode with its table: the constructor saw to it)."""
        connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=0")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        return connection

    def get(self, key: str) -> CachedResponse | None:
        return self._get(self._connection(), key)

    def put(self, key: str, response: CachedResponse) -> None:
        self._put(self._connection(), key, response)

    async def aget(self, key: str) -> CachedResponse | None:
        """`get` on the loop's thread; in a worker thread when another connection holds a lock."""
        try:
            return self._get(self._connection(waits=False), key)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, response: CachedResponse) -> None:
        """`put` on the loop's thread; in a worker thread when another connection holds the lock.
        Every `CHECKPOINT_EVERY_PUTS`-th inline put also waits for a WAL checkpoint (in a thread)."""
        try:
            self._put(self._connection(waits=False), key, response)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            await asyncio.to_thread(self.put, key, response)
            return
        if next(self._inline_puts) % CHECKPOINT_EVERY_PUTS == 0:
            await asyncio.to_thread(self.checkpoint)

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, as far as readers allow (passive)."""
        self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @staticmethod
    def _get(connection: sqlite3.Connection, key: str) -> CachedResponse | None:
        row = connection.execute(
            "SELECT content, finish_reason, prompt_tokens, completion_tokens, model, template_version,"
            " created_at FROM responses WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else CachedResponse(*row)

    @staticmethod
    def _put(connection: sqlite3.Connection, key: str, response: CachedResponse) -> None:
        connection.execute(
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
        for _thread, connection in connections:
            connection.close()
        self._local = threading.local()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (not a real failure)."""
    code = getattr(exc, "sqlite_errorcode", None)  # python >= 3.11
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


__all__ = [
    "KEY_SCHEMA_VERSION",
    "CachedResponse",
    "ResponseCache",
    "cache_key",
    "cache_key_from_json",
    "canonical_json",
    "request_key",
    "schema_key_json",
]
