"""`convert_rows`: one dataset's raw rows -> `Sample`s, by the dataset's format.

    rows = load_bundled_rows("hh_rlhf_harmless")           # rm_rewards.datasets.sources
    result = convert_rows("hh_rlhf_harmless", rows, test_fraction=0.2)
    result.samples      # list[Sample]: ids from content, split by prompt hash, pairs A/B-swapped;
                        # metadata["raw_row_indices"]: the rows (indices into `rows`) each came from
    result.quarantined  # list[QuarantinedRow]: dataset, row_index, field, reason, row_json

`stream_rows` is the same conversion as a `ConversionStream`: the quarantine at once, the samples
made as they are iterated (the `converted_samples` asset writes them that way, so a partition's
Sample objects are never all alive at once).

Datasets and formats are in `rm_rewards.datasets.catalog` (`list_datasets`, `load_catalog`, `FORMATS`).
"""

from __future__ import annotations

from typing import Any

from rm_rewards.datasets.catalog import FORMATS, DatasetConfigError, dataset_info
from rm_rewards.datasets.keys import DEFAULT_TEST_FRACTION, check_test_fraction
from rm_rewards.datasets.quarantine import ConversionResult, ConversionStream


def stream_rows(
    dataset: str, rows: list[Any], *, test_fraction: float = DEFAULT_TEST_FRACTION, format: str | None = None
) -> ConversionStream:
    """Convert one dataset's raw rows; bad rows are quarantined, never raised.

    `format` names the row schema (`FORMATS`); by default, the built-in dataset's own. Raises only
    for caller errors: an unknown dataset or format, or a test_fraction outside [0, 1]. Within a
    format the schema is detected per row (HelpSteer2 ratings vs preference rows; HH-RLHF dialogue
    strings or messages vs RM-Gallery's early schema).
    """
    if format is None:
        format = dataset_info(dataset).format
    if format not in FORMATS:
        raise DatasetConfigError(f"dataset {dataset!r}: unknown format {format!r}; one of {', '.join(FORMATS)}")
    check_test_fraction(test_fraction)
    if not isinstance(rows, list):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    return FORMATS[format].converter()(dataset, rows, test_fraction)


def convert_rows(
    dataset: str, rows: list[Any], *, test_fraction: float = DEFAULT_TEST_FRACTION, format: str | None = None
) -> ConversionResult:
    """`stream_rows`, collected: every sample in one list."""
    return stream_rows(dataset, rows, test_fraction=test_fraction, format=format).collect()
