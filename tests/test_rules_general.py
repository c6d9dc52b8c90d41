"""General reference metrics: exact match, token F1, ROUGE-L, number accuracy (known answers)."""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.rules import general
from rm_rewards.rules.general import (
    extract_numbers,
    lcs_length,
    number_accuracy,
    rouge_l,
    token_f1,
    tokenize,
)


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


# Hand-computed with SQuAD v1.1's evaluate script: normalize_answer = lower-case, delete
# string.punctuation, replace \b(a|an|the)\b by a space, split on whitespace; then
# F1 = 2PR/(P+R) over the common tokens, each counted min(in candidate, in reference) times.
@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        # [cat, sat] vs [cat, sat, on, mat]: 2 common, P = 2/2, R = 2/4, F1 = 2/3.
        ("The cat sat.", "a cat sat on the mat", 2 / 3),
        # [cat, cat, cat] vs [cat]: 1 common, P = 1/3, R = 1, F1 = (2/3)/(4/3) = 1/2 (a set would say 1).
        ("cat cat cat", "cat", 0.5),
        # "paris." -> "paris": identical.
        ("Paris.", "paris", 1.0),
        # Punctuation is deleted, not split on: "$1,000.50" -> "100050" == "1000.50" -> "100050".
        ("$1,000.50", "1000.50", 1.0),
        # "well-known" -> one token "wellknown", which is neither "well" nor "known".
        ("well-known", "well known", 0.0),
        # GSM8K-style: [total, is, 1200] vs [1200]: 1 common, P = 1/3, R = 1, F1 = 1/2.
        ("The total is $1,200.", "1,200", 0.5),
        # Apostrophes are punctuation too: "don't" -> "dont".
        ("Don't stop!", "dont stop", 1.0),
        # Articles only as whole words: "theater" stays; [theater] vs [theater].
        ("the theater", "a theater", 1.0),
        # Only ASCII punctuation goes: the curly quotes stay, so "“paris”" != "paris".
        ("\u201cParis\u201d", "Paris", 0.0),
        # No spaces in Chinese: each side is one token, and they differ.
        ("我爱北京", "我爱上海", 0.0),
        # Both empty after normalisation: agreement (SQuAD v2.0's rule).
        ("", "", 1.0),
        ("The.", "an", 1.0),
        ("", "something", 0.0),
        ("completely different", "nothing shared", 0.0),
    ],
)
def test_token_f1_matches_hand_computed_squad_values(candidate: str, reference: str, expected: float) -> None:
    assert token_f1(candidate, reference) == pytest.approx(expected)
    assert registry.get("token_f1").evaluate(make_sample(reference, candidate)).scores[0].score == pytest.approx(
        expected
    )


# normalization="word_runs": tokenize()'s word runs (CJK by character), articles dropped.
@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        # [我, 爱, 北, 京] vs [我, 爱, 上, 海]: 2 common, P = R = 1/2, F1 = 1/2.
        ("我爱北京", "我爱上海", 0.5),
        # [total, is, 1, 200] vs [1, 200]: 2 common, P = 2/4, R = 1, F1 = 2/3 (SQuAD: 1/2).
        ("The total is $1,200.", "1,200", 2 / 3),
        # [well, known] vs [well, known].
        ("well-known", "well known", 1.0),
        ("\u201cParis\u201d", "Paris", 1.0),
    ],
)
def test_token_f1_word_runs_option(candidate: str, reference: str, expected: float) -> None:
    assert token_f1(candidate, reference, "word_runs") == pytest.approx(expected)
    reward = registry.get("token_f1", normalization="word_runs")
    assert reward.evaluate(make_sample(reference, candidate)).scores[0].score == pytest.approx(expected)


def test_token_f1_rejects_an_unknown_normalization() -> None:
    with pytest.raises(ValueError, match="normalization"):
        token_f1("a", "b", "lower")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="normalization"):
        registry.get("token_f1", normalization="lower")


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


# --- the fast paths compute what the plain definitions compute -------------------------------
# The plain definitions, as the rules were first written: the fast paths in general.py (ASCII
# tokenizer, number regex that opens with a character set, per-reference caches) must agree.

