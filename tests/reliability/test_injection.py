"""Injection: names and keys from users reach SQL only as parameters or validated identifiers.

A hostile name, `x'; DROP TABLE rule_scores; --`, goes in everywhere a user can put a name: the
datasets file, the CLI (`rmforge run --partition/--train-on`, `rmforge audit`, `rmforge
datasets`), the store's functions (partition keys, model keys, run ids, table and column names)
and the new-checkpoint sensor (training-run keys from the instance, model keys from the
environment). Each is refused with an error that names it, or stored and read back literally;
afterwards every table still exists and a sentinel row in `rule_scores` is still there.
"""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from rm_resources.store import TABLES, Store, table_columns

HOSTILE = "x'; DROP TABLE rule_scores; --"
# Variants: the quote styles of DuckDB identifiers and strings, a comment, a statement break.
HOSTILES = [HOSTILE, 'x"; DROP TABLE "rule_scores"; --', "x') OR 1=1 --", "rule_scores; DELETE FROM raw_rows"]


def _sentinel_store(path) -> Store:
    """A warehouse with one rule_scores row that a successful injection would destroy."""
    store = Store(str(path))
    row = {column: None for column in table_columns("rule_scores")}
    row.update(sample_id="sentinel", reward_name="length_penalty", scores=[1.0], reasons=["kept"],
               response_errors=[None], run_id="sentinel-run")
    store.replace_partition("rule_scores", "helpsteer2", pd.DataFrame([row], columns=table_columns("rule_scores")))
    return store


def _assert_intact(store: Store) -> None:
    tables = set(store._query("SELECT table_name FROM information_schema.tables")["table_name"])
    assert set(TABLES) <= tables, f"tables gone: {set(TABLES) - tables}"
    assert store.row_count("rule_scores", "helpsteer2") == 1
    assert store.read_partition("rule_scores", "helpsteer2")["sample_id"].tolist() == ["sentinel"]


