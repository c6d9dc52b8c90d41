"""Ray Train path: the same training function in a TorchTrainer worker, killed once and resumed.

One local Ray (2 CPUs, no dashboard), one worker, a tiny backbone; ~25 s on 2 cores, most of it
Ray starting up. The drill kills the worker process right after its step-2 checkpoint; the
restarted worker must continue from that checkpoint (not from scratch) and end with the same
weights as an uninterrupted in-process run. The same run checks the console: the driver's
progress lines and nothing of Ray's or transformers' own output (one Ray start serves both).
"""

from __future__ import annotations

import pytest
import torch

from tests import test_bt_trainer
from tests.support.tiny import make_tiny_backbone, toy_preference_samples
from training.bt_scoring import score_texts
from training.bt_trainer import read_metrics, train
from training.config import BTTrainConfig
from training.ray_launch import FAULT_MARKER, train_with_ray

console = test_bt_trainer.console  # the fixture: what the terminal shows

# ~70 s on 2 free cores; Ray start-up slows a lot under load.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


@pytest.fixture
def backbone(tmp_path):
    return make_tiny_backbone(tmp_path / "tiny-bert")


def test_ray_training_survives_a_killed_worker_and_matches_the_plain_path(
    tmp_path, monkeypatch, backbone, console
):
    # The Ray Train controller collects reports on its health-check poll (2 s by default).
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    config = BTTrainConfig(
        model_path=str(backbone),
        max_length=32,
        batch_size=4,
        learning_rate=5e-3,
        epochs=2,
        log_every_steps=1,
        num_threads=1,
        eval_before_training=False,
        output_dir=str(tmp_path / "ray"),
    )
    result = train_with_ray(
        config, toy_preference_samples(), num_workers=1, max_failures=1, fail_once_after_step=2
    )

    assert (tmp_path / "ray" / FAULT_MARKER).exists(), "the drill did not kill the worker"
    steps = [row["step"] for row in read_metrics(tmp_path / "ray") if row["kind"] == "step"]
    assert steps == [1, 2, 3, 4], "a restarted worker must resume after step 2, not start over"
    assert result.steps == 4 and result.train_pairs == 7 and result.eval_pairs == 3
    assert result.history[-1]["kind"] == "eval" and result.final_eval_accuracy == 1.0
    assert [row for row in result.history if row["kind"] == "resume"] == [{"kind": "resume", "step": 2}]

    text = console()
    test_bt_trainer.assert_quiet(text)
    ours = [line.split(": ", 1)[1] for line in text.splitlines() if " training.bt_trainer: " in line]
    assert ours[0].startswith("BT training under Ray (CPU, local Ray): 7 train / 3 held-out pairs, 4 steps")
    assert [line.split()[1] for line in ours if line.startswith("step ")] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(" loss 0." in line and " ETA " in line for line in ours if line.startswith("step "))
    assert ours.count("resuming from the checkpoint at step 2 (Ray restarted the workers)") == 1
    assert sum(line.startswith("eval at step ") for line in ours) == 2  # each epoch end
    assert ours[-1].startswith("BT training finished: 4 steps in ") and "held-out accuracy 1.000" in ours[-1]

    from transformers import AutoModelForSequenceClassification

    plain = train(config.model_copy(update={"output_dir": str(tmp_path / "plain")}), toy_preference_samples())
    ray_weights = AutoModelForSequenceClassification.from_pretrained(result.final_checkpoint).state_dict()
    plain_weights = AutoModelForSequenceClassification.from_pretrained(plain.final_checkpoint).state_dict()
    for name, value in plain_weights.items():
        torch.testing.assert_close(ray_weights[name], value, rtol=0, atol=1e-6, msg=name)
    polite, rude = score_texts(
        result.final_checkpoint,
        [
            "User: hi\nAssistant: glad to help, here are the steps",
            "User: hi\nAssistant: figure it out yourself",
        ],
    )
    assert polite > rude
