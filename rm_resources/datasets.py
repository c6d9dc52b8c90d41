"""Where raw dataset rows come from: the bundled samples, local files, or the Hugging Face hub.

A thin Dagster wrapper over `rm_rewards.datasets.sources`; rows come back in the source's own
schema, ready for `rm_rewards.converters.convert_rows`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from rm_rewards.datasets.sources import (
    DATASETS,
    HubSource,
    UnknownDatasetError,
    dataset_info,
    find_local_file,
    load_bundled_rows,
    load_hub_rows,
    load_local_rows,
)


class HubDatasetConfig(dg.Config):
    """Overrides `datasets.load_dataset` arguments for one dataset (unset fields keep the default)."""

    repo_id: str | None = Field(default=None, description="Hub repo id, or a local folder laid out like it")
    config_name: str | None = Field(default=None, description="Dataset config (subset) name")
    data_dir: str | None = Field(default=None, description="Folder inside the repo, e.g. harmless-base")
    split: str | None = Field(default=None, description="Split expression, e.g. train or train+test")


class DatasetSourceResource(dg.ConfigurableResource):
    """Reads a dataset's raw rows from one of three places.

    - bundled: the real samples shipped in `rm_rewards/bundled_data` (offline, the default);
    - local: `<local_dir>/<dataset>.jsonl|.jsonl.gz|.json|.json.gz|.parquet` in the source's schema;
    - hub: `datasets.load_dataset` with each dataset's defaults (`rm_rewards.converters.list_datasets`)
      updated by `hub` overrides, e.g. {"hh_rlhf_harmless": {"split": "test"}}.
    """

    mode: Literal["bundled", "local", "hub"] = Field(default="bundled", description="Where rows come from")
    local_dir: str | None = Field(default=None, description="Folder of <dataset>.* files (mode=local)")
    hub: dict[str, HubDatasetConfig] = Field(
        default_factory=dict, description="Per-dataset overrides of the hub defaults (mode=hub)"
    )
    cache_dir: str | None = Field(default=None, description="Hugging Face datasets cache (mode=hub)")
    limit: int | None = Field(default=None, ge=0, description="Keep only the first N rows (any mode)")

    def hub_source(self, dataset: str) -> HubSource:
        """The dataset's hub defaults with this resource's overrides applied."""
        default = dataset_info(dataset).hub
        unknown = sorted(name for name in self.hub if name not in DATASETS)
        if unknown:
            raise UnknownDatasetError(
                f"hub overrides for unknown datasets {unknown}; known: {', '.join(DATASETS)}"
            )
        override = self.hub.get(dataset)
        if override is None:
            return default
        changes = {key: value for key, value in override.model_dump().items() if value is not None}
        return default.model_copy(update=changes)

    def describe(self, dataset: str) -> str:
        """Where `load_rows(dataset)` reads from, in one line (for asset metadata)."""
        info = dataset_info(dataset)
        limit = "" if self.limit is None else f" (first {self.limit} rows)"
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
        """Raw rows of `dataset`; raises for an unknown dataset or a missing file or setting."""
        dataset_info(dataset)
        if self.mode == "bundled":
            rows = load_bundled_rows(dataset)
        elif self.mode == "local":
            if not self.local_dir:
                raise ValueError("DatasetSourceResource: mode='local' needs local_dir")
            rows = load_local_rows(self.local_dir, dataset)
        else:
            return load_hub_rows(self.hub_source(dataset), limit=self.limit, cache_dir=self.cache_dir)
        return rows if self.limit is None else rows[: self.limit]
