"""Environment profiles: which resources back the graph.

`RMFORGE_PROFILE=local` (default) runs everything embedded on one machine: bundled datasets, a
DuckDB file under the data folder. `RMFORGE_PROFILE=production` reads endpoints and locations
from the environment (`RMFORGE_DATABASE`, `RMFORGE_DATASET_MODE`, ...). Secrets are only ever
referenced through `dg.EnvVar`, so they never appear in run config or metadata.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.verl import VerlTrainerResource
from rm_resources.warehouse import WarehouseResource, default_database

PROFILES = ("local", "production")


def current_profile() -> str:
    profile = os.environ.get("RMFORGE_PROFILE", "local")
    if profile not in PROFILES:
        raise ValueError(f"RMFORGE_PROFILE={profile!r}: expected one of {', '.join(PROFILES)}")
    return profile


def _dataset_limit() -> int | None:
    """RMFORGE_DATASET_LIMIT: keep the first N rows of every dataset (quick runs and tests)."""
    value = os.environ.get("RMFORGE_DATASET_LIMIT")
    if not value:
        return None
    if not value.isdigit():
        raise ValueError(f"RMFORGE_DATASET_LIMIT={value!r}: expected a whole number of rows")
    return int(value)


def _benchmark_files() -> dict[str, list[str]]:
    """RMFORGE_BENCHMARK_FILES: local benchmark files, `name=path` pairs separated by commas (a name
    may repeat), e.g. `judge_bench=/data/judge_bench_gpt.jsonl,judge_bench=/data/judge_bench_claude.jsonl`."""
    from rm_rewards.benchmarks.items import BENCHMARK_NAMES

    value = os.environ.get("RMFORGE_BENCHMARK_FILES", "").strip()
    files: dict[str, list[str]] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, sep, path = entry.partition("=")
        if not sep or not path.strip():
            raise ValueError(f"RMFORGE_BENCHMARK_FILES: {entry!r} is not name=path")
        if name.strip() not in BENCHMARK_NAMES:
            raise ValueError(
                f"RMFORGE_BENCHMARK_FILES: unknown benchmark {name.strip()!r}; one of {', '.join(BENCHMARK_NAMES)}"
            )
        files.setdefault(name.strip(), []).append(path.strip())
    return files


def resources_for(profile: str) -> dict[str, Any]:
    if profile == "local":
        return {
            "datasets": DatasetSourceResource(
                mode="bundled", limit=_dataset_limit(), benchmark_files=_benchmark_files()
            ),
            "warehouse": WarehouseResource(database=default_database()),
            # The embedded llama.cpp server serves one request at a time: keep the queue short.
            # llama-cpp-python's server takes a schema only as {"type": "json_object", "schema": ...}.
            "llm": LLMClientResource(max_concurrency=4, timeout_s=300.0, structured_output="json_object_schema"),
            "ray": RayClusterResource(num_workers=1),
            "verl": VerlTrainerResource(),
        }
    return {
        "datasets": DatasetSourceResource(
            mode=os.environ.get("RMFORGE_DATASET_MODE", "hub"), limit=_dataset_limit(),
            benchmark_files=_benchmark_files(),
        ),
        "warehouse": WarehouseResource(database=os.environ.get("RMFORGE_DATABASE", default_database())),
        "llm": LLMClientResource(
            base_url=dg.EnvVar("RMFORGE_LLM_BASE_URL"),
            model=dg.EnvVar("RMFORGE_LLM_MODEL"),
            api_key=dg.EnvVar("RMFORGE_LLM_API_KEY"),
            max_concurrency=int(os.environ.get("RMFORGE_LLM_MAX_CONCURRENCY", "256")),
        ),
        "ray": RayClusterResource(
            address=os.environ.get("RMFORGE_RAY_ADDRESS"),
            num_workers=int(os.environ.get("RMFORGE_TRAIN_WORKERS", "2")),
            use_gpu=os.environ.get("RMFORGE_TRAIN_USE_GPU", "0") == "1",
        ),
        "verl": VerlTrainerResource(
            n_gpus_per_node=int(os.environ.get("RMFORGE_VERL_GPUS_PER_NODE", "8")),
            nnodes=int(os.environ.get("RMFORGE_VERL_NODES", "1")),
        ),
    }