_PLAIN_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_PLAIN_TOKEN_RE = re.compile(rf"[{_PLAIN_CJK}]|[^\W{_PLAIN_CJK}]+")
_PLAIN_APOSTROPHE_RE = re.compile(r"(?<=\w)['\u2019](?=\w)")
_PLAIN_NUMBER_RE = re.compile(
    r"(?<![\w.])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\d])"
    r"|(?<![\w.])[-+\u2212]?\.\d+(?![\d])"
)


def plain_tokenize(text: str) -> list[str]:
    return _PLAIN_TOKEN_RE.findall(_PLAIN_APOSTROPHE_RE.sub("", text.lower()))


def plain_extract_numbers(text: str) -> list[float]:
    out = []
    for match in _PLAIN_NUMBER_RE.finditer(text):
        try:
            out.append(float(match.group().replace(",", "").replace("\u2212", "-")))
        except (ValueError, OverflowError):
            continue
    return [n for n in out if math.isfinite(n)]


def plain_f_measure(overlap: float, n_candidate: int, n_reference: int) -> float:
    if n_candidate == 0 and n_reference == 0:
        return 1.0
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_candidate, overlap / n_reference
    return 2 * precision * recall / (precision + recall)


def squad_v11_normalize_answer(s: str) -> str:
    """SQuAD v1.1's evaluate-v1.1.py `normalize_answer`, as published."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text: str) -> str:
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def plain_token_f1(candidate: str, reference: str) -> float:
    """evaluate-v1.1.py's f1_score, except that two empty answers agree (SQuAD v2.0's rule)."""
    cand = squad_v11_normalize_answer(candidate).split()
    ref = squad_v11_normalize_answer(reference).split()
    return plain_f_measure(sum((Counter(cand) & Counter(ref)).values()), len(cand), len(ref))


def plain_word_runs_f1(candidate: str, reference: str) -> float:
    cand = [t for t in plain_tokenize(candidate) if t not in {"a", "an", "the"}]
    ref = [t for t in plain_tokenize(reference) if t not in {"a", "an", "the"}]
    return plain_f_measure(sum((Counter(cand) & Counter(ref)).values()), len(cand), len(ref))


def plain_rouge_l(candidate: str, reference: str) -> float:
    cand, ref = plain_tokenize(candidate), plain_tokenize(reference)
    return plain_f_measure(_lcs_by_table(cand, ref), len(cand), len(ref))


def plain_number_accuracy(
    candidate: str, reference: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9
) -> float:
    """Maximum bipartite matching by augmenting paths: slow, obviously right."""
    wanted, values = plain_extract_numbers(reference), plain_extract_numbers(candidate)
    owner: dict[int, int] = {}  # value index -> wanted index

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= max(abs_tol, rel_tol * max(abs(a), abs(b)))

    def augment(w: int, seen: set[int]) -> bool:
        for v, value in enumerate(values):
            if v not in seen and close(value, wanted[w]):
                seen.add(v)
                if v not in owner or augment(owner[v], seen):
                    owner[v] = w
                    return True
        return False

    return sum(augment(w, set()) for w in range(len(wanted))) / len(wanted)


# Characters that exercise every branch: ASCII word and non-word characters (including the ones
# str.split() treats as whitespace), apostrophes, letters whose lower case differs or grows,
# CJK, Arabic digits, a lone surrogate, an emoji.
_TRICKY = "aZ_09 \t\n\x0b\x0c\x1c\x1f'.,-+\u2019\u2212\u2013\u00d7\u00be\u00c9\u0130\u00df\u6211\u6771\u3042\u0663\ud800\U0001f600"
ascii_texts = st.text(alphabet=st.characters(max_codepoint=127), max_size=80)
tricky_texts = st.text(alphabet=st.sampled_from(_TRICKY), max_size=40)
any_texts = ascii_texts | tricky_texts | st.text(max_size=40)


@settings(max_examples=400, deadline=None)
@given(any_texts)
@example("The an a-the the_a 'the' \u201cthe\u201d th\u00e9 \x00the A.N. 3.5 1,000 well-known")
def test_squad_normalize_equals_the_official_script(text: str) -> None:
    assert general.squad_normalize(text) == squad_v11_normalize_answer(text).split()


@settings(max_examples=400, deadline=None)
@given(any_texts)
@example("Don't won't 'quoted' rock'n'roll O'NEIL x''y _a_ A1b2")
@example("SEP\x1cA\x1dB\x1eC\x1fD\x0bE\x0cF")
@example("don\u2019t \u0130stanbul \u00c9t\u00c9 STRASSE stra\u00dfe")
def test_tokenize_equals_the_plain_regex_tokenizer(text: str) -> None:
    assert tokenize(text) == plain_tokenize(text)


# Number-like text: digit runs of any length joined by the characters numbers are made of.
number_texts = st.lists(
    st.text(alphabet="0123456789", min_size=1, max_size=5)
    | st.sampled_from([",", ".", "-", "+", "e", "E", "\u2212", "\u0663", "x", " "]),
    max_size=14,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(
    number_texts
    | st.text(alphabet=st.sampled_from("0123456789,.-+eE\u2212\u0663x _\n"), max_size=30)
    | any_texts
)
@example("1,000 and -3.5, a range 3-5, 2e3, .5, \u22127, x1 and v2.0 +.5 -,5 1,00 1.2.3 .-1 5e")
@example("1234,567 12,345,67 1,2345 -1234,567.5 +12,345e-3 123,456 -999,999,999.5 +.25e3")
def test_number_regex_matches_exactly_what_the_plain_pattern_matches(text: str) -> None:
    plain = [m.span() for m in _PLAIN_NUMBER_RE.finditer(text)]
    assert [m.span() for m in general._NUMBER_RE.finditer(text)] == plain
    assert extract_numbers(text) == plain_extract_numbers(text)


short_words = st.lists(
    st.sampled_from(["a", "the", "cat", "Cat", "sat", "on", "mat", "x1", "3", "4.0", "\u6211"]), max_size=12
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(short_words, min_size=1, max_size=4), st.lists(short_words, min_size=1, max_size=4))
def test_cached_reference_scores_equal_fresh_ones(references: list[str], candidates: list[str]) -> None:
    # Several responses per reference, references revisited: every cache hit must give the
    # score that a fresh computation gives, whichever side is longer.
    for reference in references + references[::-1]:
        for candidate in candidates:
            assert token_f1(candidate, reference) == pytest.approx(plain_token_f1(candidate, reference))
            assert token_f1(candidate, reference, "word_runs") == pytest.approx(
                plain_word_runs_f1(candidate, reference)
            )
            assert rouge_l(candidate, reference) == pytest.approx(plain_rouge_l(candidate, reference))
            if plain_extract_numbers(reference):
                assert number_accuracy(candidate, reference) == plain_number_accuracy(candidate, reference)


def test_number_matching_equals_a_maximum_matching_on_random_numbers() -> None:
    rng = random.Random(11)
    for _ in range(300):
        reference = " ".join(
            str(rng.choice([1, 2, 3, 3.0000001, 100, 100.5, -2])) for _ in range(rng.randint(1, 8))
        )
        candidate = " ".join(
            str(rng.choice([1, 2, 3, 3.000001, 100, 100.4, 2])) for _ in range(rng.randint(0, 8))
        )
        for rel_tol in (1e-6, 0.01):
            expected = plain_number_accuracy(candidate, reference, rel_tol)
            assert number_accuracy(candidate, reference, rel_tol) == expected


def test_references_too_long_to_cache_score_the_same() -> None:
    reference = "The cat sat on the mat, paying 12 and 7. " * 3_000  # > 100,000 characters
    assert len(reference) > general._CACHED_REFERENCE_MAX_CHARS
    candidate = "the cat paid 12 dollars " * 50
    for _ in range(2):
        assert token_f1(candidate, reference) == pytest.approx(plain_token_f1(candidate, reference))
        cand, ref = plain_tokenize(candidate), plain_tokenize(reference)
        assert rouge_l(candidate, reference) == pytest.approx(
            plain_f_measure(lcs_length(cand, ref), len(cand), len(ref))
        )
        # The candidate's fifty 12s, of the reference's 6,000 numbers.
        assert number_accuracy(candidate, reference) == 50 / 6_000