# --- the datasets file and `rmforge datasets` -------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILES)
def test_a_hostile_dataset_name_in_the_datasets_file_is_refused(tmp_path, name):
    from rm_rewards.datasets.catalog import DatasetConfigError, load_catalog

    (tmp_path / "rows.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    config = tmp_path / "datasets.yaml"
    config.write_text(json.dumps({"datasets": {name: {"format": "trl", "path": "rows.jsonl"}}}))  # JSON is YAML
    with pytest.raises(DatasetConfigError, match="is not allowed") as refused:
        load_catalog(config)
    assert repr(name) in str(refused.value) and str(config) in str(refused.value)


def test_rmforge_datasets_refuses_a_hostile_datasets_file_in_one_line(tmp_path, monkeypatch, capsys):
    from dagster_project.cli import main

    (tmp_path / "rows.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    config = tmp_path / "datasets.yaml"
    config.write_text(json.dumps({"datasets": {HOSTILE: {"format": "trl", "path": "rows.jsonl"}}}))
    monkeypatch.setenv("RMFORGE_DATASETS_FILE", str(config))
    assert main(["datasets"]) == 2
    captured = capsys.readouterr()
    assert repr(HOSTILE) in captured.err and "is not allowed" in captured.err
    assert "Traceback" not in captured.err and HOSTILE not in captured.out


# --- `rmforge run` and `rmforge audit` ---------------------------------------------------------------


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    """DAGSTER_HOME and RMFORGE_DATA_DIR in tmp_path, a warehouse with the sentinel row; the CLI's
    logging set-up (handlers on the process's loggers) is skipped so other tests' logs stay theirs."""
    import dagster_project.cli as cli

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RMFORGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(cli, "_quiet_libraries", lambda: None)
    return _sentinel_store(tmp_path / "data" / "rmforge.duckdb")


@pytest.mark.parametrize("flag", ["--partition", "--train-on"])
def test_rmforge_run_refuses_a_hostile_partition_before_touching_anything(cli_home, capsys, flag):
    from dagster_project.cli import main

    extra = [] if flag == "--partition" else ["--partition", "helpsteer2"]
    assert main(["run", *extra, flag, HOSTILE, "--skip-llm"]) == 2
    err = capsys.readouterr().err
    assert "unknown partitions" in err and repr(HOSTILE) in err
    _assert_intact(cli_home)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["llm_scores", HOSTILE], "no partition"),
        (["rule_scores", HOSTILE], "no partition"),
        (["benchmark_reports", f"rm_bench|{HOSTILE}"], "no partition"),
        (["baseline_benchmark_reports", f"rm_bench|{HOSTILE}"], "no partition"),
        (["pair", HOSTILE], "no training pair"),
        (["sample", HOSTILE], "no converted sample"),
        ([HOSTILE, "helpsteer2"], "unknown asset"),
    ],
)
def test_rmforge_audit_refuses_hostile_arguments(cli_home, capsys, argv, message):
    from dagster_project.cli import main

    assert main(["audit", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and HOSTILE in err.replace("\\'", "'"), err
    _assert_intact(cli_home)


# --- the store --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", HOSTILES)
def test_the_store_keeps_hostile_keys_literally(tmp_path, key):
    store = _sentinel_store(tmp_path / "w.duckdb")
    # A partition key, a run id and row contents, all hostile: written, counted and read back as given.
    count, _version = store.write_raw_rows(key, [{"prompt": key, "chosen": key}], run_id=key)
    assert count == 1 and store.read_raw_rows(key) == [{"prompt": key, "chosen": key}]
    assert store.count_by_partition("raw_rows") == {key: 1}
    assert store.row_count("raw_rows", key) == 1 and store.run_ids("raw_rows", key) == [key]
    assert store.rows_and_runs("raw_rows", key) == (1, [key])
    assert store.raw_row_hashes(key) and store.raw_rows_by_hash([key]) == {}
    # A hostile model key and asset in the benchmark tables, and every lookup by a hostile value.
    summary = {column: None for column in table_columns("benchmark_summaries")}
    summary.update(asset=key, benchmark="rm_bench", model_key=key, summary_json=json.dumps({"model": key}),
                   created_at=pd.Timestamp("2026-12-02"), run_id=key)
    store.append("benchmark_summaries", f"rm_bench|{key}", pd.DataFrame([summary], columns=table_columns("benchmark_summaries")))
    assert store.recent_summaries(key, f"rm_bench|{key}") == [{"model": key}]
    assert [r["model_key"] for r in store.latest_reports()] == [key]
    store.replace_partition("benchmark_scores", f"rm_bench|{key}", pd.DataFrame(columns=table_columns("benchmark_scores")),
                            where={"asset": key})
    assert store.read_samples(key) == [] and store.sample_rows([key]) == [] and store.training_pair_rows([key]) == []
    assert store.read_training_pairs([key]) == [] and store.checkpoint(key) is None
    assert store.read_principle_set(key) is None and store.principle_set_id(key) is None
    assert store.score_hash_mismatches("rule_scores", key) == [] and store.llm_score_principle_ids(key) == []
    assert store.raw_row_hashes_of("converted_samples", [key]) == [] and store.report_checkpoint_paths(key, key) == []
    assert not store.reference_exists(key, {"table": "rule_scores", "sample_id": key, "reward_name": key,
                                            "reward_version": key})
    _assert_intact(store)


@pytest.mark.parametrize("name", HOSTILES)
def test_the_store_refuses_hostile_identifiers(tmp_path, name):
    store = _sentinel_store(tmp_path / "w.duckdb")
    empty = pd.DataFrame(columns=table_columns("raw_rows"))
    with pytest.raises(ValueError, match="unknown table"):
        store.replace_partition(name, "helpsteer2", empty)
    with pytest.raises(ValueError, match="unknown table"):
        store.read_partition(name, "helpsteer2")
    with pytest.raises(ValueError, match="unknown table"):
        store.count_by_partition(name)
    with pytest.raises(ValueError, match="unknown table"):
        store.rows_and_runs(name, "helpsteer2")
    with pytest.raises(ValueError, match="has no columns"):
        store.read_partition("rule_scores", "helpsteer2", order_by=name)
    with pytest.raises(ValueError, match="has no columns"):
        store.replace_partition("rule_scores", "helpsteer2", pd.DataFrame(columns=table_columns("rule_scores")),
                                where={name: "x"})
    with pytest.raises(ValueError, match="not a score table"):
        store.score_hash_mismatches(name, "helpsteer2")
    with pytest.raises(ValueError, match="records no raw rows"):
        store.raw_row_hashes_of(name, ["helpsteer2"])
    assert not store.reference_exists("helpsteer2", {"table": name, "sample_id": "sentinel"})
    _assert_intact(store)


# --- the new-checkpoint sensor -------------------------------------------------------------------------


def test_a_hostile_model_key_for_the_sensor_is_refused_when_the_settings_are_read():
    from dagster_project.settings import load_settings

    with pytest.raises(ValueError, match="RMFORGE_BENCHMARK_MODELS=.*bad model key") as refused:
        load_settings({"RMFORGE_BENCHMARK_MODELS": f"reward:length_penalty,{HOSTILE}"})
    assert HOSTILE in str(refused.value)


def test_the_sensor_passes_a_hostile_training_run_key_on_literally(tmp_path):
    """A training-run key is whatever the instance holds; the sensor hands it on as the run's
    partition key unchanged, and the store looks it up as a value."""
    from dagster_project.sensors import new_checkpoint_sensor
    from dagster_project.settings import load_settings
    from rm_resources.datasets import DatasetSourceResource

    sensor = new_checkpoint_sensor(load_settings({"RMFORGE_BENCHMARK_MODELS": "reward:length_penalty"}))
    store = _sentinel_store(tmp_path / "w.duckdb")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", [HOSTILE])
        instance.report_runless_asset_event(dg.AssetMaterialization("rm_checkpoints", partition=HOSTILE))
        context = dg.build_sensor_context(instance=instance, resources={"datasets": DatasetSourceResource(mode="bundled")})
        result = sensor(context)
    runs = {r.partition_key.keys_by_dimension["run"] for r in result.run_requests if r.job_name == "benchmark_job"}
    assert runs == {HOSTILE}
    assert store.checkpoint(HOSTILE) is None  # what benchmark_reports asks the store with that key
    _assert_intact(store)
