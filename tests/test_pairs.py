"""fold_pairs: the one place the converters' A/B-swapped copies fold back into one labelled pair."""

from __future__ import annotations

import pytest

from rm_rewards.core.schema import ChatMessage, Sample
from rm_rewards.curation.pairs import fold_pairs, pair_identity
from rm_rewards.datasets.samples import assistant_response, pointwise_sample, swapped_pair_samples


def messages(prompt: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=prompt)]


def swapped(
    prompt: str, first: str, second: str, preference: int | None, digest: str | None = None
) -> list[Sample]:
    return swapped_pair_samples(
        "toy",
        digest or prompt.replace(" ", "_"),
        "pair",
        messages(prompt),
        (assistant_response(first), assistant_response(second)),
        preference,
        None,
        0.0,
        raw_row_indices=[0],
    )


def test_each_pair_is_kept_once_with_both_copies_and_the_unswapped_order():
    original, copy = swapped("cats?", "purr", "bark", 0)
    other, other_copy = swapped("dogs?", "meow", "woof", 1)
    pairs, skipped = fold_pairs([original, other, copy, other_copy])
    assert [(p.pair_id, p.sample_ids) for p in pairs] == [
        (original.id, [original.id, copy.id]),
        (other.id, [other.id, other_copy.id]),
    ]
    first = pairs[0]
    assert first.sample == original and first.chosen_index == 0
    assert (first.chosen.text, first.rejected.text) == ("purr", "bark")
    assert first.split == original.split and first.context == original.input
    assert pairs[1].chosen.text == "woof" and pairs[1].rejected.text == "meow"
    assert [(s.sample_id, s.reason) for s in skipped] == [
        (copy.id, f"same pair as {original.id} (swapped copy)"),
        (other_copy.id, f"same pair as {other.id} (swapped copy)"),
    ]


def test_the_first_seen_copy_names_the_pair_even_when_it_is_the_swapped_one():
    original, copy = swapped("cats?", "purr", "bark", 0)
    (pair,), _ = fold_pairs([copy, original])
    assert pair.pair_id == copy.id and pair.sample_ids == [copy.id, original.id]
    assert pair.chosen_index == 1 and pair.chosen.text == "purr"


def test_a_repeat_in_the_same_order_is_named_a_repeat():
    original, _ = swapped("cats?", "purr", "bark", 0)
    again = original.model_copy(update={"id": "elsewhere"})
    (pair,), skipped = fold_pairs([original, again])
    assert pair.sample_ids == [original.id, "elsewhere"]
    assert skipped[0].reason == f"same pair as {original.id} (repeat)"


def test_every_unusable_sample_is_skipped_with_its_reason():
    good, _ = swapped("cats?", "purr", "bark", 0)
    tie, tie_copy = swapped("fish?", "blub", "glug", None)
    same, _ = swapped("owls?", "hoot", "hoot", 0)
    point = pointwise_sample("toy", "pw", messages("x?"), assistant_response("y"), 0.0, raw_row_indices=[3])
    three = good.model_copy(update={"id": "three", "responses": [*good.responses, good.responses[0]]})
    odd = good.model_copy(update={"id": "odd", "preference": 2})
    pairs, skipped = fold_pairs([point, three, odd, tie, tie_copy, same, good])
    assert [p.pair_id for p in pairs] == [good.id]
    assert [(s.sample_id, s.reason) for s in skipped] == [
        (point.id, "task: pointwise, not pairwise"),
        ("three", "responses: needs 2, has 3"),
        ("odd", "preference: 2 is not 0 or 1"),
        (tie.id, "preference: none (a tie or unlabelled)"),
        (tie_copy.id, "preference: none (a tie or unlabelled)"),
        (same.id, "responses: identical texts, no preference to learn"),
    ]


def test_strict_makes_a_malformed_pair_an_error_naming_the_sample_and_field():
    good, _ = swapped("cats?", "purr", "bark", 0)
    three = good.model_copy(update={"id": "three", "responses": [*good.responses, good.responses[0]]})
    with pytest.raises(ValueError, match=r"'three': field 'responses'.*got 3"):
        fold_pairs([three], strict=True)
    with pytest.raises(ValueError, match=r"'odd': field 'preference'.*got 2"):
        fold_pairs([good.model_copy(update={"id": "odd", "preference": 2})], strict=True)


def test_ties_fold_too_when_asked_and_have_no_chosen_response():
    tie, tie_copy = swapped("fish?", "blub", "glug", None)
    (pair,), skipped = fold_pairs([tie, tie_copy], include_ties=True)
    assert pair.is_tie and pair.sample_ids == [tie.id, tie_copy.id]
    assert [s.sample_id for s in skipped] == [tie_copy.id]
    with pytest.raises(ValueError, match="is a tie"):
        pair.chosen


def test_identity_is_the_context_and_the_texts_in_any_order():
    original, copy = swapped("cats?", "purr", "bark", 0)
    assert pair_identity(original) == pair_identity(copy)
    (elsewhere, _) = swapped("dogs?", "purr", "bark", 0)
    assert pair_identity(elsewhere) != pair_identity(original)
    # A first-seen label wins over a later, contradicting copy of the same pair.
    relabelled = original.model_copy(update={"id": "relabelled", "preference": 1})
    (pair,), _ = fold_pairs([original, relabelled])
    assert pair.chosen.text == "purr" and pair.sample_ids == [original.id, "relabelled"]
