"""rm_checkpoints: a training run as a dynamic partition, trained on the curated training_pairs."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from rm_assets.checkpoints.assets import (
    TrainingRunConfig,
    rm_checkpoints,
    training_data_versions,
    training_run_key,
)
from rm_assets.curation.assets import training_pairs
from rm_assets.data.assets import converted_samples, raw_rows, rule_scores
from rm_resources.datasets import DatasetSourceResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.store import Store
from rm_resources.warehouse import WarehouseResource


@pytest.fixture
def warehouse_with_pairs(tmp_path):
    resources = {
        "datasets": DatasetSourceResource(mode="bundled", limit=40),
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
        "ray": RayClusterResource(),  # rule_scores scores in process (no address)
    }
    # No LLM stage: the curation runs on the human pairs and the rule scores alone.
    assert dg.materialize(
        [raw_rows, converted_samples, rule_scores, training_pairs], resources=resources, partition_key="hh_rlhf_harmless"
    ).success
    return resources


def test_training_run_key_depends_on_config_and_data():
    config = TrainingRunConfig()
    data = {"hh_rlhf_harmless": "80:abc"}
    assert training_run_key(config, data) == training_run_key(TrainingRunConfig(), dict(data))
    assert training_run_key(config, data) != training_run_key(TrainingRunConfig(epochs=3), data)
    assert training_run_key(config, data) != training_run_key(TrainingRunConfig(pairs="raw"), data)
    assert training_run_key(config, data) != training_run_key(config, {"hh_rlhf_harmless": "80:abd"})


def test_runs_trained_before_every_knob_was_a_run_knob_keep_their_keys():
    """Keys computed by the run config of commit 6162bb8 (13 knobs); the knobs exposed since change the
    key only when they are set."""
    data = {"hh_rlhf_harmless": "80:abc"}
    assert training_run_key(TrainingRunConfig(), data) == "bt-fa64ab6c1643"
    changed = TrainingRunConfig(epochs=3, datasets=["a", "b"], pairs="raw", max_train_pairs=None,
                                center_rewards_coefficient=0.01)
    assert training_run_key(changed, data) == "bt-f10d105b0d67"
    assert training_run_key(TrainingRunConfig(weight_decay=0.0), data) == "bt-fa64ab6c1643"
    assert training_run_key(TrainingRunConfig(weight_decay=0.1), data) != "bt-fa64ab6c1643"
    assert training_run_key(TrainingRunConfig(lr_scheduler="linear"), data) != "bt-fa64ab6c1643"


def test_a_changed_split_or_policy_is_a_new_run(tmp_path, warehouse_with_pairs):
    """The data version of the training pairs covers their splits and the curation policy."""
    store = Store(str(tmp_path / "w.duckdb"))
    config = TrainingRunConfig()
    before = training_run_key(config, training_data_versions(store, config.datasets))
    resources = warehouse_with_pairs
    assert dg.materialize([converted_samples, rule_scores, training_pairs], resources=resources,
                          partition_key="hh_rlhf_harmless",
                          run_config=dg.RunConfig(ops={"converted_samples": {"config": {"test_fraction": 0.5}}})).success
    after_split = training_run_key(config, training_data_versions(store, config.datasets))
    assert after_split != before
    assert dg.materialize([training_pairs], resources=resources, partition_key="hh_rlhf_harmless",
                          run_config=dg.RunConfig(ops={"training_pairs": {"config": {"refined_margin": 3.0}}})).success
    assert training_run_key(config, training_data_versions(store, config.datasets)) != after_split


def test_rm_checkpoints_trains_registers_and_loads_back(tmp_path, warehouse_with_pairs, monkeypatch):
    monkeypatch.setenv("RMFORGE_DATA_DIR", str(tmp_path / "data"))
    config = TrainingRunConfig(max_steps=2, batch_size=4, max_length=32, max_eval_pairs=8, max_train_pairs=None)
    store = Store(str(tmp_path / "w.duckdb"))
    key = training_run_key(config, training_data_versions(store, config.datasets))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", [key])
        result = dg.materialize(
            [rm_checkpoints],
            resources={**warehouse_with_pairs, "ray": RayClusterResource(use_ray=False)},
            partition_key=key,
            instance=instance,
            run_config=dg.RunConfig(ops={"rm_checkpoints": config}),
        )
    assert result.success
    metadata = result.asset_materializations_for_node("rm_checkpoints")[0].metadata
    assert metadata["steps"].value == 2
    assert metadata["train_pairs"].value > 0 and metadata["eval_pairs"].value > 0
    assert "data:image/png;base64," in metadata["metrics_curve"].value
    from rm_assets.checkpoints.assets import _curve_markdown

    assert _curve_markdown([{"kind": "step", "step": 1, "train_loss": 0.7}]).startswith("![")
    assert _curve_markdown([{"kind": "step", "step": 1}]) == "_nothing to plot_"
    assert json.loads(json.dumps(metadata["training_data_versions"].value)) == training_data_versions(
        store, config.datasets
    )
    assert metadata["pairs"].value == "curated"
    assert metadata["training_pairs_runs"].value == {"hh_rlhf_harmless": store.run_ids("training_pairs", "hh_rlhf_harmless")}

    row = store.read_partition("rm_checkpoints", key)
    assert len(row) == 1
    path = row["path"][0]
    assert str(tmp_path / "data" / "checkpoints" / key) in path

    # The checkpoint scores text with plain transformers, no rmforge code involved.
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        logits = model(**tokenizer(["Human: hi\n\nAssistant: hello"], return_tensors="pt")).logits
    assert logits.shape == (1, 1)


def test_unknown_dataset_is_a_clear_error(tmp_path, warehouse_with_pairs):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("training_runs", ["bt-x"])
        result = dg.materialize(
            [rm_checkpoints],
            resources={**warehouse_with_pairs, "ray": RayClusterResource(use_ray=False)},
            partition_key="bt-x",
            instance=instance,
            run_config=dg.RunConfig(ops={"rm_checkpoints": TrainingRunConfig(datasets=["nope"])}),
            raise_on_error=False,
        )
    assert not result.success
    failure = result.failure_data_for_node("rm_checkpoints")
    assert "unknown datasets ['nope']" in str(failure.error)
