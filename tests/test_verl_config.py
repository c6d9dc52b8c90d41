"""verl 0.9.1 wiring, checked against the real verl in .venvs/verl (on CPU, no GPU needed).

`python -m verl.trainer.main_ppo --cfg job --resolve <our overrides>` makes Hydra compose verl's
whole config: an unknown key or a bad value fails there, and our values must come out where
verl reads them. The verl venv is built by `bash training/setup_verl_venv.sh` (the Makefile
runs it before the tests); without it these tests skip and say so.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from rm_rewards.core.schema import ChatMessage, Response, Sample
from training.verl_config import REWARD_FUNCTION_FILE, VerlGRPOConfig, grpo_overrides, hydra_value
from training.verl_export import export_verl_dataset
from training.verl_launch import (
    compose_verl_config,
    latest_actor_checkpoint,
    merge_command,
    read_verl_metrics,
    verl_command,
    verl_env,
    verl_python,
)

pytestmark = pytest.mark.timeout(180)


def _verl_python_or_skip():
    try:
        return verl_python()
    except FileNotFoundError as missing:
        pytest.skip(f"verl venv missing: {missing}")


def _config(tmp_path, **overrides) -> VerlGRPOConfig:
    settings = {
        "model_path": "/models/Qwen2.5-0.5B-Instruct",
        "train_files": [str(tmp_path / "train.parquet")],
        "val_files": [str(tmp_path / "test.parquet")],
        "output_dir": str(tmp_path / "verl ckpt"),
        "rollout_name": "sglang",
        "rollout_n": 5,
        "n_gpus_per_node": 2,
        "nnodes": 1,
        "total_epochs": 3,
    }
    return VerlGRPOConfig(**{**settings, **overrides})


def _at(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def test_hydra_values_follow_the_override_grammar():
    assert hydra_value(True) == "true" and hydra_value(None) == "null" and hydra_value(5) == "5"
    assert hydra_value(["console", "file"]) == "[console,file]"
    assert hydra_value("/a b/it's.parquet") == "'/a b/it\\'s.parquet'"
    overrides = grpo_overrides(_config_for_unit())
    assert "algorithm.adv_estimator=grpo" in overrides and "trainer.logger=[console,file]" in overrides
    assert overrides[-1] == "trainer.val_before_train=true"  # extra overrides come last and win


def _config_for_unit() -> VerlGRPOConfig:
    return VerlGRPOConfig(
        model_path="m",
        train_files=["t.parquet"],
        val_files=["v.parquet"],
        output_dir="o",
        extra_overrides=["trainer.val_before_train=true"],
    )


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    """(config, exported parquet paths, verl's composed YAML text): composed once, ~7 s."""
    python = _verl_python_or_skip()
    tmp_path = tmp_path_factory.mktemp("verl")
    sample = Sample(
        id="p1",
        source="hh_rlhf",
        task="pairwise",
        input=[ChatMessage(role="user", content="hi")],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in ("hello", "go")],
        preference=0,
    )
    paths = export_verl_dataset([sample], tmp_path)["paths"]
    config = _config(tmp_path, val_files=[paths["train"]])
    return config, paths, compose_verl_config(config, python)


@pytest.mark.verl
def test_verl_composes_our_overrides_and_our_values_land_where_verl_reads_them(composed):
    config, paths, text = composed
    tmp_path = Path(config.output_dir).parent
    composed_tree = yaml.safe_load(text)
    expected = {
        "algorithm.adv_estimator": "grpo",
        "data.train_files": [str(tmp_path / "train.parquet")],
        "data.val_files": [paths["train"]],
        "actor_rollout_ref.model.path": "/models/Qwen2.5-0.5B-Instruct",
        "actor_rollout_ref.rollout.name": "sglang",
        "actor_rollout_ref.rollout.n": 5,
        "actor_rollout_ref.actor.use_kl_loss": True,
        "trainer.n_gpus_per_node": 2,
        "trainer.nnodes": 1,
        "trainer.total_epochs": 3,
        "trainer.default_local_dir": str(tmp_path / "verl ckpt"),
        "trainer.logger": ["console", "file"],
        "reward.custom_reward_function.path": str(REWARD_FUNCTION_FILE),
        "reward.custom_reward_function.name": "compute_score",
        # interpolations resolved by verl itself: the rollout inherits the GPU count
        "actor_rollout_ref.rollout.n_gpus_per_node": 2,
    }
    for key, value in expected.items():
        assert _at(composed_tree, key) == value, key


@pytest.mark.verl
def test_verl_loads_our_reward_function_and_reads_our_parquet(composed, tmp_path):
    config, _, text = composed
    python = verl_python()
    composed_path = tmp_path / "composed.yaml"
    composed_path.write_text(text)
    script = textwrap.dedent(f"""
        import json, datasets
        from omegaconf import OmegaConf
        from verl.trainer.ppo.reward import get_custom_reward_fn
        config = OmegaConf.load({str(composed_path)!r})
        reward = get_custom_reward_fn(config)
        rows = datasets.load_dataset("parquet", data_files=list(config.data.val_files))["train"]
        out = [reward(data_source=r["data_source"], solution_str="<verdict>A</verdict>",
                      ground_truth=r["reward_model"]["ground_truth"], extra_info=r["extra_info"]) for r in rows]
        print(json.dumps(out))
    """)
    done = subprocess.run(
        [str(python), "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=verl_env(config),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    assert [s["score"] for s in scores] == [1.0, 0.0]  # as given (label A), then swapped (label B)


def test_launch_command_and_environment(tmp_path):
    config = _config(tmp_path)
    command = verl_command(config, "/venv/bin/python")
    assert command[:3] == ["/venv/bin/python", "-m", "verl.trainer.main_ppo"]
    assert command[3:] == grpo_overrides(config)
    assert verl_env(config, base={})["VERL_FILE_LOGGER_PATH"].endswith("verl ckpt/verl_metrics.jsonl")
    assert merge_command("/c/global_step_5/actor", "/hf", "/venv/bin/python")[3:] == [
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        "/c/global_step_5/actor",
        "--target_dir",
        "/hf",
    ]


def test_read_verl_metrics_flattens_steps_and_tolerates_a_torn_last_line(tmp_path):
    path = tmp_path / "verl_metrics.jsonl"
    path.write_text(
        '{"step": 1, "data": {"critic/score/mean": 0.25, "actor/entropy": 1.5}}\n'
        '{"step": 2, "data": {"critic/score/mean": 0.5}}\n{"step": 3, "da'
    )
    assert read_verl_metrics(path) == [
        {"step": 1, "critic/score/mean": 0.25, "actor/entropy": 1.5},
        {"step": 2, "critic/score/mean": 0.5},
    ]
    path.write_text('{"step": 1}\n{"step": 2, "data": {}}\n')
    with pytest.raises(ValueError, match="line 1"):
        read_verl_metrics(path)
    assert read_verl_metrics(tmp_path / "absent.jsonl") == []


def test_latest_actor_checkpoint_follows_verls_tracker_file(tmp_path):
    assert latest_actor_checkpoint(tmp_path) is None
    (tmp_path / "global_step_4" / "actor").mkdir(parents=True)
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("4")
    assert latest_actor_checkpoint(tmp_path) == tmp_path / "global_step_4" / "actor"
