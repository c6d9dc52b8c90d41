"""Curation of training pairs: contradictions, refined pairs, rule gates, provenance and counts."""

from __future__ import annotations

import pytest

from rm_rewards.core.schema import ChatMessage, Sample
from rm_rewards.curation.curate import (
    CurationPolicy,
    RefinementRecord,
    RuleGate,
    ScoreRecord,
    TrainingPairRecord,
    curate,
    training_pair_id,
)
from rm_rewards.curation.pairs import fold_pairs
from rm_rewards.datasets.samples import assistant_response, pointwise_sample, swapped_pair_samples
from rm_rewards.judging.judges import POSITION_INCONSISTENT
from training.data import TrainingPair, pairs_from_training_records

PROMPT = [ChatMessage(role="user", content="Write add(a, b) in Python.")]
GOOD, BAD = "def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b"


def labelled_pair(test_fraction: float = 0.0) -> tuple[Sample, Sample]:
    """The pair as a converter emits it: [GOOD, BAD] preferring 0, and the swapped copy."""
    original, copy = swapped_pair_samples(
        "toy",
        "d1",
        "pair",
        PROMPT,
        (assistant_response(GOOD), assistant_response(BAD)),
        0,
        1.0,
        test_fraction,
        raw_row_indices=[4, 7],
    )
    return original, copy


def inputs(*samples: Sample):
    pairs, _ = fold_pairs(samples)
    return pairs, {s.id: s for s in samples}


def judged(sample: Sample, verdict: str, name: str = "principle_pairwise_judge") -> ScoreRecord:
    """An llm_scores row of a pairwise judge (both orders asked) on `sample`.

    verdict: "0" / "1" (that response won in both orders), "tie", "inconsistent" or "error"."""
    consistent = verdict in ("0", "1", "tie")
    meta = {
        "pairs": 1,
        "position_consistent": int(consistent),
        "position_inconsistent": int(verdict == "inconsistent"),
        "failed_pairs": int(verdict == "error"),
        "orders": [],
    }
    scores = {"0": [1.0, 0.0], "1": [0.0, 1.0], "tie": [0.5, 0.5], "inconsistent": [0.5, 0.5]}
    reason = (
        f"vs 1: {POSITION_INCONSISTENT} (counted as a tie): with 0 as A: 0 wins"
        if verdict == "inconsistent"
        else "ok"
    )
    if verdict == "error":
        return ScoreRecord(
            table="llm_scores",
            sample_id=sample.id,
            reward_name=name,
            scores=[None, None],
            reasons=["", ""],
            response_errors=["pair (0,1): timeout"] * 2,
            metadata=meta,
        )
    return ScoreRecord(
        table="llm_scores",
        sample_id=sample.id,
        reward_name=name,
        scores=scores[verdict],
        reasons=[reason, reason],
        response_errors=[None, None],
        metadata=meta,
    )


def rule_row(sample: Sample, reward: str, scores, response_errors=(None, None), error=None) -> ScoreRecord:
    return ScoreRecord(
        table="rule_scores",
        sample_id=sample.id,
        reward_name=reward,
        scores=list(scores),
        reasons=["", ""],
        response_errors=list(response_errors),
        error=error,
    )


# --- human pairs and provenance -----------------------------------------------------------------


def test_a_human_pair_is_kept_once_with_every_sample_and_raw_row_it_came_from():
    original, copy = labelled_pair()
    result = curate(*inputs(original, copy), [], [])
    (record,) = result.pairs
    assert (record.reason, record.decision, record.decision_notes, record.decided_by) == (
        "human",
        "kept",
        [],
        [],
    )
    assert (record.chosen.text, record.rejected.text) == (GOOD, BAD)
    assert record.context == PROMPT and record.split == original.split == "train"
    assert record.sample_ids == [original.id, copy.id]
    assert record.raw_row_indices == [4, 7]
    assert record.pair_id == training_pair_id(PROMPT, GOOD, BAD, "human")
    assert result.counts() == {
        "by_reason": {"human": 1, "refined": 0, "relabelled": 0},
        "by_decision": {"kept": 1, "flagged": 0, "dropped": 0},
    }


