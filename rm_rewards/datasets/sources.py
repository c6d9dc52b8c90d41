"""The known datasets and where their raw rows come from: bundled files, local files, or the hub.

Every loader returns plain dict rows in the source's own schema (the converters read them);
nothing here converts. Hugging Face `datasets` is imported only inside `load_hub_rows`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rm_rewards.bundled import BUNDLED_DATA

LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


class UnknownDatasetError(ValueError):
    pass


class NoBundledRowsError(FileNotFoundError):
    pass


class HubSource(BaseModel):
    """Arguments for `datasets.load_dataset(repo_id, name=config_name, data_dir=..., split=...)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo_id: str
    config_name: str | None = None
    data_dir: str | None = None
    split: str = "train"


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    family: Literal["helpsteer2", "hh_rlhf"]  # which converter reads its rows
    description: str
    bundled_files: tuple[str, ...]  # paths under rm_rewards/bundled_data; empty: hub/local only
    hub: HubSource


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="helpsteer2",
            family="helpsteer2",
            description="HelpSteer2 ratings: prompt, response, five 0-4 attributes "
            "(bundled: 8 validation rows restored from NeMo-Aligner's test fixture)",
            bundled_files=("helpsteer2/validation_sample.jsonl",),
            hub=HubSource(repo_id="nvidia/HelpSteer2"),
        ),
        DatasetInfo(
            name="helpsteer2_preference",
            family="helpsteer2",
            description="HelpSteer2 preference subset: prompt, response_1, response_2, "
            "preference_strength -3..3 (hub or local only: no real rows could be bundled)",
            bundled_files=(),
            hub=HubSource(repo_id="nvidia/HelpSteer2", data_dir="preference"),
        ),
        DatasetInfo(
            name="hh_rlhf_helpful",
            family="hh_rlhf",
            description="Anthropic HH-RLHF helpful pairs "
            "(bundled: 1,137 pairs in RM-Gallery's early schema; the hub has chosen/rejected strings)",
            bundled_files=("hh_rlhf/anthropic_helpful_0521.jsonl",),
            hub=HubSource(repo_id="Anthropic/hh-rlhf", data_dir="helpful-base"),
        ),
        DatasetInfo(
            name="hh_rlhf_harmless",
            family="hh_rlhf",
            description="Anthropic HH-RLHF harmless-base pairs (bundled: the 2,312-row test split)",
            bundled_files=("hh_rlhf/harmless-base_test.jsonl.gz",),
            hub=HubSource(repo_id="Anthropic/hh-rlhf", data_dir="harmless-base"),
        ),
    )
}


def list_datasets() -> list[DatasetInfo]:
    """The known datasets, with their bundled files and hub defaults."""
    return list(DATASETS.values())


def dataset_info(dataset: str) -> DatasetInfo:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise UnknownDatasetError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}") from None


def read_rows_file(path: Path) -> list[Any]:
    """Rows of a .jsonl[.gz], .json[.gz] (a JSON array, or JSON lines) or .parquet file."""
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if not name.endswith(LOCAL_SUFFIXES):
        raise ValueError(f"{path}: unsupported file type; expected one of {', '.join(LOCAL_SUFFIXES)}")
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if name.endswith((".json", ".json.gz")) and text.lstrip().startswith("["):
        return _json_array(path, text)
    return _json_lines(path, text)


def _json_array(path: Path, text: str) -> list[Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON at line {error.lineno}: {error.msg}") from None


def _json_lines(path: Path, text: str) -> list[Any]:
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{line_number}: not valid JSON: {error.msg}") from None
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
    dataset_info(dataset)
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
