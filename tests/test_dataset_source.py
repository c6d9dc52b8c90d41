"""Dataset sources: bundled rows, local files, the hub code path (offline), and the Dagster resource."""

from __future__ import annotations

import gzip
import ipaddress
import json
import socket
from pathlib import Path

import dagster as dg
import pytest

from rm_resources.datasets import DatasetSourceResource
from rm_rewards.datasets.bundled import BUNDLED_DATA
from rm_rewards.datasets.catalog import UnknownDatasetError, list_datasets
from rm_rewards.datasets.convert import convert_rows
from rm_rewards.datasets.sources import NoBundledRowsError, load_bundled_rows, load_local_rows

HH_ROWS = [
    {
        "chosen": f"\n\nHuman: question {i}\n\nAssistant: good {i}",
        "rejected": f"\n\nHuman: question {i}\n\nAssistant: bad",
    }
    for i in range(6)
]


@pytest.fixture
def no_network(monkeypatch):
    """Fail any connection that leaves this machine (loopback and Unix sockets stay allowed)."""
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                allowed = ipaddress.ip_address(host).is_loopback
            except ValueError:
                allowed = host == "localhost"
            if not allowed:
                raise AssertionError(f"test tried to reach the network: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def write_jsonl(path: Path, rows: list, compress: bool = False) -> None:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")


# --- bundled --------------------------------------------------------------------------------------


def test_list_datasets_names_the_four_datasets_and_their_bundled_files_exist():
    infos = {info.name: info for info in list_datasets()}
    assert set(infos) >= {"helpsteer2", "helpsteer2_preference", "hh_rlhf_helpful", "hh_rlhf_harmless"}
    for info in infos.values():
        assert all((BUNDLED_DATA / relative).is_file() for relative in info.bundled_files)
    assert infos["hh_rlhf_harmless"].hub.repo_id == "Anthropic/hh-rlhf"
    assert infos["hh_rlhf_harmless"].hub.data_dir == "harmless-base"
    assert infos["helpsteer2"].hub.repo_id == "nvidia/HelpSteer2"


@pytest.mark.parametrize(
    ("dataset", "n_rows"), [("helpsteer2", 8), ("hh_rlhf_helpful", 1137), ("hh_rlhf_harmless", 2312)]
)
def test_bundled_rows_are_read_whole(dataset, n_rows):
    rows = load_bundled_rows(dataset)
    assert len(rows) == n_rows and all(isinstance(row, dict) for row in rows)


def test_bundled_mode_describes_its_files():
    resource = DatasetSourceResource(limit=10)
    assert resource.describe("hh_rlhf_harmless") == (
        "bundled: rm_rewards/bundled_data/hh_rlhf/harmless-base_test.jsonl.gz (first 10 rows)"
    )
    assert len(resource.load_rows("hh_rlhf_harmless")) == 10


def test_missing_bundled_data_and_unknown_datasets_fail_clearly():
    with pytest.raises(
        NoBundledRowsError, match="helpsteer2_preference has no bundled rows.*nvidia/HelpSteer2"
    ):
        load_bundled_rows("helpsteer2_preference")
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'hh_rlhf'; known: helpsteer2"):
        load_bundled_rows("hh_rlhf")
    with pytest.raises(UnknownDatasetError):
        DatasetSourceResource().load_rows("nope")


# --- local files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".json-array", ".json-lines", ".parquet"])
def test_local_files_of_each_format_give_the_same_rows(tmp_path, suffix):
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(HH_ROWS), tmp_path / "hh_rlhf_harmless.parquet")
    elif suffix == ".json-array":
        (tmp_path / "hh_rlhf_harmless.json").write_text(json.dumps(HH_ROWS, indent=1), encoding="utf-8")
    elif suffix == ".json-lines":  # what `datasets.Dataset.to_json` writes
        write_jsonl(tmp_path / "hh_rlhf_harmless.json", HH_ROWS)
    else:
        write_jsonl(tmp_path / f"hh_rlhf_harmless{suffix}", HH_ROWS, compress=suffix.endswith(".gz"))
    assert load_local_rows(tmp_path, "hh_rlhf_harmless") == HH_ROWS
    resource = DatasetSourceResource(mode="local", local_dir=str(tmp_path), limit=4)
    assert resource.load_rows("hh_rlhf_harmless") == HH_ROWS[:4]
    assert resource.describe("hh_rlhf_harmless").startswith(f"local: {tmp_path}/hh_rlhf_harmless.")


