"""TRL, HelpSteer3 and RM-Gallery DataSample rows → samples, and their bad rows → quarantine.

Rows are hand-written in each source's own schema (TRL's "Dataset formats and types" examples,
the HelpSteer3 preference card, RM-Gallery's `DataSample` as its loaders fill it).
"""

from __future__ import annotations

import json

import pytest

from rm_rewards.core.schema import ChatMessage, Sample
from rm_rewards.datasets.catalog import FORMATS
from rm_rewards.datasets.convert import convert_rows
from rm_rewards.datasets.helpsteer2 import convert_helpsteer2
from rm_rewards.datasets.helpsteer3 import convert_helpsteer3
from rm_rewards.datasets.quarantine import ConversionResult
from rm_rewards.datasets.rm_gallery import convert_rm_gallery
from rm_rewards.datasets.trl import convert_trl, split_common_prefix
from tests.test_converters import assert_swapped_pairs, check_quarantine, pairs_by_id


def user(content: str) -> dict:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict:
    return {"role": "assistant", "content": content}


def turns(samples: list[Sample]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in samples[0].input]


def texts(sample: Sample) -> list[str]:
    return [response.text for response in sample.responses]


def by_row(result: ConversionResult) -> dict[int, list[Sample]]:
    rows: dict[int, list[Sample]] = {}
    for sample in result.samples:
        (index,) = sample.metadata["raw_row_indices"]
        rows.setdefault(index, []).append(sample)
    return rows


def only_pair(result: ConversionResult) -> tuple[Sample, Sample]:
    """The one pair of a one-row result: (source order, swapped), checked to be a proper swap."""
    assert result.quarantined == []
    assert_swapped_pairs(result.samples)
    (pair,) = pairs_by_id(result.samples).values()
    original, swapped = pair
    return original, swapped


# --- TRL ----------------------------------------------------------------------------------------


def test_trl_standard_explicit_prompt_is_one_user_turn_and_chosen_comes_first():
    result = convert_trl("prefs", [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}], 0.2).collect()
    original, swapped = only_pair(result)
    assert turns([original]) == [("user", "The sky is")]
    assert texts(original) == ["blue.", "green."] and original.preference == 0
    assert texts(swapped) == ["green.", "blue."] and swapped.preference == 1
    assert original.preference_strength is None  # no margin: no strength, not a default 0
    assert original.metadata["trl_prompt"] == "explicit" and original.metadata["trl_format"] == "standard"
    assert original.metadata["raw_row_indices"] == swapped.metadata["raw_row_indices"] == [0]
    assert original.task == "pairwise" and original.source == "prefs"


def test_trl_conversational_explicit_prompt_keeps_every_prompt_turn():
    row = {
        "prompt": [
            {"role": "system", "content": "Be brief."},
            user("Hi"),
            assistant("Hello!"),
            user("Sky colour?"),
        ],
        "chosen": [assistant("Blue.")],
        "rejected": [assistant("Green.")],
    }
    original, _ = only_pair(convert_trl("prefs", [row], 0.2).collect())
    assert turns([original]) == [
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Sky colour?"),
    ]
    assert texts(original) == ["Blue.", "Green."]
    assert original.metadata["trl_format"] == "conversational"


def test_trl_implicit_conversational_rows_are_chat_message_pairs_split_at_the_last_reply():
    context = [user("What color is the sky?"), assistant("Blue, mostly."), user("And at night?")]
    row = {
        "chosen": [*context, assistant("Dark blue or black.")],
        "rejected": [*context, assistant("Green.")],
    }
    original, _ = only_pair(convert_trl("prefs", [row], 0.2).collect())
    assert turns([original]) == [(m["role"], m["content"]) for m in context]
    assert texts(original) == ["Dark blue or black.", "Green."]
    assert original.metadata["trl_prompt"] == "implicit"


