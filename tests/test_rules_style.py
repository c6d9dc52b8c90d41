"""Style rules: length penalty, n-gram repetition, privacy leakage (known answers)."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.rules import style
from rm_rewards.rules.style import (
    cn_id_valid,
    find_privacy_leaks,
    length_penalty,
    luhn_valid,
    ngram_repetition_penalty,
    ngram_repetition_rate,
    privacy_leakage,
)


def make_sample(*responses: str) -> Sample:
    return Sample(
        id="s1",
        source="test",
        input=[ChatMessage(role="user", content="q")],
        responses=[Response(message=ChatMessage(role="assistant", content=r)) for r in responses],
    )


def kinds(text: str, **options) -> list[str]:
    return [leak.kind for leak in find_privacy_leaks(text, **options)]


# --- length -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("abc", {}, -0.07),  # 7 characters short of 10
        ("x" * 500, {}, 0.0),
        ("x" * 1005, {}, -0.05),
        ("one two three", {"unit": "words", "min_length": 5}, -0.02),
        ("我爱北京", {"unit": "words", "min_length": 4, "max_length": 4}, 0.0),  # 4 CJK words
        ("x" * 100_000, {"max_penalty": 1.0}, -1.0),
    ],
)
def test_length_penalty_known_answers(text: str, options: dict, expected: float) -> None:
    assert length_penalty(text, **options) == pytest.approx(expected)
    assert registry.get("length_penalty", **options).evaluate(make_sample(text)).values() == [
        pytest.approx(expected)
    ]


def test_length_penalty_rejects_an_empty_range() -> None:
    with pytest.raises(ValueError, match="min_length 10 > max_length 5"):
        registry.get("length_penalty", min_length=10, max_length=5)


# --- repetition -------------------------------------------------------------------------------


def test_ngram_repetition_rate_known_answers() -> None:
    assert ngram_repetition_rate("a b c a b c a b c", n=3) == pytest.approx(1 - 3 / 7)
    assert ngram_repetition_rate("every word here is new", n=2) == 0.0
    assert ngram_repetition_rate("too short", n=3) == 0.0
    # CJK: a whitespace tokenizer would see one token; by character it is 我爱 爱我 x5 bigrams
    assert ngram_repetition_rate("我爱我爱我爱", n=2) == pytest.approx(1 - 2 / 5)


def test_ngram_repetition_penalty_hard_and_soft() -> None:
    text = "a b c a b c a b c"
    rate = 1 - 3 / 7
    assert ngram_repetition_penalty(text, n=3, threshold=0.3) == pytest.approx(-(rate - 0.3))
    assert ngram_repetition_penalty("all different words in this one", n=3) == 0.0
    soft = registry.get("ngram_repetition_penalty", soft=True, max_penalty=2.0, min_scaling=0.5)
    assert soft.evaluate(make_sample(text)).values() == [pytest.approx(-2.0 * (rate - 0.5) / 0.5)]
    result = registry.get("ngram_repetition_penalty").evaluate(make_sample(text))
    assert "3-gram repetition rate 0.571" in result.scores[0].reason


def test_ngram_repetition_scope_think_looks_only_inside_the_reasoning() -> None:
    text = "<think>a b c a b c a b c</think><answer>all different words here</answer>"
    think_only = registry.get("ngram_repetition_penalty", scope="think", threshold=0.0)
    assert think_only.evaluate(make_sample(text)).values() == [pytest.approx(-(1 - 3 / 7))]
    no_think = think_only.evaluate(make_sample("a b c a b c a b c")).values()
    assert no_think == [0.0]


# --- privacy ----------------------------------------------------------------------------------


def _luhn_check_digit(body: str) -> str:
    return next(d for d in "0123456789" if luhn_valid(body + d))


def test_luhn_and_chinese_id_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert luhn_valid("378282246310005")
    assert cn_id_valid("11010519491231002X") and not cn_id_valid("110105194912310021")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at john.doe+tag@mail.example.com today", ["email"]),
        ("call +1 (415) 555-2671 now", ["phone"]),
        ("call 415-555-2671 now", ["phone"]),
        ("London: +44 20 7946 0958", ["phone"]),
        ("手机 13812345678 联系", ["phone"]),
        ("card 4111 1111 1111 1111 exp 12/29", ["credit_card"]),
        ("amex 378282246310005", ["credit_card"]),
        ("card 4111 1111 1111 1112", []),  # fails the Luhn check
        ("SSN 123-45-6789", ["us_ssn"]),
        ("SSN 000-12-3456 or 666-12-3456", []),  # never issued
        ("身份证 11010519491231002X", ["cn_resident_id"]),
        ("身份证 110105194912310021", []),  # wrong check digit, and not a card or phone either
        ("server at 8.8.8.8.", ["ipv4"]),
        ("router 192.168.1.1 and loopback 127.0.0.1", []),  # private addresses are not leaks
        ("999.1.1.1 and version 1.2.3.4.5", []),
        ("dns 2001:4860:4860::8888", ["ipv6"]),
        ("loopback ::1 at 12:30:45", []),
        ("nothing personal in 2024, page 3, 42 apples", []),
    ],
)
def test_privacy_detectors_known_answers(text: str, expected: list[str]) -> None:
    assert kinds(text) == expected


# Phone formats people write, each of which must be flagged as one phone (and nothing else).
@pytest.mark.parametrize(
    "phone",
    [
        "555-123-4567",  # the seed flags this; exchange 123 is fictional but the shape is a phone
        "(555) 123-4567",
        "(555)123-4567",
        "555.123.4567",
        "555 123 4567",
        "1-800-555-0199",
        "+1 555 123 4567",
        "+1-555-123-4567",
        "+1 (555) 123-4567",
        "+15551234567",  # E.164
        "5552345678",  # bare ten digits with a valid NANP area code and exchange
        "+44 20 7946 0958",
        "+33 1 23 45 67 89",
        "+49 30 123456",
        "+91 98765 43210",
        "+86 138 1234 5678",
        "13812345678",
    ],
)
def test_common_phone_formats_are_flagged(phone: str) -> None:
    text = f"Call me on {phone}, thanks."
    leaks = find_privacy_leaks(text)
    assert [leak.kind for leak in leaks] == ["phone"]
    assert text[leaks[0].start : leaks[0].end] == phone


# Digits that are not phones: none may be flagged as one (an IP is an IP, not a phone).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 2024 and 1999", []),  # years
        ("due 2024-01-15, or 15.01.2024, or 01/15/2024", []),  # dates
        ("at 2024-01-15T12:30:45Z and 12:30:45.123", []),  # timestamps
        ("epoch 1700000000 or 1700000000123 ms", []),  # Unix time starts with 1: no area code
        ("version v1.2.3, build 10.0.19041.1", []),  # version strings
        ("costs $1,234,567.89 or 1,234,567 EUR", []),  # prices
        ("ISBN 0-306-40615-2, ISBN 978-3-16-148410-0", []),  # ISBNs
        ("ISBN 3161484100, order 98765432", []),  # bare ISBN-10 (exchange 148) and an order number
        ("bare 5551234567", []),  # bare ten digits need a valid exchange (2-9); 123 is not
        ("pi is 3.14159265358979, x = 0.2125551234", []),  # decimals
        ("a 3-4-5 triangle, 200-300-400 steps", []),  # math
        ("page 3, 42 apples, local 555-1234", []),  # short numbers
        ("+1 00 00 and +44 20 79", []),  # "+CC" groups with too few digits
        ("8.8.8.8", ["ipv4"]),
        ("203.0.113.9 and 192.168.1.1", []),  # documentation and private ranges: not leaks, not phones
        ("555-123-4567.89", []),  # glued to a decimal part: a number
    ],
)
def test_phone_lookalikes_are_not_flagged(text: str, expected: list[str]) -> None:
    assert kinds(text) == expected


def test_random_sixteen_digit_strings_that_fail_luhn_are_not_cards() -> None:
    rng = random.Random(3)
    for _ in range(300):
        body = rng.choice("456") + "".join(rng.choice("0123456789") for _ in range(14))
        wrong = str((int(_luhn_check_digit(body)) + rng.randint(1, 9)) % 10)
        assert kinds(f"order number {body}{wrong} shipped") == []


def test_private_ips_count_when_asked() -> None:
    assert kinds("router 192.168.1.1", ignore_private_ips=False) == ["ipv4"]


def test_privacy_score_is_penalty_per_leak_and_the_reason_never_repeats_values() -> None:
    text = "Write to jane@example.org or jane2@example.org, card 5500 0000 0000 0004, ip 8.8.4.4"
    assert privacy_leakage(text) == pytest.approx(-2.0)
    result = registry.get("privacy_leakage", penalty_per_leak=-1.0).evaluate(make_sample(text, "clean text"))
    assert result.values() == [-4.0, 0.0]
    reason = result.scores[0].reason
    assert reason == "personal data found: credit_card x1, email x2, ipv4 x1"
    for value in ("jane", "example.org", "5500", "0004", "8.8.4.4"):
        assert value not in reason
    assert result.scores[1].reason == "no personal data found"


def test_privacy_penalty_must_not_be_positive() -> None:
    with pytest.raises(ValueError, match="penalty_per_leak"):
        registry.get("privacy_leakage", penalty_per_leak=0.5)


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,
        "7" * 1_000_000,
        "1." * 500_000,
        "a@" * 500_000,
        "1:" * 500_000,
        "+1234567890123456789012345 " * 40_000,
        "ab.cd@ef. 1-2-3 4111 " * 50_000,
        "x@example.com " * 70_000,
    ],
)
def test_privacy_scan_of_adversarial_megabyte_is_linear(text: str) -> None:
    started = time.monotonic()
    find_privacy_leaks(text)
    assert time.monotonic() - started < 3


# Pieces of text near and at every kind of leak, glued at random: the prefilters must never skip
# a detector that would have found something.
_LEAK_PIECES = [
    "jane.doe+x@mail.example.org",
    "a@b",
    "@",
    "(415) 555-2671",
    "415.555.2671",
    "555-123-4567",
    "(555)123-4567",
    "+33 1 23 45 67 89",
    "+1 415 555 2671",
    "+44 20 7946 0958",
    "+861381234567",
    "+8613812345678",
    "13812345678",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "378282246310005",
    "5500000000000004",
    "4222222222222",
    "123-45-6789",
    "11010519491231002X",
    "110105194912310021",
    "8.8.8.8",
    "203.0.113.9",
    "192.168.1.1",
    "1.2.3.4.5",
    "2001:4860:4860::8888",
    "::1",
    "fe80::1",
    "12:30:45",
    "2001:0db8:85a3:1234:5678:8a2e:0370:7334",
    "+11111111",
    "+1 00 00",
    "+44 20 79",
    "3+4=7",
    "2.5",
    "1,200",
    "\u0664\u0661\u0661\u0661",
    "\u0665\u0665\u0665",
]
leak_texts = st.lists(
    st.sampled_from(_LEAK_PIECES)
    | st.text(alphabet="0123456789", min_size=1, max_size=8)
    | st.text(alphabet=" .-+()@:xXaAfF_\n\u0663", min_size=1, max_size=3),
    max_size=12,
).map("".join)


def _unfiltered_leaks(text: str, **options) -> list:
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(style, "_may_leak", lambda kind, text, found: True)
        return find_privacy_leaks(text, **options)


@settings(max_examples=500, deadline=None)
@given(leak_texts | st.text(max_size=40))
@example(
    "call 415-555-2671, card 4111 1111 1111 1111, id 11010519491231002X, ip 8.8.8.8, dns 2001:4860::8888"
)
@example("+44 20 7946 0958 and +8613812345678 and 123-45-6789 and jane@example.org")
# Each of these leaks passes exactly one alternative of some prefilter clause.
@example("415.555.2671")
@example("+11111111")
@example("+1 00 00")
@example("+1.00.00")
@example("4222222222222")
@example("2607:f8b0:4004:0800:1234:5678:9abc:def0")
def test_prefiltered_privacy_scan_finds_what_the_full_scan_finds(text: str) -> None:
    for options in ({}, {"ignore_private_ips": False}):
        assert find_privacy_leaks(text, **options) == _unfiltered_leaks(text, **options)


def test_prefilters_skip_the_detectors_on_arithmetic_prose() -> None:
    text = "She buys 3+4 = 7 apples at $2.50 each in 2024, then 1,200 more: 3 - 1 = 2."
    found: dict = {}
    assert not any(style._may_leak(kind, text, found) for kind in style.LEAK_KINDS)


@pytest.mark.parametrize("name", ["length_penalty", "ngram_repetition_penalty", "privacy_leakage"])
def test_style_rewards_are_registered(name: str) -> None:
    spec = registry.spec(name)
    assert "style" in spec.tags and spec.kind == "pointwise" and not spec.is_llm and spec.description
