"""Datasets as configuration: a datasets file adds partitions; every mistake in it is named before a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rm_resources.datasets import DatasetSourceResource, dataset_catalog
from rm_rewards.datasets.catalog import (
    BUNDLED_DEFAULTS,
    FORMATS,
    DatasetConfigError,
    UnknownDatasetError,
    catalog_from_config,
    check_columns,
    load_catalog,
)
from rm_rewards.datasets.convert import convert_rows

ROOT = Path(__file__).resolve().parent.parent

PAIRS = [
    {"chosen": f"\n\nHuman: question {i}\n\nAssistant: a careful answer {i}",
     "rejected": f"\n\nHuman: question {i}\n\nAssistant: no"}
    for i in range(5)
]


def _jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "datasets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_the_bundled_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("RMFORGE_DATASETS_FILE", str(_file(tmp_path, "datasets: {}\n")))
    assert dataset_catalog().partitions == BUNDLED_DEFAULTS


def test_the_projects_own_file_loads():
    catalog = load_catalog(ROOT / "datasets.yaml")
    assert catalog.partitions[: len(BUNDLED_DEFAULTS)] == BUNDLED_DEFAULTS


def test_a_registered_local_file_becomes_a_partition_read_from_that_file(monkeypatch, tmp_path):
    _jsonl(tmp_path / "data" / "team_prefs.jsonl", PAIRS)
    config = _file(tmp_path, "datasets:\n  team_prefs:\n    format: hh_rlhf\n    path: data/team_prefs.jsonl\n")
    monkeypatch.setenv("RMFORGE_DATASETS_FILE", str(config))

    catalog = dataset_catalog()
    assert catalog.partitions == (*BUNDLED_DEFAULTS, "team_prefs")
    info = catalog.get("team_prefs")
    assert info.path == (tmp_path / "data" / "team_prefs.jsonl").resolve()
    assert info.own_source and info.origin == str(config)

    resource = DatasetSourceResource(limit=3)  # mode=bundled applies to the built-ins only
    rows = resource.load_rows("team_prefs")
    assert rows == PAIRS[:3]
    assert "team_prefs.jsonl" in resource.describe("team_prefs")
    result = convert_rows("team_prefs", rows, format=info.format)
    assert len(result.samples) == 6 and not result.quarantined  # 3 pairs, each A/B-swapped
    assert {s.source for s in result.samples} == {"team_prefs"}


def test_bundled_defaults_can_be_dropped(tmp_path):
    _jsonl(tmp_path / "only.jsonl", PAIRS)
    catalog = catalog_from_config(
        {"bundled_defaults": False, "datasets": {"only": {"format": "chat_pairs", "path": "only.jsonl"}}},
        source_file=tmp_path / "datasets.yaml",
    )
    assert catalog.partitions == ("only",)


def test_a_builtin_without_bundled_rows_gets_a_source_and_keeps_its_format(tmp_path):
    rows = [{"prompt": "p", "response_1": "a", "response_2": "b", "preference_strength": 2}]
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "pref.parquet")
    catalog = catalog_from_config(
        {"datasets": {"helpsteer2_preference": {"path": "pref.parquet"}}}, source_file=tmp_path / "d.yaml"
    )
    info = catalog.get("helpsteer2_preference")
    assert info.format == "helpsteer2_preference" and info.path == tmp_path / "pref.parquet"
    assert "helpsteer2_preference" in catalog.partitions


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        ({"format": "csv_pairs", "path": "x.jsonl"}, ["'team'", "'format'", "csv_pairs", "trl"]),
        ({"path": "x.jsonl"}, ["'team'", "'format' is missing"]),
        ({"format": "trl", "path": "missing.jsonl"}, ["'team'", "'path'", "no file"]),
        ({"format": "trl", "path": "x.csv"}, ["'team'", "'path'", "x.csv"]),
        ({"format": "trl"}, ["'team'", "needs a source"]),
        ({"format": "trl", "path": "x.jsonl", "hub": "org/repo"}, ["'team'", "either 'path' or 'hub'"]),
        ({"format": "trl", "hub": {"split": "train"}}, ["'team'", "hub.repo_id"]),
        ({"format": "trl", "paht": "x.jsonl"}, ["'team'", "unknown fields ['paht']"]),
        ({"format": "helpsteer3", "path": "x.jsonl"}, ["'team'", "column 'context' is missing", "helpsteer3"]),
    ],
)
def test_a_misconfigured_dataset_is_named_with_its_field(tmp_path, entry, names):
    _jsonl(tmp_path / "x.jsonl", PAIRS)
    (tmp_path / "x.csv").write_text("chosen,rejected\n")
    with pytest.raises(DatasetConfigError) as error:
        catalog_from_config({"datasets": {"team": entry}}, source_file=tmp_path / "datasets.yaml")
    for name in names:
        assert name in str(error.value)
    assert str(tmp_path / "datasets.yaml") in str(error.value)


@pytest.mark.parametrize("name", ["x'; DROP TABLE rule_scores; --", "My Data", "1st", "a/b", "", "x" * 64])
def test_names_that_are_not_plain_identifiers_are_refused(tmp_path, name):
    _jsonl(tmp_path / "x.jsonl", PAIRS)
    with pytest.raises(DatasetConfigError, match="is not allowed"):
        catalog_from_config({"datasets": {name: {"format": "trl", "path": "x.jsonl"}}}, source_file=tmp_path / "d.yaml")


def test_a_builtin_cannot_change_format(tmp_path):
    _jsonl(tmp_path / "x.jsonl", PAIRS)
    with pytest.raises(DatasetConfigError, match="built in with format 'hh_rlhf'"):
        catalog_from_config({"datasets": {"hh_rlhf_harmless": {"format": "trl", "path": "x.jsonl"}}},
                            source_file=tmp_path / "d.yaml")


def test_file_level_mistakes(tmp_path):
    with pytest.raises(DatasetConfigError, match="does not exist"):
        load_catalog(tmp_path / "none.yaml")
    with pytest.raises(DatasetConfigError, match="not valid YAML"):
        load_catalog(_file(tmp_path, "datasets: [unclosed\n"))
    with pytest.raises(DatasetConfigError, match="unknown keys"):
        load_catalog(_file(tmp_path, "dataset: {}\n"))
    with pytest.raises(DatasetConfigError, match="no datasets"):
        load_catalog(_file(tmp_path, "bundled_defaults: false\n"))


def test_a_damaged_parquet_file_or_an_empty_file_is_refused_at_load(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DatasetConfigError, match="'broken'.*not a readable parquet file"):
        catalog_from_config({"datasets": {"broken": {"format": "trl", "path": "broken.parquet"}}},
                            source_file=tmp_path / "d.yaml")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DatasetConfigError, match="holds no rows"):
        catalog_from_config({"datasets": {"empty": {"format": "trl", "path": "empty.jsonl"}}},
                            source_file=tmp_path / "d.yaml")


def test_rows_from_a_source_without_the_formats_columns_are_refused_not_emptied(tmp_path):
    catalog = catalog_from_config(
        {"datasets": {"hs3": {"format": "helpsteer3", "hub": {"repo_id": "nvidia/HelpSteer3"}}}},
        source_file=tmp_path / "d.yaml",
    )
    info = catalog.get("hs3")
    with pytest.raises(DatasetConfigError, match="'hs3'.*column 'context' is missing"):
        check_columns(info, [{"prompt": "p", "chosen": "a"}])
    with pytest.raises(DatasetConfigError, match="no rows"):
        check_columns(info, [])
    check_columns(info, [{"context": [], "response1": "a", "response2": "b", "overall_preference": 1}])


def test_unknown_dataset_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RMFORGE_DATASETS_FILE", str(_file(tmp_path, "datasets: {}\n")))
    with pytest.raises(UnknownDatasetError, match="datasets file"):
        DatasetSourceResource().load_rows("nope")


def test_every_format_names_an_importable_converter():
    missing = []
    for fmt in FORMATS.values():
        try:
            fmt.converter()
        except (ImportError, AttributeError) as error:
            missing.append(f"{fmt.name}: {error}")
    assert not missing, missing


def _definitions_in_subprocess(env_file: Path) -> subprocess.CompletedProcess:
    code = (
        "from dagster_project.definitions import defs\n"
        "defs()\n"
        "from rm_assets.partitions import dataset_partitions\n"
        "print(','.join(dataset_partitions.get_partition_keys()))\n"
    )
    env = {**os.environ, "RMFORGE_DATASETS_FILE": str(env_file)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.timeout(600)
def test_the_definitions_carry_the_files_datasets_and_refuse_a_bad_file(tmp_path):
    _jsonl(tmp_path / "team.jsonl", PAIRS)
    good = _definitions_in_subprocess(_file(tmp_path, "datasets:\n  team:\n    format: hh_rlhf\n    path: team.jsonl\n"))
    assert good.returncode == 0, good.stderr[-3000:]
    assert good.stdout.strip().splitlines()[-1].split(",") == [*BUNDLED_DEFAULTS, "team"]

    bad = _definitions_in_subprocess(_file(tmp_path, "datasets:\n  team:\n    format: hh_rlhf\n    path: gone.jsonl\n"))
    assert bad.returncode != 0
    assert "dataset 'team': field 'path': no file at" in bad.stderr