@pytest.mark.parametrize(
    "chosen, rejected, expected",
    [
        ("The sky is blue.", "The sky is green.", ("The sky is", "blue.", "green.")),  # TRL's doc example
        ("The sky is blue.", "The sky is black.", ("The sky is", "blue.", "black.")),  # not "The sky is bl"
        ("Say hi. Hello!", "Say hi. Go away.", ("Say hi.", "Hello!", "Go away.")),
    ],
)
def test_trl_implicit_standard_prompt_is_the_common_prefix_cut_between_words(chosen, rejected, expected):
    assert split_common_prefix(chosen, rejected) == expected
    original, _ = only_pair(convert_trl("prefs", [{"chosen": chosen, "rejected": rejected}], 0.2).collect())
    assert turns([original]) == [("user", expected[0])]
    assert texts(original) == list(expected[1:])


@pytest.mark.parametrize("margin, strength", [(2.5, 2.5), (3, 3.0), (0, 0.0), (None, None)])
def test_trl_margin_is_the_preference_strength_and_chosen_stays_preferred(margin, strength):
    row = {"prompt": "Q?", "chosen": "Right.", "rejected": "Wrong.", "margin": margin}
    original, swapped = only_pair(convert_trl("prefs", [row], 0.2).collect())
    assert original.preference_strength == swapped.preference_strength == strength
    assert (original.preference, swapped.preference) == (0, 1)


def test_trl_mixed_forms_and_a_null_prompt_column():
    rows = [
        {"prompt": "Q?", "chosen": [assistant("Right.")], "rejected": [assistant("Wrong.")]},
        {"prompt": [user("Q?")], "chosen": "Right.", "rejected": "Wrong."},
        {
            "prompt": None,
            "chosen": [user("Q2?"), assistant("Yes.")],
            "rejected": [user("Q2?"), assistant("No.")],
        },
    ]
    result = convert_trl("prefs", rows, 0.2).collect()
    # rows 0 and 1 are the same pair in two forms: the same content, so row 1 repeats row 0
    assert [(q.row_index, q.reason) for q in result.quarantined] == [(1, "duplicate of row 0 (same content)")]
    rows_out = by_row(result)
    assert set(rows_out) == {0, 2}
    assert turns(rows_out[0]) == [("user", "Q?")] and texts(rows_out[0][0]) == ["Right.", "Wrong."]
    assert turns(rows_out[2]) == [("user", "Q2?")] and rows_out[2][0].metadata["trl_prompt"] == "implicit"


def test_trl_format_is_wired_to_convert_trl():
    rows = [{"prompt": "Q?", "chosen": "Right.", "rejected": "Wrong."}]
    for name in ("trl", "chat_pairs"):
        assert FORMATS[name].converter() is convert_trl
        assert convert_rows("prefs", rows, format=name) == convert_trl("prefs", rows, 0.2).collect()