# --- contradictions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "reason", "decision", "chosen"),
    [
        ("flag", "human", "flagged", GOOD),
        ("drop", "human", "dropped", GOOD),
        ("keep", "human", "kept", GOOD),
        ("relabel", "relabelled", "kept", BAD),
    ],
)
def test_a_consistent_judge_against_the_label_is_a_contradiction_handled_by_policy(
    policy, reason, decision, chosen
):
    original, copy = labelled_pair()
    # The swapped copy shows [BAD, GOOD]: response 0 winning there is the rejected one.
    rows = [judged(copy, "0")]
    (record,) = curate(*inputs(original, copy), rows, [], CurationPolicy(on_contradiction=policy)).pairs
    assert (record.reason, record.decision, record.chosen.text) == (reason, decision, chosen)
    assert record.rejected.text == (GOOD if chosen == BAD else BAD)
    assert "contradiction: principle_pairwise_judge v1" in record.decision_notes[0]
    assert record.decided_by == [
        {
            "table": "llm_scores",
            "sample_id": copy.id,
            "reward_name": "principle_pairwise_judge",
            "reward_version": "1",
        }
    ]
    assert record.pair_id == training_pair_id(PROMPT, chosen, record.rejected.text, reason)


@pytest.mark.parametrize("verdict", ["tie", "inconsistent", "error"])
def test_ties_position_inconsistent_verdicts_and_errors_are_never_contradictions(verdict):
    original, copy = labelled_pair()
    (record,) = curate(
        *inputs(original, copy), [judged(original, verdict)], [], CurationPolicy(on_contradiction="drop")
    ).pairs
    assert (record.decision, record.decision_notes) == ("kept", [])


def test_position_inconsistency_in_the_metadata_outweighs_decisive_looking_scores():
    original, copy = labelled_pair()
    row = judged(original, "1")
    row = row.model_copy(update={"metadata": {**row.metadata, "position_inconsistent": 1}})
    assert curate(*inputs(original, copy), [row], []).pairs[0].decision == "kept"


@pytest.mark.parametrize("other", ["0", "tie"])
def test_copies_judged_differently_are_not_a_contradiction(other):
    original, copy = labelled_pair()
    rows = [judged(original, "1"), judged(copy, "1" if other == "0" else "tie")]  # on copy, "1" is GOOD
    (record,) = curate(*inputs(original, copy), rows, []).pairs
    assert (record.decision, record.decision_notes) == ("kept", [])


def test_both_copies_against_the_label_contradict_and_both_rows_are_named():
    original, copy = labelled_pair()
    (record,) = curate(*inputs(original, copy), [judged(original, "1"), judged(copy, "0")], []).pairs
    assert record.decision == "flagged"
    assert [ref["sample_id"] for ref in record.decided_by] == [original.id, copy.id]


def test_rows_without_pair_metadata_are_not_pairwise_verdicts():
    original, copy = labelled_pair()
    pointwise_like = judged(original, "1").model_copy(update={"metadata": {}})
    assert curate(*inputs(original, copy), [pointwise_like], []).pairs[0].decision == "kept"


# --- refined pairs --------------------------------------------------------------------------------


def refinement(candidate: str, source: str, round_: int, text: str, score, is_best=False, error=None):
    return RefinementRecord(
        sample_id=candidate,
        source_sample_id=source,
        round=round_,
        response=assistant_response(text).model_dump(mode="json") if text else None,
        score=score,
        error=error,
        is_best=is_best,
        judge="principle_pointwise_judge@1",
    )


def test_a_refined_pair_is_added_above_the_margin_with_the_source_split_and_rows():
    original, copy = labelled_pair(test_fraction=1.0)  # a test prompt: its refined pair stays in test
    candidate = f"{original.id}-rejected"
    rounds = [
        refinement(candidate, original.id, 0, BAD, 0.2),
        refinement(candidate, original.id, 1, GOOD + "  # fixed", 0.8, True),
    ]
    result = curate(*inputs(original, copy), [], rounds)
    human, refined = result.pairs
    assert human.reason == "human"
    assert (refined.reason, refined.decision, refined.split) == ("refined", "kept", "test")
    assert (refined.chosen.text, refined.rejected.text) == (GOOD + "  # fixed", BAD)
    assert (
        refined.context == PROMPT
        and refined.sample_ids == [original.id]
        and refined.raw_row_indices == [4, 7]
    )
    assert [(ref["table"], ref["round"]) for ref in refined.decided_by] == [
        ("refined_samples", 0),
        ("refined_samples", 1),
    ]
    assert result.counts()["by_reason"] == {"human": 1, "refined": 1, "relabelled": 0}


