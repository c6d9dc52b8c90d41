"""grm_checkpoints: export → verl (a stand-in for main_ppo on CPU) under Dagster Pipes → metadata.

The real `verl.trainer.main_ppo` needs GPUs; its config composition is checked in
tests/test_verl_config.py. Here a stand-in trainer writes verl's file-logger lines and checkpoint
tracker, so the whole Pipes path (launch, progress forwarding, final report) runs for real.
"""

from __future__ import annotations

import textwrap

import dagster as dg
import pandas as pd
import pytest

from rm_assets.checkpoints.assets import GRMTrainingConfig, grm_checkpoints
from rm_assets.curation.assets import training_pairs
from rm_assets.data.assets import converted_samples, raw_rows
from rm_resources.datasets import DatasetSourceResource
from rm_resources.verl import VerlTrainerResource
from rm_resources.warehouse import WarehouseResource

# Both tests run a stand-in trainer with the verl venv's python (`make test-fast` leaves them out).
pytestmark = pytest.mark.verl

FAKE_TRAINER = textwrap.dedent(
    """
    import json, os, sys, pathlib
    args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    metrics = pathlib.Path(os.environ["VERL_FILE_LOGGER_PATH"])
    metrics.parent.mkdir(parents=True, exist_ok=True)
    with open(metrics, "w") as out:
        for step in range(1, 4):
            out.write(json.dumps({"step": step, "data": {"critic/score/mean": 0.2 * step, "actor/pg_loss": 1.0 / step}}) + "\\n")
    out_dir = pathlib.Path(args["trainer.default_local_dir"])
    (out_dir / "global_step_3" / "actor").mkdir(parents=True, exist_ok=True)
    (out_dir / "latest_checkpointed_iteration.txt").write_text("3")
    if args.get("trainer.total_epochs") == "99":
        sys.exit(3)
    """
)


@pytest.fixture
def warehouse_with_samples(tmp_path):
    resources = {
        "datasets": DatasetSourceResource(mode="bundled"),
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
    }
    for dataset in ("helpsteer2", "hh_rlhf_helpful"):
        # The generative RM learns from the curated pairs (here: human pairs, no judge) and the grades.
        assert dg.materialize(
            [raw_rows, converted_samples, training_pairs], resources=resources, partition_key=dataset
        ).success
    return resources


def _verl_python() -> str:
    """The Pipes entry runs in verl's venv (dagster-pipes, no Dagster); `make test` creates it."""
    from training.verl_launch import verl_python

    try:
        return str(verl_python())
    except FileNotFoundError as missing:
        pytest.skip(str(missing))


def _run(tmp_path, resources, monkeypatch, config: GRMTrainingConfig):
    monkeypatch.setenv("RMFORGE_DATA_DIR", str(tmp_path / "data"))
    trainer = tmp_path / "fake_main_ppo.py"
    trainer.write_text(FAKE_TRAINER)
    from training.verl_config import grpo_overrides  # the real overrides reach the trainer

    python = _verl_python()

    class StandIn(VerlTrainerResource):
        def train(self, context, grpo):
            command = [python, str(trainer), *grpo_overrides(grpo)]
            return VerlTrainerResource(python=python, trainer_command=command, poll_s=0.1).train(context, grpo)

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("grm_training_runs", ["grm-1"])
        result = dg.materialize(
            [grm_checkpoints], resources={**resources, "verl": StandIn()}, partition_key="grm-1",
            instance=instance, run_config=dg.RunConfig(ops={"grm_checkpoints": config}), raise_on_error=False,
        )
        logs = "\n".join(str(entry.dagster_event or entry.user_message) for entry in instance.all_logs(result.run_id))
    return result, tmp_path / "data" / "grm" / "grm-1", logs


def test_grm_run_exports_data_and_reports_through_pipes(tmp_path, warehouse_with_samples, monkeypatch):
    result, run_dir, logs = _run(tmp_path, warehouse_with_samples, monkeypatch,
                                 GRMTrainingConfig(model_path="/models/x"))
    assert "step 2: " in logs  # progress forwarded while the trainer ran
    assert result.success, result.failure_data_for_node("grm_checkpoints")
    metadata = result.asset_materializations_for_node("grm_checkpoints")[0].metadata
    assert metadata["steps"].value == 3
    assert metadata["final_metrics"].value["critic/score/mean"] == pytest.approx(0.6)
    assert metadata["checkpoint"].value.endswith("global_step_3/actor")
    assert "data:image/png;base64," in metadata["metrics_plot"].value
    rows = metadata["exported_rows"].value
    assert rows["train"]["pairwise"] > 0 and rows["train"]["pointwise"] > 0

    train = pd.read_parquet(run_dir / "data" / "train.parquet")
    assert {"data_source", "prompt", "ability", "reward_model", "extra_info"} <= set(train.columns)
    assert set(train["extra_info"].map(lambda e: e["split"])) == {"train"}


def test_a_failed_trainer_fails_the_asset_with_its_log(tmp_path, warehouse_with_samples, monkeypatch):
    result, _, logs = _run(tmp_path, warehouse_with_samples, monkeypatch,
                           GRMTrainingConfig(model_path="/models/x", total_epochs=99))
    assert not result.success
    assert "DagsterPipesExecutionError" in str(result.failure_data_for_node("grm_checkpoints").error)
    assert "trainer exited with 3" in logs