def test_bad_trl_rows_are_quarantined_naming_row_and_field_and_valid_rows_kept():
    good = {"prompt": "Q?", "chosen": "Right.", "rejected": "Wrong."}
    ctx = [user("Hi")]
    bad = {
        1: ({"prompt": "Q?", "rejected": "Wrong."}, "chosen"),
        2: ({"prompt": "Q?", "chosen": "Right.", "rejected": 3}, "rejected"),
        3: ({"chosen": "The sky is blue.", "rejected": [*ctx, assistant("x")]}, "rejected"),
        4: ({"prompt": "Q?", "chosen": "   ", "rejected": "Wrong."}, "chosen"),
        5: (
            {
                "prompt": [user("Q?")],
                "chosen": [assistant("a"), assistant("b")],
                "rejected": [assistant("c")],
            },
            "chosen",
        ),
        6: ({"prompt": [user("Q?")], "chosen": [user("a")], "rejected": [assistant("c")]}, "chosen[0].role"),
        7: ({"prompt": [user("Q?"), assistant("A.")], "chosen": "x", "rejected": "y"}, "prompt"),
        8: ({"chosen": [user("Hi"), assistant("a")], "rejected": [user("Hey"), assistant("b")]}, "rejected"),
        9: ({"chosen": "Blue sky.", "rejected": "Green sky."}, "rejected"),  # no shared leading word
        10: ({**good, "margin": -1.0}, "margin"),
        11: ({**good, "margin": "1.0"}, "margin"),
        12: ({**good, "margin": True}, "margin"),
        13: ({"prompt": "Q?", "chosen": "Same.", "rejected": "Same."}, "rejected"),
        14: (
            {"prompt": [{"role": "robot", "content": "Q?"}], "chosen": "a", "rejected": "b"},
            "prompt[0].role",
        ),
        15: ({"prompt": ["Q?"], "chosen": "a", "rejected": "b"}, "prompt[0]"),
        16: (
            {"prompt": [user("Q?")], "chosen": [{"role": "assistant"}], "rejected": [assistant("b")]},
            "chosen[0].content",
        ),
        17: (dict(good), "row"),  # a repeat of row 0
        18: (["not", "an", "object"], "row"),
        19: ({"prompt": "", "chosen": "a", "rejected": "b"}, "prompt"),
        20: ({"prompt": [user("  ")], "chosen": "a", "rejected": "b"}, "prompt[0].content"),
        21: ({"chosen": [], "rejected": []}, "chosen"),
    }
    rows = [good, *(row for row, _ in bad.values()), {"chosen": "Tell me. Yes.", "rejected": "Tell me. No."}]
    result = convert_trl("prefs", rows, 0.2).collect()
    check_quarantine(result, rows, {index: field for index, (_, field) in bad.items()})
    assert set(by_row(result)) == {0, len(rows) - 1}
    reasons = {q.row_index: q.reason for q in result.quarantined}
    assert "negative" in reasons[10] and "one assistant message" in reasons[5]
    assert reasons[17] == "duplicate of row 0 (same content)"


# --- HelpSteer3 ---------------------------------------------------------------------------------


def hs3(overall: int, response1: str = "Answer one.", response2: str = "Answer two.", **extra) -> dict:
    row = {
        "domain": "code",
        "language": "python",
        "context": [user("Write a loop."), assistant("In which language?"), user("Python.")],
        "response1": response1,
        "response2": response2,
        "overall_preference": overall,
        "individual_preference": [{"score": overall, "reasoning": "@Response 1 is clearer."}],
    }
    row.update(extra)
    return row


@pytest.mark.parametrize(
    "overall, preference, strength",
    [(-3, 0, 3.0), (-1, 0, 1.0), (0, None, 0.0), (1, 1, 1.0), (3, 1, 3.0)],
)
def test_helpsteer3_sign_negative_means_response1_better(overall, preference, strength):
    original, swapped = only_pair(convert_helpsteer3("hs3", [hs3(overall)], 0.2).collect())
    assert texts(original) == ["Answer one.", "Answer two."]
    assert original.preference == preference
    assert swapped.preference == (None if preference is None else 1 - preference)
    assert original.preference_strength == swapped.preference_strength == strength


def test_helpsteer3_keeps_the_conversation_domain_language_and_annotators():
    original, _ = only_pair(convert_helpsteer3("hs3", [hs3(-2)], 0.2).collect())
    assert turns([original]) == [
        ("user", "Write a loop."),
        ("assistant", "In which language?"),
        ("user", "Python."),
    ]
    assert original.metadata["domain"] == "code" and original.metadata["language"] == "python"
    assert original.metadata["individual_preference"] == [
        {"score": -2, "reasoning": "@Response 1 is clearer."}
    ]
    assert original.metadata["pair_source"] == "preference_annotation"
    assert original.metadata["raw_row_indices"] == [0]


def test_helpsteer3_and_helpsteer2_pairs_read_the_sign_the_same_way_and_share_the_split():
    hs2 = {
        "prompt": "Write a loop.",
        "response_1": "Answer one.",
        "response_2": "Answer two.",
        "preference_strength": 2,
    }
    row = hs3(2, context=[user("Write a loop.")])
    (from_hs3, _), (from_hs2, _) = (
        only_pair(convert_helpsteer3("a", [row], 0.5).collect()),
        only_pair(convert_helpsteer2("b", [hs2], 0.5).collect()),
    )
    assert from_hs3.preference == from_hs2.preference == 1
    assert (
        from_hs3.split == from_hs2.split and from_hs3.metadata["prompt_id"] == from_hs2.metadata["prompt_id"]
    )


