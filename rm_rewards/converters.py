"""Public entry point for turning raw preference data into `Sample`s.

    rows = load_bundled_rows("hh_rlhf_harmless")           # or load_local_rows / load_hub_rows
    result = convert_rows("hh_rlhf_harmless", rows, test_fraction=0.2)
    result.samples      # list[Sample]: ids from content, split by prompt hash, pairs A/B-swapped;
                        # metadata["raw_row_indices"]: the rows (indices into `rows`) each came from
    result.quarantined  # list[QuarantinedRow]: dataset, row_index, field, reason, row_json

Datasets: see `list_datasets()`. The converters and loaders live in `rm_rewards.datasets`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rm_rewards.datasets.helpsteer2 import convert_helpsteer2
from rm_rewards.datasets.hh_rlhf import convert_hh_rlhf
from rm_rewards.datasets.keys import DEFAULT_TEST_FRACTION, check_test_fraction
from rm_rewards.datasets.quarantine import ConversionResult, QuarantinedRow
from rm_rewards.datasets.sources import (
    DatasetInfo,
    HubSource,
    NoBundledRowsError,
    UnknownDatasetError,
    dataset_info,
    list_datasets,
    load_bundled_rows,
    load_hub_rows,
    load_local_rows,
)

__all__ = [
    "ConversionResult",
    "DatasetInfo",
    "HubSource",
    "NoBundledRowsError",
    "QuarantinedRow",
    "UnknownDatasetError",
    "convert_rows",
    "dataset_info",
    "list_datasets",
    "load_bundled_rows",
    "load_hub_rows",
    "load_local_rows",
]

_CONVERTERS: dict[str, Callable[[str, list[Any], float], ConversionResult]] = {
    "helpsteer2": convert_helpsteer2,
    "hh_rlhf": convert_hh_rlhf,
}


def convert_rows(
    dataset: str, rows: list[Any], *, test_fraction: float = DEFAULT_TEST_FRACTION
) -> ConversionResult:
    """Convert one dataset's raw rows; bad rows are quarantined, never raised.

    Raises only for caller errors: an unknown dataset name or a test_fraction outside [0, 1].
    The row schema is detected per row (HelpSteer2 ratings vs preference rows; HH-RLHF dialogue
    strings or messages vs RM-Gallery's schema), so either HelpSteer2 name accepts either schema.
    """
    info = dataset_info(dataset)
    check_test_fraction(test_fraction)
    if not isinstance(rows, list):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    return _CONVERTERS[info.family](dataset, rows, test_fraction)
