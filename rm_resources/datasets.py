"""Which datasets the project has (the datasets file) and where their raw rows come from.

A thin Dagster wrapper over `rm_rewards.datasets`: `dataset_catalog()` reads the project's datasets
file (`RMFORGE_DATASETS_FILE`, else `datasets.yaml` at the project root, else the built-ins only);
`DatasetSourceResource` reads a dataset's rows in the source's own schema, ready for
`rm_rewards.datasets.convert.convert_rows`, and says where each benchmark's items come from
(`benchmark_source`, `load_benchmark_items`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from rm_rewards.datasets.catalog import (
    DatasetCatalog,
    DatasetInfo,
    HubSource,
    UnknownDatasetError,
    builtin_catalog,
    check_columns,
    load_catalog,
)
from rm_rewards.datasets.sources import (
    find_local_file,
    load_bundled_rows,
    load_hub_rows,
    load_local_rows,
    read_rows_file,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATASETS_FILE_VARIABLE = "RMFORGE_DATASETS_FILE"


def datasets_file(configured: str | None = None) -> Path | None:
    """The datasets file in effect: `configured` (dagster_project.settings passes it), else
    $RMFORGE_DATASETS_FILE, else <project>/datasets.yaml if present. The variable is read here too
    because the dataset partitions are defined when rm_assets.partitions is imported."""
    configured = configured or os.environ.get(DATASETS_FILE_VARIABLE)
    if configured:
        return Path(configured).expanduser().resolve()
    default = PROJECT_ROOT / "datasets.yaml"
    return default if default.is_file() else None


def dataset_catalog() -> DatasetCatalog:
    """The project's datasets: the built-ins plus the datasets file's, checked (raises on a bad entry).

    Read when the definitions load, so a dataset added to the file appears as a partition after a
    definitions reload (the UI's "Reload definitions", or restarting `dagster dev`).
    """
    path = datasets_file()
    if path is None:
        return builtin_catalog()
    if not path.is_file():
        raise FileNotFoundError(f"{DATASETS_FILE_VARIABLE}={path}: no such file")
    return _load(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> DatasetCatalog:
    return load_catalog(path)


class HubDatasetConfig(dg.Config):
    """Overrides `datasets.load_dataset` arguments for one dataset (unset fields keep the default)."""

    repo_id: str | None = Field(default=None, description="Hub repo id, or a local folder laid out like it")
    config_name: str | None = Field(default=None, description="Dataset config (subset) name")
    data_dir: str | None = Field(default=None, description="Folder inside the repo, e.g. harmless-base")
    split: str | None = Field(default=None, description="Split expression, e.g. train or train+test")


class DatasetSourceResource(dg.ConfigurableResource):
    """Reads a dataset's raw rows.

    A dataset whose entry in the datasets file names a source (`path` or `hub`) is always read from
    there. For the others (the built-ins), `mode` chooses:
    - bundled: the real samples shipped in `rm_rewards/bundled_data` (offline, the default);
    - local: `<local_dir>/<dataset>.jsonl|.jsonl.gz|.json|.json.gz|.parquet` in the source's schema;
    - hub: `datasets.load_dataset` with each dataset's defaults (`rm_rewards.datasets.convert.list_datasets`)
      updated by `hub` overrides, e.g. {"hh_rlhf_harmless": {"split": "test"}}.
    """

    mode: Literal["bundled", "local", "hub"] = Field(
        default="bundled", description="Where built-in datasets' rows come from"
    )
    local_dir: str | None = Field(default=None, description="Folder of <dataset>.* files (mode=local)")
    hub: dict[str, HubDatasetConfig] = Field(
        default_factory=dict, description="Per-dataset overrides of the hub defaults (mode=hub)"
    )
    cache_dir: str | None = Field(default=None, description="Hugging Face datasets cache (mode=hub)")
    limit: int | None = Field(default=None, ge=0, description="Keep only the first N rows (any mode)")
    benchmark_files: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per-benchmark local files in the benchmark's own format, e.g. "
        '{"judge_bench": ["data/judge_bench.jsonl"]}; they replace the bundled sample or the hub',
    )

    # --- benchmarks: where each one's items come from ------------------------------------------

    def benchmark_source(self, benchmark: str):
        """Its configured files, else the hub (mode=hub), else its bundled sample; raises
        `NoBenchmarkSource` (saying how to configure one) when there is none."""
        from rm_rewards.benchmarks.loaders import benchmark_source

        return benchmark_source(benchmark, mode=self.mode, files=self.benchmark_files)

    def benchmark_sources(self, benchmarks) -> tuple[list[str], dict[str, str]]:
        """(the benchmarks that have a source, {benchmark: why not} for the others)."""
        from rm_rewards.benchmarks.loaders import NoBenchmarkSource

        available, skipped = [], {}
        for benchmark in benchmarks:
            try:
                self.benchmark_source(benchmark)
                available.append(benchmark)
            except NoBenchmarkSource as reason:
                skipped[benchmark] = str(reason)
        return available, skipped

    def load_benchmark_items(self, benchmark: str):
        """The benchmark's items from its source (`benchmark_source`); a file path relative to the
        working directory. Raises `NoBenchmarkSource` when there is no source."""
        source = self.benchmark_source(benchmark)
        return source.load(**({"cache_dir": self.cache_dir} if source.kind == "hub" and self.cache_dir else {}))

    def info(self, dataset: str) -> DatasetInfo:
        """The dataset's entry in the project's catalog (raises for an unknown dataset)."""
        return dataset_catalog().get(dataset)

    def hub_source(self, dataset: str) -> HubSource:
        """The dataset's hub source with this resource's overrides applied."""
        catalog = dataset_catalog()
        unknown = sorted(name for name in self.hub if name not in catalog.datasets)
        if unknown:
            raise UnknownDatasetError(
                f"hub overrides for unknown datasets {unknown}; known: {', '.join(catalog.datasets)}"
            )
        default = catalog.get(dataset).hub
        if default is None:
            raise UnknownDatasetError(f"dataset {dataset!r} has no hub source")
        override = self.hub.get(dataset)
        if override is None:
            return default
        changes = {key: value for key, value in override.model_dump().items() if value is not None}
        return default.model_copy(update=changes)

    def describe(self, dataset: str) -> str:
        """Where `load_rows(dataset)` reads from, in one line (for asset metadata)."""
        info = self.info(dataset)
        limit = "" if self.limit is None else f" (first {self.limit} rows)"
        if info.path is not None:
            return f"local: {info.path}{limit} ({info.format}, from {info.origin})"
        if info.own_source and info.hub is not None:
            return f"hub: {info.hub.repo_id}{limit} ({info.format}, from {info.origin})"
        if self.mode == "bundled":
            files = ", ".join(f"rm_rewards/bundled_data/{name}" for name in info.bundled_files)
            return f"bundled: {files or 'none'}{limit}"
        if self.mode == "local":
            try:
                where = str(find_local_file(Path(self.local_dir or "."), dataset))
            except (FileNotFoundError, ValueError) as error:
                where = f"{self.local_dir}/{dataset}.* ({error})"
            return f"local: {where}{limit}"
        hub = self.hub_source(dataset)
        options = ", ".join(
            f"{key}={value}" for key, value in hub.model_dump().items() if value and key != "repo_id"
        )
        return f"hub: {hub.repo_id} ({options}){limit}"

    def load_rows(self, dataset: str) -> list[dict[str, Any]]:
        """Raw rows of `dataset`; raises for an unknown dataset, a missing file or setting, or rows
        without the columns the dataset's format needs (never an empty partition)."""
        rows = self._rows(self.info(dataset))
        rows = rows if self.limit is None else rows[: self.limit]
        check_columns(self.info(dataset), rows)
        return rows

    def _rows(self, info: DatasetInfo) -> list[Any]:
        if info.path is not None:
            return read_rows_file(info.path)
        if info.own_source and info.hub is not None:
            return load_hub_rows(self.hub_source(info.name), limit=self.limit, cache_dir=self.cache_dir)
        if self.mode == "bundled":
            return load_bundled_rows(info.name)
        if self.mode == "local":
            if not self.local_dir:
                raise ValueError("DatasetSourceResource: mode='local' needs local_dir")
            return load_local_rows(self.local_dir, info.name)
        return load_hub_rows(self.hub_source(info.name), limit=self.limit, cache_dir=self.cache_dir)