def test_helpsteer3_format_is_wired_to_convert_helpsteer3():
    assert FORMATS["helpsteer3"].converter() is convert_helpsteer3
    assert FORMATS["helpsteer3"].missing_columns(hs3(1)) is None


def test_bad_helpsteer3_rows_are_quarantined_naming_row_and_field_and_valid_rows_kept():
    bad = {
        1: (hs3(4), "overall_preference"),
        2: (hs3(-4), "overall_preference"),
        3: (hs3(1.5), "overall_preference"),
        4: (hs3("2"), "overall_preference"),
        5: (hs3(True), "overall_preference"),
        6: ({k: v for k, v in hs3(1).items() if k != "response2"}, "response2"),
        7: (hs3(1, response1="  "), "response1"),
        8: (hs3(1, response2="Answer one."), "response2"),
        9: (hs3(1, context="Write a loop."), "context"),
        10: (hs3(1, context=[]), "context"),
        11: (hs3(1, context=[user("Q"), assistant("A")]), "context"),
        12: (hs3(1, context=[{"role": "user"}]), "context[0].content"),
        13: (hs3(1, context=[user(""), assistant("A"), user("Q")]), "context[0].content"),
        14: (hs3(1, individual_preference="strong"), "individual_preference"),
        15: (
            hs3(1, individual_preference=[{"score": 5, "reasoning": "x"}]),
            "individual_preference[0].score",
        ),
        16: (hs3(1, individual_preference=["x"]), "individual_preference[0]"),
        17: (hs3(1, domain=7), "domain"),
        18: ({k: v for k, v in hs3(1).items() if k != "overall_preference"}, "overall_preference"),
        19: (hs3(-3), "row"),  # a repeat of row 0
    }
    rows = [hs3(-3), *(row for row, _ in bad.values()), hs3(2, response1="Other one.")]
    result = convert_helpsteer3("hs3", rows, 0.2).collect()
    check_quarantine(result, rows, {index: field for index, (_, field) in bad.items()})
    assert set(by_row(result)) == {0, len(rows) - 1}
    reasons = {q.row_index: q.reason for q in result.quarantined}
    assert "out of range" in reasons[1] and "out of range" in reasons[15]


# --- RM-Gallery DataSample ----------------------------------------------------------------------


def answer(content: str, label: dict | None = None, **fields) -> dict:
    return {"answer": {"role": "assistant", "content": content, "label": label or {}, **fields}}


def sample(outputs: list[dict], unique_id: str = "id-1", **extra) -> dict:
    row = {
        "unique_id": unique_id,
        "input": [{"role": "user", "content": "What is 2+2?", "additional_kwargs": {}}],
        "output": outputs,
        "task_category": "math",
        "source": "rewardbench",
        "metadata": {"raw_data": {"ignored": True}},
    }
    row.update(extra)
    return row


def test_rm_gallery_chosen_rejected_pair_keeps_source_order_and_provenance():
    row = sample(
        [answer("5", {"preference": "rejected"}), answer("4", {"preference": "chosen", "model": "m1"})]
    )
    original, swapped = only_pair(convert_rm_gallery("gal", [row], 0.2).collect())
    assert texts(original) == ["5", "4"] and original.preference == 1 and swapped.preference == 0
    assert original.preference_strength is None
    assert turns([original]) == [("user", "What is 2+2?")]
    assert original.metadata["rm_gallery_id"] == "id-1"
    assert original.metadata["rm_gallery_source"] == "rewardbench"
    assert original.metadata["rm_gallery_task_category"] == "math"
    assert original.metadata["rm_gallery_labels"][1] == {"preference": "chosen", "model": "m1"}
    assert original.metadata["raw_row_indices"] == [0]


