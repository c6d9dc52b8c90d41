"""Bradley-Terry trainer: pairs from Samples, the loss, training, checkpoints, resuming, scoring.

Training runs use tiny random backbones (tests.support.tiny) so each takes a second or two; one test
runs the real default backbone (all-MiniLM-L6-v2) for a single step.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator

import pytest
import torch

from rm_rewards.core.schema import ChatMessage, Response, Sample
from tests.support.tiny import make_tiny_backbone, toy_preference_samples
from training.bt_scoring import score_texts, score_with_checkpoint
from training.bt_trainer import (
    RUN_INFO_FILE,
    TRAINER_STATE_FILE,
    TrainingProgress,
    bt_loss,
    latest_checkpoint,
    read_metrics,
    resolve_pairs,
    train,
)
from training.config import BTTrainConfig
from training.data import load_samples, pairs_from_samples, render_text, write_samples_jsonl

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"), "bert")


# What libraries print on their own: transformers' load report and progress bars, Ray's worker
# and controller echo, state-API retries, tips, notices and deprecations.
LIBRARY_NOISE = (
    "Some weights of",
    "LOAD REPORT",
    "Loading weights",
    "Writing model shards",
    "Tip:",
    "RayTrainWorker",
    "TrainController",
    "PlacementGroupCleaner",
    "State API",
    "Token authentication",
    "Started a local Ray instance",
    "Checkpoint successfully created",
    "Reporting training result",
    "Warning",
)


@pytest.fixture
def console(capfd) -> Iterator[Callable[[], str]]:
    """What a user's terminal shows: everything any process writes to file descriptors 1 and 2,
    with the `training` loggers at INFO on stderr (as the rmforge CLI sets them up). Call it to read."""
    stderr = open(2, "w", closefd=False)  # fd 2 itself: pytest swaps sys.stderr between test phases
    logger, handler = logging.getLogger("training"), logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    capfd.readouterr()  # output of the fixtures before (e.g. saving a tiny backbone)
    try:
        yield lambda: "".join(capfd.readouterr())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        stderr.close()


def assert_quiet(text: str) -> None:
    noise = [line for line in text.splitlines() if any(marker in line for marker in LIBRARY_NOISE)]
    assert not noise, "library noise on the console:\n" + "\n".join(noise[:10])


def _config(model_path, output_dir, **overrides) -> BTTrainConfig:
    settings = {
        "model_path": str(model_path),
        "max_length": 32,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "epochs": 5,
        "log_every_steps": 1,
        "output_dir": str(output_dir),
        "num_threads": 1,
    }
    return BTTrainConfig(**{**settings, **overrides})


def _pair(sample_id, chosen, rejected, preference=0, split="train", context="hi"):
    responses = [chosen, rejected] if preference == 0 else [rejected, chosen]
    return Sample(
        id=sample_id,
        source="t",
        task="pairwise",
        split=split,
        input=[ChatMessage(role="user", content=context)],
        responses=[Response(message=ChatMessage(role="assistant", content=r)) for r in responses],
        preference=preference,
    )


# --- pairs -------------------------------------------------------------------------------------


def test_pairs_from_samples_folds_swapped_copies_and_skips_ties():
    tie = _pair("tie", "x", "y").model_copy(update={"preference": None})
    pointwise = _pair("pw", "x", "y").model_copy(update={"task": "pointwise"})
    samples = [
        _pair("a", "good", "bad"),
        _pair("a-swap", "good", "bad", preference=1),
        _pair("b", "fine", "poor", split="test"),
        tie,
        pointwise,
        _pair("same", "z", "z"),
    ]
    pairs = pairs_from_samples(samples)
    assert [(p.sample_id, p.chosen, p.rejected, p.split) for p in pairs] == [
        ("a", "good", "bad", "train"),
        ("b", "fine", "poor", "test"),
    ]


def test_pairs_from_samples_names_the_bad_row_and_field():
    three = _pair("three", "a", "b")
    three = three.model_copy(update={"responses": three.responses + three.responses[:1]})
    with pytest.raises(ValueError, match=r"'three'.*'responses'.*got 3"):
        pairs_from_samples([three])
    with pytest.raises(ValueError, match=r"'pref2'.*'preference'"):
        pairs_from_samples([_pair("pref2", "a", "b").model_copy(update={"preference": 2})])


def test_render_text_puts_every_turn_then_the_response_last():
    context = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="Hello"),
        ChatMessage(role="user", content="Joke?"),
    ]
    assert (
        render_text(context, "No.")
        == "System: Be brief.\nUser: Hi\nAssistant: Hello\nUser: Joke?\nAssistant: No."
    )


def test_resolve_pairs_reads_files_and_holds_out_when_there_is_no_test_split(tmp_path):
    samples = [s.model_copy(update={"split": "train"}) for s in toy_preference_samples(10, 0)]
    path = write_samples_jsonl(samples, tmp_path / "pairs.jsonl")
    assert load_samples(path) == samples
    train_pairs, eval_pairs = resolve_pairs(BTTrainConfig(holdout_fraction=0.2, max_train_pairs=5), [path])
    assert len(eval_pairs) == 2 and len(train_pairs) == 5
    assert not {p.sample_id for p in eval_pairs} & {p.sample_id for p in train_pairs}


def test_load_samples_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(_pair("ok", "a", "b").model_dump_json() + "\n" + '{"id": "x"}\n')
    with pytest.raises(ValueError, match="line 2"):
        load_samples(path)


# --- loss --------------------------------------------------------------------------------------


def test_bt_loss_matches_the_formula_with_margin_and_centering():
    r_c, r_r = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 1.5])
    expected = (
        -(math.log(1 / (1 + math.exp(-(1.0 - 0.25)))) + math.log(1 / (1 + math.exp(-(-1.0 - 0.25))))) / 2
    )
    assert bt_loss(r_c, r_r, margin=0.25).item() == pytest.approx(expected, rel=1e-6)
    centering = 0.01 * ((3.0**2 + 2.0**2) / 2)
    assert bt_loss(r_c, r_r, 0.25, 0.01).item() == pytest.approx(expected + centering, rel=1e-6)
    assert bt_loss(r_c + 1, r_r).item() < bt_loss(r_c, r_r).item()  # a wider margin costs less


# --- training ----------------------------------------------------------------------------------


def test_training_learns_the_toy_preference_and_saves_a_plain_transformers_checkpoint(tiny_bert, tmp_path):
    result = train(_config(tiny_bert, tmp_path), toy_preference_samples())
    assert (result.train_pairs, result.eval_pairs, result.steps) == (7, 3, 10)
    evals = [row for row in result.history if row["kind"] == "eval"]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 10
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 0.3
    assert result.final_eval_accuracy == 1.0
    step_row = next(row for row in result.history if row["kind"] == "step")
    for key in (
        "train_loss",
        "train_accuracy",
        "train_margin",
        "train_reward_min",
        "train_reward_mean",
        "train_reward_max",
        "train_tokens_per_s",
        "lr",
    ):
        assert math.isfinite(step_row[key]), key
    assert read_metrics(tmp_path) == json.loads(json.dumps(result.history))
    assert len([p for p in tmp_path.glob("checkpoint-*")]) == 2  # save_total_limit

    # The final checkpoint is a plain transformers folder: no rmforge code needed to score with it.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    final = result.final_checkpoint
    model = AutoModelForSequenceClassification.from_pretrained(final).eval()
    tokenizer = AutoTokenizer.from_pretrained(final)
    texts = [
        "User: how do I sail?\nAssistant: glad to help, here are the steps",
        "User: how do I sail?\nAssistant: figure it out yourself",
    ]
    with torch.no_grad():
        logits = model(**tokenizer(texts, truncation=True, padding=True, return_tensors="pt")).logits[:, 0]
    assert logits[0] > logits[1]
    assert score_texts(final, texts) == pytest.approx(logits.tolist(), abs=1e-5)
    assert tokenizer.truncation_side == "left" and tokenizer.model_max_length == 32
    record = json.loads((tmp_path / "final" / RUN_INFO_FILE).read_text())
    assert record["config"]["learning_rate"] == 5e-3 and record["metrics"]["eval_accuracy"] == 1.0


def test_resume_from_a_mid_epoch_checkpoint_matches_an_uninterrupted_run(tiny_bert, tmp_path):
    straight = train(
        _config(tiny_bert, tmp_path / "straight", max_steps=4, eval_before_training=False),
        toy_preference_samples(),
    )
    interrupted = _config(tiny_bert, tmp_path / "resumed", max_steps=3, eval_before_training=False)
    train(interrupted, toy_preference_samples())  # stops mid-epoch 2 (2 steps per epoch)
    checkpoint = latest_checkpoint(tmp_path / "resumed")
    assert checkpoint.name == "checkpoint-000003" and (checkpoint / TRAINER_STATE_FILE).exists()
    resumed = train(
        interrupted.model_copy(update={"max_steps": 4, "resume_from_checkpoint": "latest"}),
        toy_preference_samples(),
    )
    assert resumed.steps == 4
    assert [row["step"] for row in read_metrics(tmp_path / "resumed") if row["kind"] == "step"] == [
        1,
        2,
        3,
        4,
    ]

    from transformers import AutoModelForSequenceClassification

    a = AutoModelForSequenceClassification.from_pretrained(straight.final_checkpoint).state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(resumed.final_checkpoint).state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_a_decoder_backbone_trains_and_scores(tmp_path):
    backbone = make_tiny_backbone(tmp_path / "tiny-llama", "llama")
    result = train(
        _config(backbone, tmp_path / "out", max_steps=2, eval_before_training=False), toy_preference_samples()
    )
    scores = score_with_checkpoint(result.final_checkpoint, toy_preference_samples()[:2])
    assert len(scores) == 2 and all(len(s) == 2 and all(math.isfinite(x) for x in s) for s in scores)
    assert scores[0] == pytest.approx(scores[1][::-1], abs=1e-5)  # the swapped copy scores the same texts


def test_default_backbone_is_minilm_and_trains_one_step(tmp_path, console):
    config = BTTrainConfig(
        max_length=32,
        batch_size=2,
        max_steps=1,
        max_train_pairs=2,
        max_eval_pairs=2,
        output_dir=str(tmp_path),
        eval_before_training=False,
    )
    assert config.model_path is None and "minilm" in config.resolved_model_path().lower()
    result = train(config, toy_preference_samples())

    # MiniLM ships without a score head: transformers' load report about it stays off the console.
    text = console()
    prefix = "INFO training.bt_trainer: "
    lines = [line.removeprefix(prefix) for line in text.splitlines() if "bt_trainer" in line]
    assert lines[0].startswith("BT training in process on cpu: 2 train / 2 held-out pairs, 1 steps")
    assert lines[1].startswith("step 1/1 (100%)  loss ") and " ETA " in lines[1]
    assert lines[2].startswith("eval at step 1/1: loss ")
    assert lines[3].startswith("BT training finished: 1 steps in") and len(lines) == 4
    assert_quiet(text)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(result.final_checkpoint)
    assert model.config.num_labels == 1 and model.config.model_type == "bert"
    assert result.steps == 1 and result.final_eval_accuracy is not None


def test_training_without_train_pairs_is_a_clear_error(tiny_bert, tmp_path):
    only_test = [s.model_copy(update={"split": "test"}) for s in toy_preference_samples()]
    with pytest.raises(ValueError, match="no training pairs"):
        train(_config(tiny_bert, tmp_path), only_test)


def test_config_rejects_unknown_knobs():
    with pytest.raises(ValueError, match="extra"):
        BTTrainConfig(learning_rat=1e-3)


def test_progress_lines_say_where_the_run_is_and_when_it_ends(tiny_bert, tmp_path, caplog):
    config = _config(tiny_bert, tmp_path, epochs=2, batch_size=4)  # 7 pairs: 2 steps an epoch
    progress = TrainingProgress(config, n_train=7, n_eval=3)
    with caplog.at_level(logging.DEBUG, logger="training"):
        progress.row({"kind": "eval", "step": 0, "eval_pairs": 3, "eval_loss": 0.69, "eval_accuracy": 0.0})
        row = {"kind": "step", "step": 1, "train_loss": 0.6931, "train_accuracy": 0.5, "lr": 5e-3}
        progress.row({**row, "train_tokens_per_s": 1234.5, "steps_per_s": 0.01})  # 3 steps left: 300 s
        progress.row({**row, "step": 2})  # no rate yet: no guess
        progress.row({"kind": "epoch", "step": 2, "train_loss": 0.69})
        progress.row({"kind": "resume", "step": 2})
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "eval before training: loss 0.6900  acc 0.000  margin n/a  (3 held-out pairs)"),
        ("INFO", "step 1/4 (25%)  loss 0.6931  acc 0.500  lr 5.0e-03  1,234 tok/s  ETA 5m00s"),
        ("INFO", "step 2/4 (50%)  loss 0.6931  acc 0.500  lr 5.0e-03  ETA ?"),
        ("DEBUG", "bt {'kind': 'epoch', 'step': 2, 'train_loss': 0.69}"),
        ("WARNING", "resuming from the checkpoint at step 2 (Ray restarted the workers)"),
    ]
