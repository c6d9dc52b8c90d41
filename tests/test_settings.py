"""The settings module owns every RMFORGE_* variable: typed, checked with errors that name the
variable, secrets never shown, the README's table equal to it, and nothing read at import time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.settings import (
    BY_ENV,
    SETTINGS,
    Settings,
    format_settings,
    load_settings,
    resources_for,
    settings_markdown_table,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rm_rewards", "training", "rm_resources", "rm_assets", "dagster_project")
CANARY = "sk-canary-7f3a9c1e-never-print-me"


def test_benchmark_files_from_the_environment(tmp_path):
    settings = load_settings({"RMFORGE_BENCHMARK_FILES": f"judge_bench={tmp_path}/a.jsonl, judge_bench={tmp_path}/b.jsonl"})
    datasets = resources_for(settings)["datasets"]
    assert datasets.benchmark_files == {"judge_bench": [f"{tmp_path}/a.jsonl", f"{tmp_path}/b.jsonl"]}


def test_no_benchmark_files_by_default():
    assert resources_for(load_settings({}))["datasets"].benchmark_files == {}


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("RMFORGE_BENCHMARK_FILES", "judge_bench", "RMFORGE_BENCHMARK_FILES='judge_bench': 'judge_bench' is not name=path"),
    ("RMFORGE_BENCHMARK_FILES", "judge_bench=", "is not name=path"),
    ("RMFORGE_BENCHMARK_FILES", "judgebench=/x.jsonl", "unknown benchmark 'judgebench'"),
    ("RMFORGE_DATASET_LIMIT", "ten", "RMFORGE_DATASET_LIMIT='ten'"),
    ("RMFORGE_DATASET_LIMIT", "-1", "RMFORGE_DATASET_LIMIT='-1'"),
    ("RMFORGE_PROFILE", "prod", "RMFORGE_PROFILE='prod'"),
    ("RMFORGE_DATASET_MODE", "ftp", "RMFORGE_DATASET_MODE='ftp'"),
    ("RMFORGE_TRAIN_USE_GPU", "yes", "RMFORGE_TRAIN_USE_GPU='yes': 'yes': expected 1 or 0"),
    ("RMFORGE_TRAIN_WORKERS", "0", "RMFORGE_TRAIN_WORKERS='0'"),
    ("RMFORGE_BENCHMARK_MODELS", "checkpoint:bt-1", "'checkpoint:bt-1' is not a rule or judge key"),
])
def test_bad_values_are_named(variable, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_settings({variable: value})


def test_empty_variables_count_as_unset():
    assert load_settings({"RMFORGE_DATASET_LIMIT": "", "RMFORGE_PROFILE": " "}) == Settings()


def test_local_profile_resources():
    resources = resources_for(load_settings({"RMFORGE_DATASET_MODE": "hub", "RMFORGE_DATASET_LIMIT": "5",
                                             "RMFORGE_RAY_ADDRESS": "ray://head:10001"}))
    assert resources["datasets"].mode == "bundled" and resources["datasets"].limit == 5  # the mode is production's
    llm = resources["llm"]
    assert (llm.max_concurrency, llm.structured_output, llm.budget, llm.base_url) == (4, "json_object_schema", "small", None)
    assert resources["ray"].address == "ray://head:10001" and resources["ray"].num_workers == 1


def test_production_profile_resources_and_the_key_only_as_an_env_var(tmp_path):
    environ = {
        "RMFORGE_PROFILE": "production", "RMFORGE_DATABASE": "md:rm", "RMFORGE_DATASET_MODE": "local",
        "RMFORGE_LLM_BASE_URL": "https://llm.example/v1", "RMFORGE_LLM_MODEL": "judge",
        "RMFORGE_LLM_API_KEY": CANARY, "RMFORGE_LLM_MAX_CONCURRENCY": "32", "RMFORGE_TRAIN_WORKERS": "4",
        "RMFORGE_TRAIN_USE_GPU": "1", "RMFORGE_VERL_GPUS_PER_NODE": "4", "RMFORGE_VERL_NODES": "2",
        "RMFORGE_VERL_VENV": str(tmp_path / "verl"), "RMFORGE_DATA_DIR": str(tmp_path / "data"),
    }
    settings = load_settings(environ)
    resources = resources_for(settings)
    assert resources["warehouse"].database == "md:rm" and resources["datasets"].mode == "local"
    llm = resources["llm"]
    assert (llm.base_url, llm.model, llm.max_concurrency, llm.budget) == ("https://llm.example/v1", "judge", 32, "full")
    assert llm.cache_path == str(tmp_path / "data" / "llm_cache.sqlite")
    assert (resources["ray"].num_workers, resources["ray"].use_gpu) == (4, True)
    verl = resources["verl"]
    assert (verl.n_gpus_per_node, verl.nnodes, verl.venv) == (4, 2, str(tmp_path / "verl"))
    # The resource holds the variable's name (Dagster reads it at run time), never the value.
    assert isinstance(llm.api_key, dg.EnvVar) and llm.api_key.env_var_name == "RMFORGE_LLM_API_KEY"
    assert CANARY not in repr(resources) and CANARY not in repr(settings) and CANARY not in settings.model_dump_json()
    assert settings.llm_api_key.get_secret_value() == CANARY
    # A run's resource config (what the UI shows) names the variable only.
    from dagster_project.definitions import build_definitions

    config = build_definitions(settings).resolve_job_def("main_job").resource_defs["llm"].config_schema.default_value
    assert config["api_key"] == {"env": "RMFORGE_LLM_API_KEY"} and CANARY not in json.dumps(config)


def test_production_turns_automation_off_and_takes_the_cron():
    from dagster_project.definitions import build_definitions

    defs = build_definitions(load_settings({"RMFORGE_PROFILE": "production", "RMFORGE_BENCHMARK_CRON": "0 5 * * 1"}))
    assert {s.cron_schedule for s in defs.schedules} == {"0 5 * * 1"}
    assert {s.default_status for s in defs.schedules} == {dg.DefaultScheduleStatus.STOPPED}
    assert {s.default_status for s in defs.sensors} == {dg.DefaultSensorStatus.STOPPED}


def test_the_llm_budget_follows_the_profile():
    local, production = (resources_for(load_settings({"RMFORGE_PROFILE": p}))["llm"] for p in ("local", "production"))
    assert (local.items(None, small=2), local.items(5, small=2), local.items(0, small=2)) == (2, 5, None)
    assert (production.items(None, small=2), production.items(5, small=2)) == (None, 5)
    assert (local.rounds(None), production.rounds(None), production.rounds(2)) == (1, 3, 2)


def test_settings_output_masks_every_secret():
    environ = {"RMFORGE_LLM_API_KEY": CANARY, "RMFORGE_SERVE_API_KEY": CANARY + "-serve",
               "RMFORGE_DATASET_LIMIT": "7"}
    text = format_settings(load_settings(environ), environ)
    assert CANARY not in text
    lines = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert set(lines) == set(BY_ENV)
    assert "set (masked)" in lines["RMFORGE_LLM_API_KEY"] and "set (masked)" in lines["RMFORGE_SERVE_API_KEY"]
    assert "7" in lines["RMFORGE_DATASET_LIMIT"] and "environment" in lines["RMFORGE_DATASET_LIMIT"]
    assert "not set" in format_settings(load_settings({}), {}).splitlines()[1 + list(BY_ENV).index("RMFORGE_LLM_API_KEY")]


def test_every_variable_the_code_names_is_a_setting():
    """A new RMFORGE_* variable anywhere in the packages must be declared here first."""
    named = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            named |= set(re.findall(r"RMFORGE_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    assert named - set(BY_ENV) == set()
    assert all(s.description and s.type for s in SETTINGS)


def test_readme_table_is_the_settings_table():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0]
    assert block.strip() == settings_markdown_table()


def test_importing_the_code_location_reads_no_rmforge_variable():
    """Every package is imported (the code location too) with os.environ watched: no RMFORGE_*
    variable is read. The one exception is named: the dataset partitions are static partitions
    of module-level assets, so rm_assets.partitions reads the datasets file when imported."""
    code = f"""
import json, os
read = set()
environ = os.environ
class Spy(dict):
    def __getitem__(self, key):
        read.add(key); return environ[key]
    def get(self, key, default=None):
        read.add(key); return environ.get(key, default)
    def __contains__(self, key):
        read.add(key); return key in environ
os.environ = Spy(environ)
import pkgutil, importlib
for package in {PACKAGES!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if info.name.endswith(("verl_pipes_entry", "__main__")) or ".tests" in info.name:
            continue
        importlib.import_module(info.name)
import dagster_project.definitions
print(json.dumps(sorted(k for k in read if k.startswith("RMFORGE_"))))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["RMFORGE_DATASETS_FILE"]
