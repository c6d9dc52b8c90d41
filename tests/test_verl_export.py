"""Export of pairwise and pointwise Samples to verl's RL parquet rows."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from rm_rewards.core.schema import ChatMessage, Response, Sample
from training.verl_export import (
    ABILITY,
    PAIRWISE_SYSTEM,
    POINTWISE_SYSTEM,
    export_verl_dataset,
    pairwise_rows,
    pointwise_rows,
)
from training.verl_reward import compute_score

CONTEXT = [ChatMessage(role="user", content="Is it safe to eat raw cookie dough?")]


def _response(text, **label):
    return Response(message=ChatMessage(role="assistant", content=text), label=label)


def _pairwise(sample_id, first, second, preference, split="train"):
    return Sample(
        id=sample_id,
        source="hh_rlhf",
        task="pairwise",
        split=split,
        input=CONTEXT,
        responses=[_response(first), _response(second)],
        preference=preference,
    )


def _pointwise(sample_id, text, helpfulness, split="train"):
    return Sample(
        id=sample_id,
        source="helpsteer2",
        task="pointwise",
        split=split,
        input=CONTEXT,
        responses=[_response(text, helpfulness=helpfulness, verbosity=1.0)],
    )


def test_each_pair_is_exported_in_both_orders_with_the_label_following_the_good_answer():
    rows = pairwise_rows([_pairwise("p1", "Raw flour can carry E. coli.", "Sure, eat it.", 0)])
    assert [row["reward_model"] for row in rows] == [
        {"style": "rule", "ground_truth": "A"},
        {"style": "rule", "ground_truth": "B"},
    ]
    for row in rows:
        good_label = row["reward_model"]["ground_truth"]
        user = row["prompt"][1]["content"]
        good_block = user.split(f"[Response {good_label}]\n")[1]
        assert good_block.startswith("Raw flour can carry E. coli.")
        assert row["prompt"][0] == {"role": "system", "content": PAIRWISE_SYSTEM}
        assert user.startswith("[Conversation]\nUser: Is it safe to eat raw cookie dough?")
        assert row["data_source"] == "rmforge/pairwise/hh_rlhf" and row["ability"] == ABILITY
    assert [row["extra_info"]["swapped"] for row in rows] == [False, True]


def test_a_converters_swapped_copy_is_not_exported_twice_and_ties_stay():
    samples = [
        _pairwise("p1", "good", "bad", 0),
        _pairwise("p1-swap", "bad", "good", 1),
        _pairwise("t1", "same-ish", "also fine", None),
    ]
    rows = pairwise_rows(samples)
    assert [(r["extra_info"]["sample_id"], r["reward_model"]["ground_truth"]) for r in rows] == [
        ("p1", "A"),
        ("p1", "B"),
        ("t1", "tie"),
        ("t1", "tie"),
    ]


def test_exported_rows_score_one_when_a_judge_names_the_labelled_answer():
    for row in pairwise_rows([_pairwise("p1", "good", "bad", 1)]):
        verdict = row["reward_model"]["ground_truth"]
        result = compute_score(
            row["data_source"], f"<verdict>{verdict}</verdict>", verdict, row["extra_info"]
        )
        assert result["score"] == 1.0
    (row,) = pointwise_rows([_pointwise("s1", "Yes, bake it first.", 3.0)])
    assert (
        compute_score(row["data_source"], "<score>3</score>", row["reward_model"]["ground_truth"])["score"]
        == 1.0
    )


def test_pointwise_rows_use_the_label_and_skip_unlabelled_responses():
    unlabelled = _pointwise("s2", "text", 1.0).model_copy(update={"responses": [_response("no labels")]})
    rows = pointwise_rows([_pointwise("s1", "Bake it first.", 3.0), unlabelled])
    assert len(rows) == 1
    assert rows[0]["reward_model"] == {"style": "rule", "ground_truth": "3"}
    assert rows[0]["prompt"][0]["content"] == POINTWISE_SYSTEM
    assert rows[0]["prompt"][1]["content"].endswith("[Response]\nBake it first.")
    assert rows[0]["extra_info"]["response_index"] == 0


def test_bad_rows_are_errors_naming_the_sample_and_field():
    with pytest.raises(ValueError, match=r"'s9', response 0: field 'label.helpfulness' = 7"):
        pointwise_rows([_pointwise("s9", "text", 7.0)])
    three = _pairwise("p9", "a", "b", 0)
    three = three.model_copy(update={"responses": three.responses * 2})
    with pytest.raises(ValueError, match=r"'p9': field 'responses'"):
        pairwise_rows([three])


def test_export_writes_train_and_test_parquet_files_verl_can_read(tmp_path):
    samples = [
        _pairwise("p1", "good", "bad", 0),
        _pairwise("p2", "fine", "rude", 1, split="test"),
        _pointwise("s1", "answer", 2.0),
        _pointwise("s2", "answer two", 4.0, split="test"),
    ]
    summary = export_verl_dataset(samples, tmp_path)
    assert summary["rows"] == {
        "train": {"pairwise": 2, "pointwise": 1},
        "test": {"pairwise": 2, "pointwise": 1},
    }
    table = pq.read_table(summary["paths"]["train"]).to_pylist()
    assert set(table[0]) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert [row["extra_info"]["index"] for row in table] == [0, 1, 2]
    assert table[2]["extra_info"]["task"] == "pointwise" and table[2]["reward_model"]["ground_truth"] == "2"
    assert [m["role"] for m in table[0]["prompt"]] == ["system", "user"]