@pytest.mark.parametrize(
    ("best_round", "best_score", "error", "why"),
    [
        (1, 0.6, None, "below the margin"),
        (0, 0.9, None, "original stayed best"),
        (1, 0.9, "rewrite failed", "failed"),
    ],
)
def test_no_refined_pair_below_the_margin_from_the_original_or_from_a_failed_round(
    best_round, best_score, error, why
):
    source = pointwise_sample("toy", "pw", PROMPT, assistant_response(BAD), 0.0, raw_row_indices=[2])
    rounds = [
        refinement(source.id, source.id, 0, BAD, 0.2, is_best=best_round == 0),
        refinement(
            source.id, source.id, 1, GOOD, best_score if error is None else None, best_round == 1, error
        ),
    ]
    result = curate([], {source.id: source}, [], rounds)
    assert result.pairs == []
    assert [s.sample_id for s in result.skipped] == [source.id] and why in result.skipped[0].reason


def test_the_margin_is_inclusive_and_configurable():
    source = pointwise_sample("toy", "pw", PROMPT, assistant_response(BAD), 0.0, raw_row_indices=[2])
    rounds = [
        refinement(source.id, source.id, 0, BAD, 0.2),
        refinement(source.id, source.id, 1, GOOD, 0.7, True),  # 0.7 - 0.2 is 0.4999… in floats
    ]
    assert len(curate([], {source.id: source}, [], rounds).pairs) == 1
    assert curate([], {source.id: source}, [], rounds, CurationPolicy(refined_margin=0.6)).pairs == []


# --- rule gates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "decision", "note"),
    [
        (
            lambda s: rule_row(s, "code_execution", [0.5, 0.0]),
            "dropped",
            "code_execution: chosen response scored 0.5 < 1",
        ),
        (lambda s: rule_row(s, "code_execution", [1.0, 0.0]), "kept", None),
        (
            lambda s: rule_row(s, "math_verify", [0.0, 1.0]),
            "flagged",
            "math_verify: chosen response scored 0 < 1",
        ),
        (
            lambda s: rule_row(s, "code_execution", [None, 0.0], ["sandbox: timeout", None]),
            "flagged",
            "code_execution: scoring the chosen response failed: sandbox: timeout",
        ),
        (
            lambda s: rule_row(s, "code_execution", [], (), "no tests"),
            "flagged",
            "code_execution: scoring failed: no tests",
        ),
        (lambda s: rule_row(s, "code_style", [0.0, 0.0]), "kept", None),  # no gate for this reward
    ],
)
def test_rule_gates_on_the_chosen_response(row, decision, note):
    original, copy = labelled_pair()
    (record,) = curate(*inputs(original, copy), [row(original)], []).pairs
    assert record.decision == decision
    assert record.decision_notes == ([note] if note else [])
    assert len(record.decided_by) == (1 if note else 0)


def test_a_gate_reads_the_chosen_response_in_the_order_of_the_copy_that_was_scored():
    original, copy = labelled_pair()  # copy is [BAD, GOOD]: GOOD, the chosen one, is response 1 there
    (record,) = curate(*inputs(original, copy), [rule_row(copy, "code_execution", [0.0, 1.0])], []).pairs
    assert record.decision == "kept"
    (record,) = curate(*inputs(original, copy), [rule_row(copy, "code_execution", [1.0, 0.0])], []).pairs
    assert record.decision == "dropped" and record.decided_by[0]["sample_id"] == copy.id


def test_a_relabelled_pair_is_gated_on_its_new_chosen_response_and_the_strictest_action_wins():
    original, copy = labelled_pair()
    rows = [judged(original, "1"), rule_row(original, "code_execution", [1.0, 0.0])]
    (record,) = curate(*inputs(original, copy), rows, [], CurationPolicy(on_contradiction="relabel")).pairs
    assert (record.reason, record.chosen.text, record.decision) == ("relabelled", BAD, "dropped")
    policy = CurationPolicy(
        on_contradiction="flag", rule_gates=[RuleGate(reward="code_execution", below=1.0, action="drop")]
    )
    rows = [judged(original, "1"), rule_row(original, "code_execution", [0.0, 1.0])]
    (record,) = curate(*inputs(original, copy), rows, [], policy).pairs
    assert record.decision == "dropped" and len(record.decision_notes) == 2


