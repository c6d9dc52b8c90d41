"""Bad rows become values, not crashes: `RowError` inside a converter, `QuarantinedRow` outside.

A converter reads each field through the checked readers below; the first problem raises a
`RowError(field, reason)`, which the conversion loop turns into a `QuarantinedRow` carrying the
raw row, so one bad row never stops the valid rows around it from being converted.
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from rm_rewards.core.schema import Sample
from rm_rewards.datasets.keys import check_test_fraction


class _HasDigest(Protocol):
    @property
    def digest(self) -> str: ...


RowT = TypeVar("RowT", bound=_HasDigest)


class RowError(ValueError):
    """One row is unusable; `field` names the offending field (dotted path for nested ones)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r}: {reason}")
        self.field = field
        self.reason = reason


class QuarantinedRow(BaseModel):
    """A row that conversion set aside, with why and the row itself (as JSON text) to inspect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    row_index: int
    field: str
    reason: str
    row_json: str

    @property
    def message(self) -> str:
        return f"{self.dataset} row {self.row_index}, field {self.field!r}: {self.reason}"


class ConversionResult(BaseModel):
    """What `convert_rows` returns: the converted samples and the rows it had to set aside."""

    model_config = ConfigDict(extra="forbid")

    samples: list[Sample]
    quarantined: list[QuarantinedRow]

    def counts(self) -> dict[str, int]:
        """Sample counts by task and split, plus the quarantine size (for asset metadata)."""
        counts: Counter[str] = Counter()
        for sample in self.samples:
            counts[f"{sample.task}/{sample.split}"] += 1
        counts["quarantined"] = len(self.quarantined)
        return dict(sorted(counts.items()))


class ConversionStream:
    """What a format's converter returns: the rows it set aside (all known before any sample is
    made: they come from reading the rows) and the samples, made record by record as the stream
    is iterated, once. A caller that turns each sample into a table row as it comes (the
    `converted_samples` asset) never holds a partition's `Sample` objects at once (~8 KB each,
    against well under 1 KB for the row they came from: bench/load_rules.py). `collect()` gives
    the whole `ConversionResult`; `counts` tallies the samples by task and split as they pass."""

    def __init__(self, samples: Iterable[Sample], quarantined: list[QuarantinedRow]) -> None:
        self.quarantined = quarantined
        self.counts: Counter[str] = Counter()
        self._samples: Iterator[Sample] | None = iter(samples)

    def __iter__(self) -> Iterator[Sample]:
        samples, self._samples = self._samples, None
        if samples is None:
            raise RuntimeError("a conversion stream is read once: convert the rows again, or collect() it")
        for sample in samples:
            self.counts[f"{sample.task}/{sample.split}"] += 1
            yield sample

    def collect(self) -> ConversionResult:
        return ConversionResult(samples=list(self), quarantined=self.quarantined)


def raw_row_json(row: Any) -> str:
    """The row as JSON text; values JSON cannot hold (numpy scalars) are written as text.

    ASCII-escaped so a row with lone surrogates can still be stored (Arrow/DuckDB need UTF-8).
    Bytes (a parquet binary column) that are UTF-8 are their text; other bytes become
    {"$bytes_hex": ...}, not their repr: "b'\\xff'" read back would pass for a valid string, while
    an object where text belongs is quarantined, and the bytes stay in the row to inspect.
    """
    return json.dumps(row, ensure_ascii=True, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return {"$bytes_hex": data.hex()}
    return str(value)


def quarantine(dataset: str, row_index: int, row: Any, error: RowError) -> QuarantinedRow:
    return QuarantinedRow(
        dataset=dataset,
        row_index=row_index,
        field=error.field,
        reason=error.reason,
        row_json=raw_row_json(row),
    )


def type_name(value: Any) -> str:
    """What a reader found, for its error: bytes stored by `raw_row_json` are named as bytes."""
    if isinstance(value, Mapping) and set(value) == {"$bytes_hex"}:
        return "bytes that are not UTF-8"
    return type(value).__name__


def require_mapping(row: Any) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise RowError("row", f"expected a JSON object, got {type(row).__name__}")
    return row


def require_field(row: Mapping[str, Any], field: str, path: str | None = None) -> Any:
    """The value of `field`; missing and null (None or NaN, as pandas writes it) both count as absent."""
    value = row.get(field)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise RowError(path or field, "missing")
    return value


def require_text(row: Mapping[str, Any], field: str, path: str | None = None) -> str:
    """A non-empty string (whitespace only counts as empty)."""
    value = require_field(row, field, path)
    if not isinstance(value, str):
        raise RowError(path or field, f"expected a string, got {type_name(value)}")
    if not value.strip():
        raise RowError(path or field, "empty text")
    return value


def is_finite_number(value: Any) -> bool:
    """A real number (not a boolean) that fits a float and is finite.

    JSON integers have no size limit: `10**400` is a valid Python int that `math.isfinite` and
    `float` refuse with OverflowError, so that case is answered here instead of crashing the load.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def require_int(row: Mapping[str, Any], field: str, low: int, high: int) -> int:
    """An integer in [low, high]; integral floats (4.0) pass, booleans and strings do not."""
    value = require_field(row, field)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RowError(field, f"expected an integer {low}..{high}, got {type(value).__name__} {value!r}")
    integral = isinstance(value, numbers.Integral) or (math.isfinite(value) and float(value).is_integer())
    if not integral:
        raise RowError(field, f"expected an integer {low}..{high}, got {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise RowError(field, f"{number} is out of range {low}..{high}")
    return number


def read_rows(
    dataset: str,
    rows: list[Any],
    read_row: Callable[[Mapping[str, Any]], RowT],
) -> tuple[list[tuple[int, RowT]], list[QuarantinedRow]]:
    """Apply `read_row` to every row: (row index, record) for each kept row, and the quarantine.

    The row index is the 0-based position in `rows`; converters record it on every sample as
    `metadata["raw_row_indices"]`. Bad rows and repeats of an earlier row go to quarantine:
    `read_row` returns an object with a `digest` (hash of the content it read), and a row whose
    digest was already seen would produce samples with the same ids, so it is set aside as a
    duplicate; the kept record is the first row's, with the first row's index.
    """
    kept: list[tuple[int, RowT]] = []
    quarantined: list[QuarantinedRow] = []
    first_row_of_digest: dict[str, int] = {}
    for row_index, row in enumerate(rows):
        try:
            record = read_row(require_mapping(row))
        except RowError as error:
            quarantined.append(quarantine(dataset, row_index, row, error))
            continue
        except ValidationError as error:
            quarantined.append(quarantine(dataset, row_index, row, _row_error_from(error)))
            continue
        except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as error:
            # A reader that met a shape it does not check for (a bug to fix there, with the
            # field): still only this row's problem, so it is set aside, never the whole load.
            unexpected = RowError("row", f"unreadable ({type(error).__name__}: {error})")
            quarantined.append(quarantine(dataset, row_index, row, unexpected))
            continue
        if record.digest in first_row_of_digest:
            duplicate = RowError(
                "row", f"duplicate of row {first_row_of_digest[record.digest]} (same content)"
            )
            quarantined.append(quarantine(dataset, row_index, row, duplicate))
            continue
        first_row_of_digest[record.digest] = row_index
        kept.append((row_index, record))
    return kept, quarantined


def convert_each_row(
    dataset: str,
    rows: list[Any],
    test_fraction: float,
    read_row: Callable[[Mapping[str, Any]], RowT],
    to_samples: Callable[[str, RowT, float, int], list[Sample]],
) -> ConversionStream:
    """The conversion loop of a converter whose rows convert one by one: `read_rows` (the
    quarantine), then, as the stream is read, each kept record → its samples,
    `to_samples(dataset, record, test_fraction, row_index)`."""
    check_test_fraction(test_fraction)
    records, quarantined = read_rows(dataset, rows, read_row)
    samples = (
        sample
        for row_index, record in records
        for sample in to_samples(dataset, record, test_fraction, row_index)
    )
    return ConversionStream(samples, quarantined)


def _row_error_from(error: ValidationError) -> RowError:
    first = error.errors()[0]
    return RowError(".".join(str(part) for part in first["loc"]) or "row", first["msg"])
