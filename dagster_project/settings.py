"""Every `RMFORGE_*` variable in one place: its type, default, description and whether it is secret.

`load_settings(environ)` reads them once, at the edge (when the definitions are built, or when an
`rmforge` command starts), checks them and returns a frozen `Settings`; `resources_for(settings)`
turns the settings into the graph's resources. Nothing below `dagster_project` reads an
`RMFORGE_*` variable where a value can be passed in; the few processes that must read one from
their own environment say so in their field's `read` (see `READ_BY`).

`RMFORGE_PROFILE=local` (default) runs everything embedded on one machine: bundled datasets, a
DuckDB file under the data folder, the embedded llama.cpp server with small LLM budgets.
`RMFORGE_PROFILE=production` takes its endpoints and locations from the variables below.

Secrets (`secret=True`) are never printed (`format_settings` says only "set (masked)" / "not set")
and reach Dagster only as `dg.EnvVar`, so their values never appear in run config, the UI,
metadata or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

PROFILES = ("local", "production")

# Who reads a variable besides `load_settings` (which reads all of them, when the definitions are
# built or an rmforge command starts, and passes them on as resource config).
READ_BY = {
    "settings": "load_settings only, passed on as resource config",
    "settings+data_dir": "rm_resources.warehouse.default_data_dir, at call time, for what runs "
    "without settings (checkpoint folders, tests)",
    "settings+partitions": "rm_resources.datasets.datasets_file, when rm_assets.partitions is "
    "imported (the dataset partitions are static partitions of module-level assets)",
    "dagster": "Dagster, through dg.EnvVar, when the llm resource is set up (so never in run config); "
    "Ray scoring workers, from their own environment (rm_resources/ray_scoring.py)",
    "serve": "Ray Serve replicas, from their own environment (rm_resources/serving/app.py); verl's "
    "remote reward function sends it (training/verl_remote_reward.py)",
    "verl_worker": "training/verl_remote_reward.py, inside verl's reward workers (processes rmforge "
    "does not start)",
}

DEFAULT_BENCHMARK_MODELS = ("reward:length_penalty", "judge:helpfulness_pointwise")


def _env(name: str, *, secret: bool = False, read: str = "settings", profile: str = "both") -> dict[str, Any]:
    return {"env": name, "secret": secret, "read": read, "profile": profile}


class Settings(BaseModel):
    """The effective configuration. One field per `RMFORGE_*` variable (its name in `env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: Literal["local", "production"] = Field(
        default="local", description="local: everything embedded, small LLM budgets; production: endpoints "
        "and locations from the variables below, full budgets, automation off until turned on",
        json_schema_extra=_env("RMFORGE_PROFILE"))
    data_dir: str | None = Field(
        default=None, description="Folder for run-time files (warehouse, LLM cache, checkpoints, logs); "
        "default ./data under the working directory", json_schema_extra=_env("RMFORGE_DATA_DIR", read="settings+data_dir"))
    database: str | None = Field(
        default=None, description="DuckDB file path or md:NAME (MotherDuck); default "
        "RMFORGE_DATA_DIR/rmforge.duckdb", json_schema_extra=_env("RMFORGE_DATABASE", profile="production"))
    dataset_mode: Literal["hub", "local", "bundled"] = Field(
        default="hub", description="Where dataset rows come from (the local profile always uses bundled)",
        json_schema_extra=_env("RMFORGE_DATASET_MODE", profile="production"))
    dataset_limit: int | None = Field(
        default=None, ge=0, description="Keep the first N rows of every dataset (quick runs, tests); "
        "default all", json_schema_extra=_env("RMFORGE_DATASET_LIMIT"))
    datasets_file: str | None = Field(
        default=None, description="The datasets file; default datasets.yaml at the project root if present",
        json_schema_extra=_env("RMFORGE_DATASETS_FILE", read="settings+partitions"))
    benchmark_files: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Local benchmark files: name=path pairs separated by commas (a "
        "name may repeat), e.g. judge_bench=/data/jb_gpt.jsonl,judge_bench=/data/jb_claude.jsonl",
        json_schema_extra=_env("RMFORGE_BENCHMARK_FILES"))
    benchmark_models: tuple[str, ...] = Field(
        default=DEFAULT_BENCHMARK_MODELS, description="Baseline reward:/judge: model keys the sensor "
        "registers and benchmarks, comma-separated", json_schema_extra=_env("RMFORGE_BENCHMARK_MODELS"))
    benchmark_cron: str = Field(
        default="0 3 * * *", description="Cron of the benchmark schedules",
        json_schema_extra=_env("RMFORGE_BENCHMARK_CRON"))
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint incl. /v1; unset: rmforge run / ui start "
        "the embedded llama.cpp server and pass its URL to the LLM resource",
        json_schema_extra=_env("RMFORGE_LLM_BASE_URL"))
    llm_model: str | None = Field(
        default=None, description="Model name at the endpoint (with RMFORGE_LLM_BASE_URL)",
        json_schema_extra=_env("RMFORGE_LLM_MODEL"))
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key of the endpoint", json_schema_extra=_env(
            "RMFORGE_LLM_API_KEY", secret=True, read="dagster"))
    llm_max_concurrency: int = Field(
        default=256, ge=1, description="LLM requests in flight per step process (local: 4, the embedded "
        "server serves one at a time)", json_schema_extra=_env("RMFORGE_LLM_MAX_CONCURRENCY", profile="production"))
    ray_address: str | None = Field(
        default=None, description="Ray cluster (ray://host:10001 or auto) for training, scoring and "
        "serving; default a small local Ray per step", json_schema_extra=_env("RMFORGE_RAY_ADDRESS"))
    train_workers: int = Field(
        default=2, ge=1, description="Ray Train workers (local: 1)",
        json_schema_extra=_env("RMFORGE_TRAIN_WORKERS", profile="production"))
    train_use_gpu: bool = Field(
        default=False, description="Train on GPUs (1/0)", json_schema_extra=_env("RMFORGE_TRAIN_USE_GPU",
                                                                                 profile="production"))
    verl_gpus_per_node: int = Field(
        default=8, ge=1, description="GPUs per node for verl GRPO", json_schema_extra=_env(
            "RMFORGE_VERL_GPUS_PER_NODE", profile="production"))
    verl_nodes: int = Field(
        default=1, ge=1, description="Nodes for verl GRPO", json_schema_extra=_env("RMFORGE_VERL_NODES",
                                                                                   profile="production"))
    verl_venv: str | None = Field(
        default=None, description="verl's own venv; default .venvs/verl (training/setup_verl_venv.sh)",
        json_schema_extra=_env("RMFORGE_VERL_VENV"))
    serve_api_key: SecretStr | None = Field(
        default=None, description="rmforge serve: when set, required on every request but /health",
        json_schema_extra=_env("RMFORGE_SERVE_API_KEY", secret=True, read="serve"))
    reward_url: str = Field(
        default="http://127.0.0.1:8000", description="The rmforge serve address verl's remote reward "
        "function asks", json_schema_extra=_env("RMFORGE_REWARD_URL", read="verl_worker"))

    @field_validator("benchmark_files", mode="before")
    @classmethod
    def _parse_benchmark_files(cls, value: Any) -> Any:
        return _benchmark_files(value) if isinstance(value, str) else value

    @field_validator("benchmark_models", mode="before")
    @classmethod
    def _parse_benchmark_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [m.strip() for m in value.split(",") if m.strip()] or list(DEFAULT_BENCHMARK_MODELS)
        return tuple(_check_model_key(key) for key in value)

    @field_validator("train_use_gpu", mode="before")
    @classmethod
    def _parse_flag(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() not in ("0", "1"):
            raise ValueError(f"{value!r}: expected 1 or 0")
        return value

    # --- effective values (what the resources get) ----------------------------------------------

    def effective_data_dir(self) -> Path:
        return Path(self.data_dir or Path.cwd() / "data").resolve()

    def effective_database(self) -> str:
        if self.profile == "production" and self.database:
            return self.database
        return str(self.effective_data_dir() / "rmforge.duckdb")

    def effective_datasets_file(self) -> Path | None:
        from rm_resources.datasets import datasets_file

        return datasets_file(self.datasets_file)

    def with_embedded_llm(self, base_url: str, model: str) -> Settings:
        """These settings with the embedded server as the LLM endpoint (`rmforge run` / `rmforge ui`)."""
        return self.model_copy(update={"llm_base_url": base_url, "llm_model": model})


@dataclass(frozen=True)
class Setting:
    """One variable, for tables (`rmforge settings`, the README) and the environment's reader."""

    env: str
    field: str
    type: str
    default: str
    description: str
    secret: bool
    read: str
    profile: str


def _type_name(annotation: Any) -> str:
    """The type in words (no `|`: it goes into a markdown table); every optional one may be unset."""
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " / ".join(typing.get_args(annotation))
    if origin is not None:
        return "name=path list" if origin is dict else "comma-separated list"
    return {str: "text", int: "integer", bool: "1 / 0", SecretStr: "secret text"}[annotation]


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _settings_table() -> tuple[Setting, ...]:
    rows = []
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra
        default = "" if info.default_factory is not None else _default_text(info.default)
        rows.append(Setting(env=extra["env"], field=name, type=_type_name(info.annotation), default=default or "none",
                            description=info.description, secret=extra["secret"], read=extra["read"],
                            profile=extra["profile"]))
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _settings_table()
BY_ENV = {s.env: s for s in SETTINGS}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from `environ` (default: this process's environment). An empty variable counts
    as unset. Raises ValueError naming the variable for a bad value."""
    environ = os.environ if environ is None else environ
    values = {s.field: environ[s.env] for s in SETTINGS if environ.get(s.env, "").strip()}
    try:
        return Settings(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        setting = next(s for s in SETTINGS if s.field == error["loc"][0])
        shown = "(masked)" if setting.secret else repr(environ.get(setting.env))
        message = error["msg"].removeprefix("Value error, ")
        raise ValueError(f"{setting.env}={shown}: {message}") from None


def _benchmark_files(value: str) -> dict[str, tuple[str, ...]]:
    from rm_rewards.benchmarks.items import BENCHMARK_NAMES

    files: dict[str, list[str]] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, sep, path = entry.partition("=")
        if not sep or not path.strip():
            raise ValueError(f"{entry!r} is not name=path")
        if name.strip() not in BENCHMARK_NAMES:
            raise ValueError(f"unknown benchmark {name.strip()!r}; one of {', '.join(BENCHMARK_NAMES)}")
        files.setdefault(name.strip(), []).append(path.strip())
    return {name: tuple(paths) for name, paths in files.items()}


def _check_model_key(key: str) -> str:
    from rm_rewards.benchmarks.model_keys import parse_model_key

    if parse_model_key(key).prefix not in ("reward", "judge"):
        raise ValueError(f"{key!r} is not a rule or judge key; checkpoints and principle judges are "
                         "benchmarked by their own assets")
    return key


# --- the resources of a profile ----------------------------------------------------------------


def _llm_api_key(settings: Settings):
    """The key as a `dg.EnvVar` (Dagster reads it when the resource is set up; run config and the UI
    show only the variable's name), or None when unset."""
    import dagster as dg

    return dg.EnvVar(BY_ENV["RMFORGE_LLM_API_KEY"].env) if settings.llm_api_key is not None else None


def resources_for(settings: Settings) -> dict[str, Any]:
    from rm_resources.datasets import DatasetSourceResource
    from rm_resources.llm import LLMClientResource
    from rm_resources.ray_cluster import RayClusterResource
    from rm_resources.verl import VerlTrainerResource
    from rm_resources.warehouse import WarehouseResource

    local = settings.profile == "local"
    datasets_file = settings.effective_datasets_file()
    endpoint = dict(base_url=settings.llm_base_url, model=settings.llm_model, api_key=_llm_api_key(settings),
                    cache_path=str(settings.effective_data_dir() / "llm_cache.sqlite"))
    benchmark_files = {name: list(paths) for name, paths in settings.benchmark_files.items()}
    return {
        "datasets": DatasetSourceResource(
            mode="bundled" if local else settings.dataset_mode, limit=settings.dataset_limit,
            benchmark_files=benchmark_files, datasets_file=str(datasets_file) if datasets_file else None,
        ),
        "warehouse": WarehouseResource(database=settings.effective_database()),
        # The embedded llama.cpp server serves one request at a time: keep the queue short.
        # llama-cpp-python's server takes a schema only as {"type": "json_object", "schema": ...}.
        "llm": LLMClientResource(**endpoint, max_concurrency=4, timeout_s=300.0,
                                 structured_output="json_object_schema", budget="small")
        if local else LLMClientResource(**endpoint, max_concurrency=settings.llm_max_concurrency, budget="full"),
        "ray": RayClusterResource(address=settings.ray_address, num_workers=1) if local else RayClusterResource(
            address=settings.ray_address, num_workers=settings.train_workers, use_gpu=settings.train_use_gpu),
        "verl": VerlTrainerResource(venv=settings.verl_venv) if local else VerlTrainerResource(
            venv=settings.verl_venv, n_gpus_per_node=settings.verl_gpus_per_node, nnodes=settings.verl_nodes),
    }


# --- rmforge settings ----------------------------------------------------------------------------


def shown_value(settings: Settings, setting: Setting) -> str:
    """A setting's value as `rmforge settings` prints it: a secret only as set/not set."""
    value = getattr(settings, setting.field)
    if setting.secret:
        return "set (masked)" if value is not None else "not set"
    if setting.field == "data_dir":
        return str(settings.effective_data_dir())
    if setting.field == "database":
        return settings.effective_database()
    if setting.field == "datasets_file":
        path = settings.effective_datasets_file()
        return str(path) if path else "none (the built-in datasets only)"
    if setting.field == "benchmark_files":
        return ",".join(f"{n}={p}" for n, paths in value.items() for p in paths) or "none"
    return _default_text(value) if value is not None or setting.field != "llm_base_url" else \
        "unset (rmforge run / ui start the embedded server)"


def format_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """Every setting's effective value, where it came from (environment or default) and whether the
    profile uses it. Secret values are never part of the text."""
    environ = os.environ if environ is None else environ
    rows = [("variable", "value", "from", "")]
    for setting in SETTINGS:
        source = "environment" if environ.get(setting.env, "").strip() else "default"
        unused = setting.profile == "production" and settings.profile == "local"
        rows.append((setting.env, shown_value(settings, setting), source, "(production profile only)" if unused else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths + [0])).rstrip() for row in rows)


def settings_markdown_table() -> str:
    """The README's table of variables (tests/test_settings.py keeps the README equal to it)."""
    lines = ["| variable | type | default | profile | description |", "| --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        secret = " Secret: never printed or stored." if s.secret else ""
        also = f" Also read by {READ_BY[s.read]}." if s.read != "settings" else ""
        lines.append(f"| `{s.env}` | {s.type} | {s.default} | {s.profile} | {s.description}.{secret}{also} |")
    return "\n".join(lines)