def test_rm_gallery_is_preferred_labels_and_the_helpsteer3_loaders_tie():
    preferred = sample(
        [answer("A", {"is_preferred": True, "preference_score": -2}), answer("B", {"is_preferred": False})]
    )
    tie = sample(
        [answer("A", {"is_preferred": False}), answer("B", {"is_preferred": False})], unique_id="id-2"
    )
    result = convert_rm_gallery("gal", [preferred, tie], 0.2).collect()
    assert result.quarantined == []
    assert_swapped_pairs(result.samples)
    rows = by_row(result)
    assert rows[0][0].preference == 0 and rows[0][0].responses[0].label == {"preference_score": -2.0}
    assert [s.preference for s in rows[1]] == [None, None]


def test_rm_gallery_best_of_n_is_one_listwise_sample_with_the_chosen_index():
    row = sample(
        [answer(t, {"preference": p}) for t, p in [("5", "rejected"), ("4", "chosen"), ("3", "rejected")]]
    )
    result = convert_rm_gallery("gal", [row], 0.2).collect()
    assert result.quarantined == []
    (listwise,) = result.samples
    assert listwise.task == "listwise" and texts(listwise) == ["5", "4", "3"] and listwise.preference == 1
    assert [r.label for r in listwise.responses] == [{"chosen": 0.0}, {"chosen": 1.0}, {"chosen": 0.0}]
    assert listwise.metadata["raw_row_indices"] == [0]


@pytest.mark.parametrize("ranks, preference", [([2, 1, 3], 1), ([1, 1, 2], None)])
def test_rm_gallery_ranks_become_a_listwise_sample(ranks, preference):
    row = sample([answer(f"answer {i}", {"rank": rank}) for i, rank in enumerate(ranks)])
    (listwise,) = convert_rm_gallery("gal", [row], 0.2).collect().samples
    assert listwise.task == "listwise" and listwise.preference == preference
    assert [r.label["rank"] for r in listwise.responses] == [float(rank) for rank in ranks]


