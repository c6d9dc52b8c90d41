"""Reading a dataset's raw rows: bundled files, local files, or the hub (which datasets exist: `catalog`).

Every loader returns plain dict rows in the source's own schema (the converters read them);
nothing here converts. Hugging Face `datasets` is imported only inside `load_hub_rows`.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

from rm_rewards.datasets.bundled import BUNDLED_DATA
from rm_rewards.datasets.catalog import HubSource, dataset_info

LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


class NoBundledRowsError(FileNotFoundError):
    pass


class RowsFileError(ValueError):
    """A rows file that cannot be read as a whole (damaged, truncated, not UTF-8 JSON); names the
    file, and the line where there is one. Bad rows inside a readable file are the converters'."""


def read_rows_file(path: Path) -> list[Any]:
    """Rows of a .jsonl[.gz], .json[.gz] (a JSON array, or JSON lines) or .parquet file.

    Raises `RowsFileError` naming the file (and line) when it cannot be read: a damaged or
    truncated parquet or gzip file, bytes that are not UTF-8, a line that is not JSON.
    """
    name = path.name
    if name.endswith(".parquet"):
        return _parquet_rows(path)
    if not name.endswith(LOCAL_SUFFIXES):
        raise ValueError(f"{path}: unsupported file type; expected one of {', '.join(LOCAL_SUFFIXES)}")
    text = _decoded(path, _file_bytes(path))
    if name.endswith((".json", ".json.gz")) and text.lstrip().startswith("["):
        return _json_array(path, text)
    return _json_lines(path, text)


def _parquet_rows(path: Path) -> list[Any]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except FileNotFoundError:
        raise
    except Exception as error:  # pyarrow raises several types (ArrowInvalid, OSError) for a damaged file
        raise RowsFileError(f"{path}: not a readable parquet file: {error}") from None


def _file_bytes(path: Path) -> bytes:
    if not path.name.endswith(".gz"):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; truncated: EOFError
        raise RowsFileError(f"{path}: not a readable gzip file: {error}") from None


def _decoded(path: Path, data: bytes, first_line: int = 1) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); the error names the line of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + first_line
        raise RowsFileError(
            f"{path}:{line}: not valid UTF-8 (byte {data[error.start:error.start + 1]!r} at offset "
            f"{error.start}: {error.reason}); JSON text must be UTF-8"
        ) from None


def first_row(path: Path) -> Any | None:
    """The first row of a rows file without reading all of it where the format allows (None: no rows)."""
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            batch = next(parquet.iter_batches(batch_size=1), None)
        except Exception as error:  # pyarrow raises several types for a damaged file
            raise RowsFileError(f"{path}: not a readable parquet file: {error}") from None
        return None if batch is None or batch.num_rows == 0 else batch.to_pylist()[0]
    if name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(path, "rb") as handle:
                for line_number, line in enumerate(handle, start=1):
                    # A line blank only as text (b"\x1c": whitespace to str, not to bytes) is
                    # skipped, as reading the whole file skips it.
                    rows = _json_lines(path, _decoded(path, line, line_number), line_number) if line.strip() else []
                    if rows:
                        return rows[0]
        except (OSError, EOFError, zlib.error) as error:
            raise RowsFileError(f"{path}: not a readable gzip file: {error}") from None
        return None
    rows = read_rows_file(path)
    return rows[0] if rows else None


def _json_array(path: Path, text: str) -> list[Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RowsFileError(f"{path}: not valid JSON at line {error.lineno}: {error.msg}") from None
    except (ValueError, RecursionError) as error:  # e.g. an integer past Python's digit limit, deep nesting
        raise RowsFileError(f"{path}: not readable JSON: {error}") from None


def _json_lines(path: Path, text: str, first_line: int = 1) -> list[Any]:
    rows = []
    # Lines end at "\n" only: str.splitlines also breaks at U+2028, U+0085 and others, which
    # JSON allows raw inside a string, and would cut a valid row in two.
    for line_number, line in enumerate(text.split("\n"), start=first_line):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise RowsFileError(f"{path}:{line_number}: not valid JSON: {error.msg}") from None
        except (ValueError, RecursionError) as error:
            raise RowsFileError(f"{path}:{line_number}: not readable JSON: {error}") from None
    return rows


def load_bundled_rows(dataset: str) -> list[Any]:
    """The rows bundled with the package for `dataset`, in their files' order."""
    info = dataset_info(dataset)
    if not info.bundled_files:
        raise NoBundledRowsError(
            f"{dataset} has no bundled rows ({info.description}); read it from a local file "
            f"(<local_dir>/{dataset}.jsonl etc.) or the hub ({info.hub.repo_id})"
        )
    rows: list[Any] = []
    for relative in info.bundled_files:
        rows += read_rows_file(BUNDLED_DATA / relative)
    return rows


def find_local_file(directory: Path, dataset: str) -> Path:
    """The one file `<directory>/<dataset><suffix>` for a supported suffix."""
    found = [directory / f"{dataset}{suffix}" for suffix in LOCAL_SUFFIXES]
    found = [path for path in found if path.is_file()]
    if not found:
        raise FileNotFoundError(
            f"no file for {dataset} in {directory}: expected {dataset} + one of {', '.join(LOCAL_SUFFIXES)}"
        )
    if len(found) > 1:
        raise ValueError(f"several files for {dataset} in {directory}: {', '.join(p.name for p in found)}")
    return found[0]


def load_local_rows(directory: Path | str, dataset: str) -> list[Any]:
    return read_rows_file(find_local_file(Path(directory), dataset))


def load_hub_rows(hub: HubSource, *, limit: int | None = None, cache_dir: str | None = None) -> list[Any]:
    """Rows from `datasets.load_dataset`; `repo_id` may also be a local folder laid out like the repo."""
    import datasets  # Hugging Face datasets (heavy: imported only when the hub is used)

    loaded = datasets.load_dataset(
        hub.repo_id, name=hub.config_name, data_dir=hub.data_dir, split=hub.split, cache_dir=cache_dir
    )
    if limit is not None:
        loaded = loaded.select(range(min(limit, len(loaded))))
    return loaded.to_list()
