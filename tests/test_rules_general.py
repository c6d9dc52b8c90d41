"""General reference metrics: exact match, token F1, ROUGE-L, number accuracy (known answers)."""

from __future__ import annotations

import random

import pytest

from rm_rewards import registry
from rm_rewards.rules.general import (
    extract_numbers,
    lcs_length,
    number_accuracy,
    rouge_l,
    token_f1,
    tokenize,
)
from rm_rewards.schema import ChatMessage, Response, Sample


def make_sample(reference: str | None, *responses: str, sample_id: str = "s1") -> Sample:
    return Sample(
        id=sample_id,
        source="test",
        input=[ChatMessage(role="user", content="q")],
        responses=[Response(message=ChatMessage(role="assistant", content=r)) for r in responses],
        reference=reference,
    )


def test_tokenize_splits_cjk_by_character_and_drops_punctuation() -> None:
    assert tokenize("Don't stop, U.S.!") == ["dont", "stop", "u", "s"]
    assert tokenize("我爱北京 Tokyo東京") == ["我", "爱", "北", "京", "tokyo", "東", "京"]
    assert tokenize("") == []


@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        ("The cat sat", "a cat sat on the mat", 2 / 3),  # P=1, R=1/2 after dropping articles
        ("cat cat cat", "cat", 0.5),  # counts matter: a set-based F1 would say 1.0
        ("Paris.", "paris", 1.0),
        ("我爱北京", "我爱上海", 0.5),  # CJK compared character by character
        ("", "", 1.0),
        ("", "something", 0.0),
        ("completely different", "nothing shared", 0.0),
    ],
)
def test_token_f1_known_answers(candidate: str, reference: str, expected: float) -> None:
    assert token_f1(candidate, reference) == pytest.approx(expected)


def _lcs_by_table(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def test_bit_parallel_lcs_agrees_with_the_dynamic_programming_table() -> None:
    rng = random.Random(7)
    for _ in range(400):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        assert lcs_length(a, b) == _lcs_by_table(a, b)


@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        ("the cat sat on mat", "the cat sat on the mat", 10 / 11),  # LCS 5: P=1, R=5/6
        ("the cat sat on the mat", "the cat sat on the mat", 1.0),
        ("mat the on sat cat the", "the cat sat on the mat", 0.5),  # LCS "the on the": P=R=3/6
        ("", "", 1.0),
        ("words", "", 0.0),
    ],
)
def test_rouge_l_known_answers(candidate: str, reference: str, expected: float) -> None:
    assert rouge_l(candidate, reference) == pytest.approx(expected)


def test_extract_numbers_reads_separators_signs_and_decimals() -> None:
    text = "1,000 and -3.5, a range 3-5, 2e3, .5, \u22127, x1 and v2.0"
    assert extract_numbers(text) == [1000.0, -3.5, 3.0, 5.0, 2000.0, 0.5, -7.0]


@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        ("y = 4 and x = 3", "x=3, y=4", 1.0),  # order does not matter
        ("It costs 1000 dollars", "1,000", 1.0),
        ("3.0000001", "3", 1.0),  # within the relative tolerance
        ("3.01", "3", 0.0),
        ("3 3", "3 3 3", 2 / 3),  # each candidate number matches once
        ("-5", "5", 0.0),
        ("no numbers here", "42", 0.0),
    ],
)
def test_number_accuracy_known_answers(candidate: str, reference: str, expected: float) -> None:
    assert number_accuracy(candidate, reference) == pytest.approx(expected)


def test_number_accuracy_without_reference_numbers_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="no number"):
        number_accuracy("42", "forty-two")
    reward = registry.get("number_accuracy")
    sample = make_sample("forty-two", "42", sample_id="words-only")
    assert not reward.applies_to(sample)
    result = reward.evaluate(sample)
    assert result.scores[0].score is None and "words-only" in result.scores[0].error


def test_number_accuracy_tolerance_is_configurable() -> None:
    loose = registry.get("number_accuracy", rel_tol=0.01)
    assert loose.evaluate(make_sample("100", "about 100.5")).values() == [1.0]
    assert registry.get("number_accuracy").evaluate(make_sample("100", "about 100.5")).values() == [0.0]
    with pytest.raises(ValueError, match="both be 0"):
        registry.get("number_accuracy", rel_tol=0, abs_tol=0)


@pytest.mark.parametrize("name", ["exact_accuracy", "token_f1", "rouge_l", "number_accuracy"])
def test_general_rewards_are_registered_and_score_each_response(name: str) -> None:
    spec = registry.spec(name)
    assert "general" in spec.tags and spec.kind == "pointwise" and spec.description
    reward = registry.get(name)
    sample = make_sample("The answer is 42", "the answer is 42", "I do not know 7")
    result = reward.evaluate(sample)
    assert result.ok and result.reward_name == name
    first, second = result.values()
    assert first == 1.0 and second < first


@pytest.mark.parametrize("name", ["exact_accuracy", "token_f1", "rouge_l", "number_accuracy"])
def test_general_rewards_need_a_reference(name: str) -> None:
    reward = registry.get(name)
    sample = make_sample(None, "anything 1", sample_id="no-reference")
    assert not reward.applies_to(sample)
    result = reward.evaluate(sample)
    assert result.scores[0].score is None and "no-reference" in result.scores[0].error


def test_long_inputs_stay_fast() -> None:
    import time

    long_text = "word " * 200_000  # 1 MB
    started = time.monotonic()
    assert rouge_l(long_text, "word other word") == pytest.approx(
        2 * (2 / 200_000) * (2 / 3) / (2 / 200_000 + 2 / 3)
    )
    assert token_f1(long_text, "word") > 0
    numbers = " ".join(str(k) for k in range(100_000))
    assert number_accuracy(numbers, numbers) == 1.0
    assert time.monotonic() - started < 5