def test_local_mode_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no file for helpsteer2 in .*helpsteer2 \+ one of .jsonl"):
        load_local_rows(tmp_path, "helpsteer2")
    write_jsonl(tmp_path / "hh_rlhf_helpful.jsonl", HH_ROWS)
    write_jsonl(tmp_path / "hh_rlhf_helpful.jsonl.gz", HH_ROWS, compress=True)
    with pytest.raises(ValueError, match="several files for hh_rlhf_helpful"):
        load_local_rows(tmp_path, "hh_rlhf_helpful")
    (tmp_path / "hh_rlhf_harmless.jsonl").write_text('{"chosen": "a"}\n{"chosen": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"hh_rlhf_harmless.jsonl:2: not valid JSON"):
        load_local_rows(tmp_path, "hh_rlhf_harmless")
    assert "no file for helpsteer2" in DatasetSourceResource(mode="local", local_dir=str(tmp_path)).describe(
        "helpsteer2"
    )
    with pytest.raises(ValueError, match="needs local_dir"):
        DatasetSourceResource(mode="local").load_rows("helpsteer2")


# --- hub, offline ---------------------------------------------------------------------------------


def test_hub_mode_runs_load_dataset_on_a_local_copy_of_the_repo_layout(tmp_path, no_network):
    # Anthropic/hh-rlhf keeps harmless-base/{train,test}.jsonl.gz; the same layout in a folder
    # exercises the real `datasets.load_dataset` call with data_dir and split, without a network.
    repo = tmp_path / "hh-rlhf"
    write_jsonl(repo / "harmless-base" / "train.jsonl.gz", HH_ROWS[:4], compress=True)
    write_jsonl(repo / "harmless-base" / "test.jsonl.gz", HH_ROWS[4:], compress=True)
    write_jsonl(repo / "helpful-base" / "test.jsonl.gz", HH_ROWS[:1], compress=True)
    resource = DatasetSourceResource(
        mode="hub", cache_dir=str(tmp_path / "cache"), hub={"hh_rlhf_harmless": {"repo_id": str(repo)}}
    )
    assert resource.hub_source("hh_rlhf_harmless").data_dir == "harmless-base"  # default kept
    assert resource.load_rows("hh_rlhf_harmless") == HH_ROWS[:4]  # default split: train
    assert resource.describe("hh_rlhf_harmless") == f"hub: {repo} (data_dir=harmless-base, split=train)"
    test_split = DatasetSourceResource(
        mode="hub",
        cache_dir=str(tmp_path / "cache"),
        limit=1,
        hub={"hh_rlhf_harmless": {"repo_id": str(repo), "split": "test"}},
    )
    assert test_split.load_rows("hh_rlhf_harmless") == HH_ROWS[4:5]
    result = convert_rows("hh_rlhf_harmless", resource.load_rows("hh_rlhf_harmless"))
    assert len(result.samples) == 8 and not result.quarantined


def test_hub_mode_reads_the_helpsteer2_preference_folder(tmp_path, no_network):
    repo = tmp_path / "HelpSteer2"
    rating = {
        "prompt": "p",
        "response": "r",
        "helpfulness": 3,
        "correctness": 3,
        "coherence": 4,
        "complexity": 1,
        "verbosity": 2,
    }
    pair = {"split": "train", "prompt": "p", "response_1": "a", "response_2": "b", "preference_strength": -2}
    write_jsonl(repo / "train.jsonl.gz", [rating], compress=True)
    write_jsonl(repo / "preference" / "preference.jsonl.gz", [pair], compress=True)
    resource = DatasetSourceResource(
        mode="hub",
        cache_dir=str(tmp_path / "cache"),
        hub={name: {"repo_id": str(repo)} for name in ("helpsteer2", "helpsteer2_preference")},
    )
    assert resource.load_rows("helpsteer2_preference") == [pair]
    preferred = convert_rows("helpsteer2_preference", [pair]).samples[0]
    assert preferred.preference == 0 and preferred.preference_strength == 2


def test_hub_overrides_for_unknown_datasets_are_refused():
    resource = DatasetSourceResource(mode="hub", hub={"hh_rlhf_harmles": {"split": "test"}})
    with pytest.raises(UnknownDatasetError, match="hh_rlhf_harmles"):
        resource.load_rows("hh_rlhf_harmless")


# --- in a Dagster run -----------------------------------------------------------------------------


def test_resource_is_configured_and_used_in_a_dagster_run(tmp_path):
    write_jsonl(tmp_path / "hh_rlhf_harmless.jsonl", HH_ROWS)
    seen = {}

    @dg.asset
    def raw_rows(dataset_source: DatasetSourceResource) -> None:
        seen["rows"] = dataset_source.load_rows("hh_rlhf_harmless")
        seen["hub"] = dataset_source.hub_source("hh_rlhf_harmless")

    config = {
        "mode": "local",
        "local_dir": str(tmp_path),
        "limit": 2,
        "hub": {"hh_rlhf_harmless": {"split": "test"}},
    }
    result = dg.materialize(
        [raw_rows],
        resources={"dataset_source": DatasetSourceResource()},
        run_config={"resources": {"dataset_source": {"config": config}}},
    )
    assert result.success
    assert seen["rows"] == HH_ROWS[:2]
    assert (seen["hub"].repo_id, seen["hub"].data_dir, seen["hub"].split) == (
        "Anthropic/hh-rlhf",
        "harmless-base",
        "test",
    )
