"""Converters: HelpSteer2 restoration, HelpSteer2 / HH-RLHF → samples, splits, ids, quarantine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

from rm_rewards.core.schema import Sample
from rm_rewards.datasets.catalog import UnknownDatasetError
from rm_rewards.datasets.convert import convert_rows
from rm_rewards.datasets.helpsteer2_restore import (
    NEMO_FILE,
    RESTORED_FILE,
    restore_row,
    restored_jsonl,
    template_row,
)
from rm_rewards.datasets.quarantine import ConversionResult, QuarantinedRow
from rm_rewards.datasets.sources import load_bundled_rows

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def rating(prompt: str, response: str, helpfulness: int, **others: int) -> dict:
    row = {"prompt": prompt, "response": response, "helpfulness": helpfulness}
    row.update({name: others.get(name, 2) for name in ATTRIBUTES[1:]})
    return row


def hh_row(context: str, chosen: str, rejected: str) -> dict:
    return {"chosen": f"{context}\n\nAssistant: {chosen}", "rejected": f"{context}\n\nAssistant: {rejected}"}


def pairs_by_id(samples: list[Sample]) -> dict[str, list[Sample]]:
    pairs: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.task == "pairwise":
            pairs[sample.metadata["pair_id"]].append(sample)
    return pairs


def assert_swapped_pairs(samples: list[Sample]) -> None:
    """Every pair appears exactly twice: same prompt and split, responses and preference flipped."""
    pairs = pairs_by_id(samples)
    assert pairs
    for pair_id, (original, swapped) in pairs.items():
        assert not original.metadata["swapped"] and swapped.metadata["swapped"], pair_id
        assert original.split == swapped.split
        assert original.input == swapped.input
        assert original.responses == list(reversed(swapped.responses))
        expected = None if original.preference is None else 1 - original.preference
        assert swapped.preference == expected
        assert original.preference_strength == swapped.preference_strength


# --- the restored HelpSteer2 sample -------------------------------------------------------------


def test_restored_file_is_exactly_the_restoration_output():
    assert RESTORED_FILE.read_text(encoding="utf-8") == restored_jsonl()


def test_restored_row_0_is_the_published_first_validation_row():
    rows = [json.loads(line) for line in RESTORED_FILE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 8
    assert list(rows[0]) == ["prompt", "response", *ATTRIBUTES]
    assert rows[0]["prompt"] == "explain master slave replication nsql"
    assert [rows[0][name] for name in ATTRIBUTES] == [4, 4, 4, 3, 2]
    assert all(isinstance(row[name], int) and 0 <= row[name] <= 4 for row in rows for name in ATTRIBUTES)


def test_retemplating_the_restored_rows_reproduces_the_nemo_file_byte_for_byte():
    rows = [json.loads(line) for line in RESTORED_FILE.read_text(encoding="utf-8").splitlines()]
    retemplated = "".join(json.dumps(template_row(row), ensure_ascii=False) + "\n" for row in rows)
    assert retemplated == NEMO_FILE.read_text(encoding="utf-8")


def test_restoration_keeps_multi_turn_prompts_whole():
    row = rating("hi\n<extra_id_1>Assistant\nhello!\n<extra_id_1>User\nwhat is 2+2?", "4", 3)
    assert restore_row(template_row(row)) == row


def test_restoration_rejects_rows_outside_the_template():
    nemo = template_row(rating("q", "a", 1))
    with pytest.raises(ValueError, match=r"row 3, field 'text'"):
        restore_row({**nemo, "text": nemo["text"].replace("<extra_id_0>System", "System")}, 3)
    with pytest.raises(ValueError, match=r"field 'label'.*quality"):
        restore_row({**nemo, "label": [1.0, *nemo["label"][1:]]})
    with pytest.raises(ValueError, match=r"helpfulness = 2.5"):
        restore_row({**nemo, "label": [*nemo["label"][:4], 2.5, *nemo["label"][5:]]})


# --- HelpSteer2 ratings ---------------------------------------------------------------------------


def test_bundled_helpsteer2_gives_pointwise_samples_with_the_five_attributes():
    rows = load_bundled_rows("helpsteer2")
    result = convert_rows("helpsteer2", rows)
    assert result.quarantined == []
    pointwise = [s for s in result.samples if s.task == "pointwise"]
    assert len(pointwise) == len(rows) == 8
    for sample, row in zip(pointwise, rows):
        assert [m.model_dump(exclude_none=True) for m in sample.input] == [
            {"role": "user", "content": row["prompt"]}
        ]
        assert sample.responses[0].text == row["response"]
        assert sample.responses[0].label == {name: float(row[name]) for name in ATTRIBUTES}


def test_bundled_helpsteer2_pairs_follow_helpfulness_and_ties_have_no_preference():
    rows = load_bundled_rows("helpsteer2")
    pairs = pairs_by_id(convert_rows("helpsteer2", rows).samples)
    assert len(pairs) == 4  # 4 prompts with 2 responses each
    assert_swapped_pairs([s for pair in pairs.values() for s in pair])
    for original, _ in pairs.values():
        first, second = (next(r for r in rows if r["response"] == resp.text) for resp in original.responses)
        if first["helpfulness"] == second["helpfulness"]:
            assert original.preference is None
        else:
            assert original.preference == (0 if first["helpfulness"] > second["helpfulness"] else 1)
        assert original.preference_strength == abs(first["helpfulness"] - second["helpfulness"])
    assert sum(original.preference is None for original, _ in pairs.values()) == 1  # last prompt: 4 vs 4


def test_pairs_come_from_every_response_pair_of_a_prompt_not_neighbours():
    rows = [rating("p", "a", 1), rating("q", "x", 2), rating("p", "b", 3), rating("p", "c", 3)]
    samples = convert_rows("helpsteer2", rows).samples
    pairs = pairs_by_id(samples)
    seen = {tuple(r.text for r in original.responses): original.preference for original, _ in pairs.values()}
    assert seen == {("a", "b"): 1, ("a", "c"): 1, ("b", "c"): None}
    assert_swapped_pairs(samples)


def test_multi_turn_prompts_become_chat_messages():
    prompt = "hi\n<extra_id_1>Assistant\nhello, how can I help?\n<extra_id_1>User\nwhat is 2+2?"
    (sample,) = [s for s in convert_rows("helpsteer2", [rating(prompt, "4", 4)]).samples]
    assert [(m.role, m.content) for m in sample.input] == [
        ("user", "hi"),
        ("assistant", "hello, how can I help?"),
        ("user", "what is 2+2?"),
    ]


# --- HelpSteer2 preference subset -----------------------------------------------------------------


def preference(prompt: str, strength, r1: str = "one", r2: str = "two", **extra) -> dict:
    return {"prompt": prompt, "response_1": r1, "response_2": r2, "preference_strength": strength, **extra}


@pytest.mark.parametrize(("strength", "expected"), [(2, 1), (3, 1), (-1, 0), (-3, 0), (0, None)])
def test_preference_strength_sign_picks_the_better_response(strength, expected):
    result = convert_rows("helpsteer2_preference", [preference("p", strength)])
    original, swapped = result.samples
    assert [r.text for r in original.responses] == ["one", "two"]
    assert original.preference == expected
    assert original.preference_strength == abs(strength)
    assert swapped.id == original.id.replace("-preference_pair", "-preference_pair_swapped")
    assert_swapped_pairs(result.samples)


def test_preference_rows_keep_the_annotators_statement_and_hub_split():
    row = preference("p", -2, split="val", preference_statement="@Response 1 is better.")
    original, _ = convert_rows("helpsteer2_preference", [row]).samples
    assert original.metadata["preference_statement"] == "@Response 1 is better."
    assert original.metadata["hub_split"] == "val"
    assert original.metadata["pair_source"] == "preference_annotation"


def test_helpsteer2_detects_ratings_and_preference_rows_in_one_list():
    rows = [rating("p", "a", 4), preference("p", 1, "a", "b"), rating("p", "b", 1)]
    result = convert_rows("helpsteer2", rows)
    by_variant = defaultdict(int)
    for sample in result.samples:
        by_variant[sample.id.rsplit("-", 1)[1]] += 1
    assert by_variant == {
        "pointwise": 2,
        "rating_pair": 1,
        "rating_pair_swapped": 1,
        "preference_pair": 1,
        "preference_pair_swapped": 1,
    }
    # one prompt, three kinds of sample: one split
    assert len({s.split for s in result.samples}) == 1


# --- HH-RLHF --------------------------------------------------------------------------------------


def test_hh_dialogues_become_shared_context_and_two_final_replies():
    row = hh_row("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I bake bread?", "Use flour.", "No.")
    original, swapped = convert_rows("hh_rlhf_harmless", [row]).samples
    assert [(m.role, m.content) for m in original.input] == [
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "how do I bake bread?"),
    ]
    assert [r.text for r in original.responses] == ["Use flour.", "No."]
    assert (original.preference, swapped.preference) == (0, 1)
    assert original.preference_strength is None
    assert [r.text for r in swapped.responses] == ["No.", "Use flour."]


def test_bundled_harmless_quarantines_exactly_the_malformed_rows():
    rows = load_bundled_rows("hh_rlhf_harmless")
    result = convert_rows("hh_rlhf_harmless", rows)
    # Found by reading the file: four empty chosen replies, five dialogues where a turn lost its
    # "\n\n" separator or the two sides differ in length.
    assert {(q.row_index, q.field) for q in result.quarantined} == {
        (86, "chosen"),
        (516, "chosen"),
        (925, "chosen"),
        (1103, "chosen"),
        (1254, "rejected"),
        (1688, "rejected"),
        (1950, "rejected"),
        (1952, "rejected"),
        (2036, "rejected"),
    }
    assert len(result.samples) == 2 * (len(rows) - 9)
    assert_swapped_pairs(result.samples)
    first = result.samples[0]
    assert rows[0]["chosen"].endswith(first.responses[0].text)
    assert rows[0]["rejected"].endswith(first.responses[1].text)
    assert first.input[-1].role == "user"


def rm_gallery_to_hub_strings(row: dict) -> dict:
    speakers = {"user": "Human", "assistant": "Assistant"}
    context = "".join(f"\n\n{speakers[m['role']]}: {m['content']}" for m in row["evaluation_sample"]["input"])
    replies = {o["content_label"]: o["content"] for o in row["evaluation_sample"]["outputs"]}
    return hh_row(context, replies["chosen"], replies["rejected"])


def test_bundled_helpful_rm_gallery_rows_convert_like_the_same_pairs_as_hub_strings():
    rows = load_bundled_rows("hh_rlhf_helpful")
    result = convert_rows("hh_rlhf_helpful", rows)
    identical = [q for q in result.quarantined if "identical" in q.reason]
    assert len(result.quarantined) == len(identical) == 13  # rows whose two replies are the same text
    assert len(result.samples) == 2 * (len(rows) - 13)
    assert_swapped_pairs(result.samples)
    original = result.samples[0]
    assert original.metadata["rm_gallery_id"] == rows[0]["unique_id"]
    assert [m.content for m in original.input] == [
        m["content"] for m in rows[0]["evaluation_sample"]["input"]
    ]
    # The id and split depend on the pair, not on the row schema it came in.
    as_hub = convert_rows("hh_rlhf_helpful", [rm_gallery_to_hub_strings(rows[0])]).samples[0]
    assert (as_hub.id, as_hub.split, as_hub.input, as_hub.responses) == (
        original.id,
        original.split,
        original.input,
        original.responses,
    )


def test_hh_message_list_rows_are_read_too():
    context = [{"role": "user", "content": "hi"}]
    row = {
        "chosen": [*context, {"role": "assistant", "content": "hello"}],
        "rejected": [*context, {"role": "assistant", "content": "go away"}],
    }
    as_strings = convert_rows("hh_rlhf_helpful", [hh_row("\n\nHuman: hi", "hello", "go away")]).samples
    assert convert_rows("hh_rlhf_helpful", [row]).samples == as_strings


# --- ids and splits -------------------------------------------------------------------------------


def mixed_rows() -> list[dict]:
    return [rating(f"prompt {i // 2}", f"response {i}", i % 5) for i in range(60)]


def test_ids_are_unique_and_stable_across_runs_and_row_order():
    rows = mixed_rows()
    first = convert_rows("helpsteer2", rows).samples
    assert len({s.id for s in first}) == len(first)
    again = convert_rows("helpsteer2", rows).samples
    assert [(s.id, s.split) for s in again] == [(s.id, s.split) for s in first]
    reordered = convert_rows("helpsteer2", list(reversed(rows))).samples
    pointwise = {s.id: s.split for s in first if s.task == "pointwise"}
    assert {s.id: s.split for s in reordered if s.task == "pointwise"} == pointwise


def test_ids_and_splits_do_not_depend_on_the_process_hash_seed():
    code = (
        "from rm_rewards.datasets.convert import convert_rows\n"
        "from rm_rewards.datasets.sources import load_bundled_rows\n"
        "rows = load_bundled_rows('hh_rlhf_harmless')[:200]\n"
        "print([(s.id, s.split) for s in convert_rows('hh_rlhf_harmless', rows).samples])\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    rows = load_bundled_rows("hh_rlhf_harmless")[:200]
    assert outputs.pop().strip() == str(
        [(s.id, s.split) for s in convert_rows("hh_rlhf_harmless", rows).samples]
    )


def test_sample_id_format_is_pinned():
    # A changed id orphans every stored score; change this only on purpose.
    sample = convert_rows("helpsteer2", load_bundled_rows("helpsteer2")).samples[0]
    assert sample.id == "helpsteer2-881b057327d5da21-pointwise"


def test_split_keeps_every_sample_of_a_prompt_together_and_follows_test_fraction():
    rows = load_bundled_rows("hh_rlhf_harmless")
    samples = convert_rows("hh_rlhf_harmless", rows, test_fraction=0.3).samples
    split_of_prompt: dict[str, set[str]] = defaultdict(set)
    for sample in samples:
        split_of_prompt[sample.metadata["prompt_id"]].add(sample.split)
    assert all(len(splits) == 1 for splits in split_of_prompt.values())
    test_share = sum(splits == {"test"} for splits in split_of_prompt.values()) / len(split_of_prompt)
    assert 0.26 < test_share < 0.34  # ~2,300 prompts: a 0.3 share within ~3 standard deviations
    assert {s.split for s in convert_rows("hh_rlhf_harmless", rows[:50], test_fraction=0.0).samples} == {
        "train"
    }
    assert {s.split for s in convert_rows("hh_rlhf_harmless", rows[:50], test_fraction=1.0).samples} == {
        "test"
    }


def test_same_prompt_lands_in_the_same_split_across_helpsteer2_datasets():
    prompts = [f"question number {i}" for i in range(40)]
    ratings = convert_rows("helpsteer2", [rating(p, "answer", 2) for p in prompts], test_fraction=0.5)
    preferences = convert_rows(
        "helpsteer2_preference", [preference(p, 1) for p in prompts], test_fraction=0.5
    )
    split_of = {s.input[0].content: s.split for s in ratings.samples}
    assert {s.input[0].content: s.split for s in preferences.samples} == split_of
    assert set(split_of.values()) == {"train", "test"}


# --- bad rows -------------------------------------------------------------------------------------


def check_quarantine(result: ConversionResult, rows: list, expected: dict[int, str]) -> None:
    """Bad rows are quarantined with the expected field; every other row was converted."""
    assert {q.row_index: q.field for q in result.quarantined} == expected
    for item in result.quarantined:
        assert isinstance(item, QuarantinedRow)
        stored = json.dumps(json.loads(item.row_json), sort_keys=True)
        assert stored == json.dumps(rows[item.row_index], sort_keys=True, default=str)
        assert f"row {item.row_index}" in item.message and item.field in item.message


def test_bad_helpsteer2_rows_are_quarantined_and_the_rows_around_them_kept():
    good = [rating(f"good {i}", "fine answer", 3) for i in range(4)]
    bad = {
        1: ({"response": "r", **{a: 1 for a in ATTRIBUTES}}, "prompt"),
        2: (rating(7, "r", 1), "prompt"),
        3: (rating("p", "   ", 1), "response"),
        4: (rating("p", "r", 5), "helpfulness"),
        5: (rating("p", "r", 1, verbosity=-1), "verbosity"),
        6: (rating("p", "r", "4"), "helpfulness"),
        7: (rating("p", "r", 2.5), "helpfulness"),
        8: (rating("p", "r", True), "helpfulness"),
        9: ({k: v for k, v in rating("p", "r", 1).items() if k != "coherence"}, "coherence"),
        10: (["not", "an", "object"], "row"),
        11: (rating("hi\n<extra_id_1>Assistant\nhello", "r", 1), "prompt"),
        12: (preference("p", 4), "preference_strength"),
        13: (preference("p", 1, "same", "same"), "response_2"),
        14: (preference("p", None), "preference_strength"),
        15: (rating("good 0", "fine answer", 3), "row"),  # a repeat of row 0
        16: (rating("p", "r", float("nan")), "helpfulness"),
    }
    rows = [good[0]] + [row for row, _ in bad.values()] + good[1:]
    result = convert_rows("helpsteer2", rows)
    check_quarantine(result, rows, {index: field for index, (_, field) in bad.items()})
    assert "duplicate of row 0" in next(q.reason for q in result.quarantined if q.row_index == 15)
    assert "out of range" in next(q.reason for q in result.quarantined if q.row_index == 4)
    kept = [s.input[0].content for s in result.samples if s.task == "pointwise"]
    assert kept == [f"good {i}" for i in range(4)]


def test_bad_hh_rows_are_quarantined_and_the_rows_around_them_kept():
    context = "\n\nHuman: how do I bake bread?"
    good = [hh_row(context + f" (v{i})", "Use flour.", "No.") for i in range(3)]
    rm_gallery = {
        "evaluation_sample": {
            "input": [{"role": "user", "content": "hi"}],
            "outputs": [
                {"content": "hello", "content_label": "chosen"},
                {"content": "bye", "content_label": "rejected"},
            ],
        }
    }
    evaluation = rm_gallery["evaluation_sample"]
    bad = {
        1: ({"rejected": good[0]["rejected"]}, "chosen"),
        2: ({"chosen": good[0]["chosen"], "rejected": 3}, "rejected"),
        3: (hh_row(context, "", "No."), "chosen"),
        4: (hh_row(context, "Use flour.", "  "), "rejected"),
        5: ({"chosen": good[0]["chosen"], "rejected": "\n\nHuman: other?\n\nAssistant: No."}, "rejected"),
        6: (
            {"chosen": good[0]["chosen"], "rejected": good[0]["chosen"] + "\n\nHuman: more\n\nAssistant: x"},
            "rejected",
        ),
        7: ({"chosen": "preamble" + good[0]["chosen"], "rejected": good[0]["rejected"]}, "chosen"),
        8: ({"chosen": "no turns at all", "rejected": "no turns either"}, "chosen"),
        9: ({"chosen": good[0]["chosen"] + "\n\nHuman: and?", "rejected": good[0]["rejected"]}, "chosen"),
        10: (hh_row(context, "Same.", "Same."), "rejected"),
        11: ({"prompt": "what schema is this?"}, "chosen"),
        12: (
            {**rm_gallery, "evaluation_sample": {**evaluation, "input": [{"role": "robot", "content": "x"}]}},
            "evaluation_sample.input[0].role",
        ),
        13: (
            {"evaluation_sample": {**evaluation, "outputs": [evaluation["outputs"][0]] * 2}},
            "evaluation_sample.outputs[1].content_label",
        ),
        14: ({"evaluation_sample": {**evaluation, "input": "hi"}}, "evaluation_sample.input"),
        15: (
            {
                "evaluation_sample": {
                    **evaluation,
                    "outputs": [evaluation["outputs"][0], {"content_label": "rejected"}],
                }
            },
            "evaluation_sample.outputs[1].content",
        ),
    }
    rows = [good[0], *(row for row, _ in bad.values()), rm_gallery, *good[1:]]
    result = convert_rows("hh_rlhf_harmless", rows)
    check_quarantine(result, rows, {index: field for index, (_, field) in bad.items()})
    kept = {s.metadata["pair_id"] for s in result.samples}
    assert len(kept) == 4 and len(result.samples) == 8


def test_caller_errors_raise_instead_of_quarantining():
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'helpsteer3'.*helpsteer2"):
        convert_rows("helpsteer3", [])
    with pytest.raises(ValueError, match="test_fraction"):
        convert_rows("helpsteer2", [], test_fraction=1.5)
    with pytest.raises(TypeError, match="list"):
        convert_rows("helpsteer2", {"prompt": "p"})  # type: ignore[arg-type]


def test_counts_summarise_tasks_splits_and_quarantine():
    result = convert_rows("helpsteer2", [*load_bundled_rows("helpsteer2"), {"prompt": "p"}])
    assert result.counts() == {"pairwise/train": 8, "pointwise/train": 8, "quarantined": 1}


# --- provenance: the raw rows each sample came from -------------------------------------------------


def test_every_sample_names_its_raw_row_and_both_swapped_copies_the_same_one():
    rows = [hh_row("\n\nHuman: q1", "yes", "no"), {"chosen": "broken"}, hh_row("\n\nHuman: q2", "a", "b")]
    samples = convert_rows("hh_rlhf_harmless", rows).samples
    assert [(s.input[0].content, s.metadata["swapped"], s.metadata["raw_row_indices"]) for s in samples] == [
        ("q1", False, [0]),
        ("q1", True, [0]),
        ("q2", False, [2]),  # row 1 is quarantined: indices stay positions in `rows`
        ("q2", True, [2]),
    ]


def test_helpsteer2_rating_pairs_name_both_rating_rows():
    rows = [rating("p", "a", 1), rating("q", "x", 2), preference("q", 2, "x", "y"), rating("p", "b", 3)]
    samples = convert_rows("helpsteer2", rows).samples
    pairs_of_p = [s for s in samples if s.input[0].content == "p" and s.task == "pairwise"]
    provenance = {s.id.rsplit("-", 1)[1]: s.metadata["raw_row_indices"] for s in pairs_of_p}
    assert provenance == {"rating_pair": [0, 3], "rating_pair_swapped": [0, 3]}
    pointwise = {s.responses[0].text: s.metadata["raw_row_indices"] for s in samples if s.task == "pointwise"}
    assert pointwise == {"a": [0], "x": [1], "b": [3]}
    preference_pairs = [s for s in samples if s.metadata.get("pair_source") == "preference_annotation"]
    assert [s.metadata["raw_row_indices"] for s in preference_pairs] == [[2], [2]]


def test_a_duplicate_row_is_quarantined_and_the_sample_keeps_the_first_rows_index():
    rows = [rating("other", "r", 1), rating("p", "a", 4), rating("p", "a", 4)]
    result = convert_rows("helpsteer2", rows)
    assert [(q.row_index, q.reason) for q in result.quarantined] == [(2, "duplicate of row 1 (same content)")]
    assert [s.metadata["raw_row_indices"] for s in result.samples if s.input[0].content == "p"] == [[1]]


@pytest.mark.parametrize("dataset", ["hh_rlhf_harmless", "helpsteer2"])
def test_a_conversion_stream_makes_each_sample_as_it_is_read_once_and_counts_them(dataset):
    """What the converted_samples asset writes from: the same samples and quarantine as
    `convert_rows`, but made one at a time, so a consumer that drops each one holds none."""
    import gc
    import weakref
    from collections import Counter

    from rm_rewards.datasets.convert import stream_rows

    rows = load_bundled_rows(dataset)[:300]
    rows.append({"chosen": 1} if dataset == "hh_rlhf_harmless" else {"prompt": "hi"})  # one bad row
    whole = convert_rows(dataset, rows)
    stream = stream_rows(dataset, rows)
    assert stream.quarantined == whole.quarantined and whole.quarantined[-1].row_index == len(rows) - 1
    assert not stream.counts  # nothing made before it is read

    samples = iter(stream)
    first = next(samples)
    assert first == whole.samples[0] and sum(stream.counts.values()) == 1
    made = weakref.ref(first)
    del first
    rest = [next(samples) for _ in range(3)]  # past the first row's samples (a pair's two copies)
    gc.collect()
    assert made() is None  # nothing behind the stream keeps the partition's samples
    rest += list(samples)
    assert [whole.samples[0], *rest] == whole.samples
    assert stream.counts == Counter(f"{s.task}/{s.split}" for s in whole.samples)
    with pytest.raises(RuntimeError, match="read once"):
        next(iter(stream))