def test_a_refined_response_the_gate_never_scored_is_flagged_not_passed():
    original, copy = labelled_pair()
    candidate = f"{original.id}-rejected"
    rounds = [
        refinement(candidate, original.id, 0, BAD, 0.0),
        refinement(candidate, original.id, 1, "new code", 1.0, True),
    ]
    rows = [rule_row(original, "code_execution", [1.0, 0.0])]
    human, refined = curate(*inputs(original, copy), rows, rounds).pairs
    assert human.decision == "kept"
    assert refined.decision == "flagged" and "was not scored" in refined.decision_notes[-1]


# --- outputs --------------------------------------------------------------------------------------


def test_counts_examples_and_the_trainer_reads_kept_and_flagged_pairs_only():
    pairs, samples = [], {}
    for k, verdict in enumerate(["none", "1", "drop"]):
        original, copy = swapped_pair_samples(
            "toy",
            f"d{k}",
            "pair",
            [ChatMessage(role="user", content=f"q{k}")],
            (assistant_response("good " + "x" * 200), assistant_response(f"bad | {k}")),
            0,
            None,
            0.0,
            raw_row_indices=[k],
        )
        samples.update({original.id: original, copy.id: copy})
    pairs, _ = fold_pairs(samples.values())
    ids = [p.pair_id for p in pairs]
    rows = [judged(samples[ids[1]], "1"), rule_row(samples[ids[2]], "code_execution", [0.0, 1.0])]
    result = curate(pairs, samples, rows, [])
    assert [r.decision for r in result.pairs] == ["kept", "flagged", "dropped"]
    assert result.counts()["by_decision"] == {"kept": 1, "flagged": 1, "dropped": 1}

    table = result.examples_markdown(limit=2).splitlines()
    assert table[0] == "| reason | decision | notes | chosen | rejected |" and len(table) == 4
    assert table[2] == f"| human | kept |  | good {'x' * 74}… | bad \\| 0 |"  # cut to 80 characters
    assert table[3].startswith("| human | flagged | contradiction: principle_pairwise_judge v1 preferred")

    trained = pairs_from_training_records(result.pairs)
    assert [p.sample_id for p in trained] == [r.pair_id for r in result.pairs[:2]]
    assert trained[0] == TrainingPair(
        sample_id=result.pairs[0].pair_id,
        split="train",
        context=result.pairs[0].context,
        chosen=result.pairs[0].chosen.text,
        rejected=result.pairs[0].rejected.text,
    )


def test_records_round_trip_and_the_policy_hash_follows_the_policy():
    original, copy = labelled_pair()
    (record,) = curate(*inputs(original, copy), [], []).pairs
    assert TrainingPairRecord.model_validate_json(record.model_dump_json()) == record
    assert CurationPolicy().policy_hash() == CurationPolicy().policy_hash()
    assert CurationPolicy(refined_margin=0.2).policy_hash() != CurationPolicy().policy_hash()
    # refined_samples rows that stored the bare rewrite text read as an assistant reply
    bare = RefinementRecord(sample_id="s", source_sample_id="s", round=1, response="text", score=None)
    assert bare.as_response().text == "text"


def test_the_trainer_accepts_curated_pairs_and_their_dicts_beside_samples():
    from training.bt_trainer import resolve_pairs
    from training.config import BTTrainConfig
    from training.ray_launch import _serialisable_data

    original, copy = labelled_pair()
    pair = TrainingPair(sample_id="tp-1", split="test", context=PROMPT, chosen="yes", rejected="no")
    data = _serialisable_data([original, copy, pair])
    assert data[2] == pair.model_dump(mode="json")
    train, held_out = resolve_pairs(BTTrainConfig(holdout_fraction=0.0), data)
    assert [p.sample_id for p in train] == [original.id] and held_out == [pair]