def test_rm_gallery_scored_outputs_are_pointwise_samples_and_reference_steps_are_kept():
    scores = {"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 2}
    scored = sample(
        [answer("4", {**scores, "reference": "4"}), answer("5", {"helpfulness": 0, "reference": "4"})]
    )
    prm = sample(
        [
            {
                "answer": {
                    "role": "assistant",
                    "content": "2+2=4\nSo 4.",
                    "label": {"process_type": "original"},
                },
                "steps": [
                    {
                        "role": "assistant",
                        "content": "2+2=4",
                        "label": {"correctness": "correct", "step_idx": 1},
                    },
                    {
                        "role": "assistant",
                        "content": "So 5.",
                        "label": {"correctness": "error", "step_idx": 2},
                    },
                    {"role": "assistant", "content": "Done.", "label": {"step_idx": 3}},
                ],
            }
        ],
        unique_id="id-prm",
    )
    result = convert_rm_gallery("gal", [scored, prm], 0.2).collect()
    assert result.quarantined == []
    rows = by_row(result)
    first, second = rows[0]
    assert first.task == second.task == "pointwise" and first.id != second.id
    assert first.responses[0].label == {name: float(value) for name, value in scores.items()}
    assert first.reference == second.reference == "4"
    assert (first.metadata["rm_gallery_output_index"], second.metadata["rm_gallery_output_index"]) == (0, 1)
    assert first.split == second.split
    (step_sample,) = rows[1]
    assert [(s.content, s.label) for s in step_sample.responses[0].steps] == [
        ("2+2=4", 1.0),
        ("So 5.", 0.0),
        ("Done.", None),
    ]


def test_rm_gallery_function_role_is_a_tool_turn_and_reasoning_is_kept():
    inputs = [
        user("Weather?"),
        assistant("Calling the tool."),
        {"role": "function", "content": "sunny"},
        user("So?"),
    ]
    row = sample([answer("Sunny.", {"score": 1.0}, reasoning_content="The tool said sunny.")], input=inputs)
    (pointwise,) = convert_rm_gallery("gal", [row], 0.2).collect().samples
    assert [m.role for m in pointwise.input] == ["user", "assistant", "tool", "user"]
    assert pointwise.responses[0].message == ChatMessage(
        role="assistant", content="Sunny.", reasoning="The tool said sunny."
    )


def test_rm_gallery_format_is_wired_to_convert_rm_gallery():
    assert FORMATS["rm_gallery"].converter() is convert_rm_gallery


def test_bad_rm_gallery_rows_are_quarantined_naming_row_and_field_and_valid_rows_kept():
    pair = [answer("4", {"preference": "chosen"}), answer("5", {"preference": "rejected"})]
    bad = {
        1: ({k: v for k, v in sample(pair).items() if k != "unique_id"}, "unique_id"),
        2: (sample(pair, input="What is 2+2?"), "input"),
        3: (sample(pair, input=[user("Q"), assistant("A")]), "input"),
        4: (sample([]), "output"),
        5: (sample(answer("4", {"score": 1})), "output"),  # an object, not a list
        6: (sample([pair[0], "5"]), "output[1]"),
        7: (sample([pair[0], {"steps": []}]), "output[1].answer"),
        8: (sample([pair[0], answer(" ", {"preference": "rejected"})]), "output[1].answer.content"),
        9: (
            sample([pair[0], {"answer": {"role": "user", "content": "5", "label": {}}}]),
            "output[1].answer.role",
        ),
        10: (sample([pair[0], answer("5", {"preference": "maybe"})]), "output[1].answer.label.preference"),
        11: (sample([pair[0], answer("5", {"preference": "chosen"})]), "output"),
        12: (sample([pair[0]]), "output"),
        13: (sample([pair[0], answer("5", {"score": 0})]), "output[1].answer.label.preference"),
        14: (sample([answer("4", {"rank": 1}), answer("5", {"rank": 0})]), "output[1].answer.label.rank"),
        15: (sample([answer("4", {"rank": 1}), answer("5", {})]), "output[1].answer.label.rank"),
        16: (sample([answer("4", {"model": "m1"})]), "output[0].answer.label"),
        17: (
            sample([{**answer("4"), "steps": [{"content": "s", "label": {"quality": "meh"}}]}]),
            "output[0].steps[0].label",
        ),
        18: (
            sample([{**answer("4"), "steps": [{"content": "s", "label": {"correctness": "meh"}}]}]),
            "output[0].steps[0].label.correctness",
        ),
        19: (sample([{**answer("4", {"score": 1}), "steps": "s1 s2"}]), "output[0].steps"),
        20: (
            sample(
                [answer("4", {"score": 1, "reference": "4"}), answer("5", {"score": 0, "reference": "5"})]
            ),
            "output",
        ),
        21: (sample([pair[0], answer("4", {"preference": "rejected"})]), "output[1].answer.content"),
        22: (
            sample([pair[0], answer("5", {"preference": "chosen", "is_preferred": False})]),
            "output[1].answer.label.is_preferred",
        ),
        23: (sample([answer("4", "chosen"), pair[1]]), "output[0].answer.label"),
        24: ({"unique_id": "x", "evaluation_sample": {"input": [], "outputs": []}}, "input"),
        25: (sample(pair, input=[{"role": "robot", "content": "Q"}]), "input[0].role"),
        26: (sample(pair), "row"),  # a repeat of row 0
    }
    rows = [
        sample(pair),
        *(row for row, _ in bad.values()),
        sample([answer("7", {"score": 0.5})], unique_id="last"),
    ]
    result = convert_rm_gallery("gal", rows, 0.2).collect()
    check_quarantine(result, rows, {index: field for index, (_, field) in bad.items()})
    assert set(by_row(result)) == {0, len(rows) - 1}
    reasons = {q.row_index: q.reason for q in result.quarantined}
    assert "1 chosen" not in reasons[11] and "2 chosen of 2" in reasons[11]
    assert "early evaluation_sample schema" in reasons[24]
    assert all(json.loads(q.row_json) == rows[q.row_index] for q in result.quarantined)
