"""Style rules on the response text alone: length range, n-gram repetition, privacy leakage.

All three are penalties: 0 is clean, negative is worse. Bare functions: `length_penalty`,
`ngram_repetition_rate`, `ngram_repetition_penalty`, `find_privacy_leaks`, `privacy_leakage`.
Every regex here has bounded repetition, so 1 MB of adversarial text is scanned in linear time.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections import Counter
from collections.abc import Sequence
from typing import Literal, NamedTuple

from pydantic import Field, model_validator

from rm_rewards.core.kinds import PointwiseReward, response_score
from rm_rewards.core.registry import register
from rm_rewards.core.schema import ResponseScore, Sample
from rm_rewards.rules.general import tokenize

LengthUnit = Literal["chars", "words"]


# --- length -----------------------------------------------------------------------------------


def text_length(text: str, unit: LengthUnit = "chars") -> int:
    """Length in characters, or in words (each CJK character counts as a word)."""
    return len(text) if unit == "chars" else len(tokenize(text))


def length_penalty(
    text: str,
    min_length: int = 10,
    max_length: int = 1000,
    unit: LengthUnit = "chars",
    penalty_rate: float = 0.01,
    max_penalty: float | None = None,
) -> float:
    """0 inside [min_length, max_length]; outside, -penalty_rate per unit of distance (capped)."""
    length = text_length(text, unit)
    distance = max(min_length - length, length - max_length, 0)
    penalty = distance * penalty_rate
    if max_penalty is not None:
        penalty = min(penalty, max_penalty)
    return -penalty if penalty else 0.0  # never -0.0 in a score table


# --- repetition -------------------------------------------------------------------------------

_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def ngram_repetition_rate(text: str, n: int = 3) -> float:
    """1 - distinct/total n-grams of the tokens; 0 when the text has fewer than n tokens."""
    tokens = tokenize(text)
    total = len(tokens) - n + 1
    if total <= 0:
        return 0.0
    distinct = len(set(zip(*(tokens[k:] for k in range(n)))))
    return 1.0 - distinct / total


def repetition_penalty_from_rate(
    rate: float,
    threshold: float = 0.3,
    penalty_rate: float = 1.0,
    soft: bool = False,
    max_penalty: float = 1.0,
    min_scaling: float = 0.0,
) -> float:
    """Hard mode: -(rate - threshold)·penalty_rate above the threshold. Soft mode: the rate
    rescaled from [min_scaling, 1] to [0, 1], times -max_penalty."""
    if soft:
        scaled = max(0.0, (rate - min_scaling) / (1.0 - min_scaling))
        return -max_penalty * scaled if scaled else 0.0
    return -(rate - threshold) * penalty_rate if rate > threshold and penalty_rate else 0.0


def ngram_repetition_penalty(
    text: str, n: int = 3, threshold: float = 0.3, penalty_rate: float = 1.0
) -> float:
    """Hard-threshold repetition penalty of the whole text (see `repetition_penalty_from_rate`)."""
    return repetition_penalty_from_rate(ngram_repetition_rate(text, n), threshold, penalty_rate)


# --- privacy ----------------------------------------------------------------------------------


class Leak(NamedTuple):
    kind: str
    start: int
    end: int


_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])"
)
# 13-19 digits, optionally in groups split by single spaces or dashes; Luhn-checked afterwards.
_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_CN_ID_RE = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
)
# US SSN, written with dashes: area 001-899 but not 666, group 01-99, serial 0001-9999.
_SSN_RE = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
# Phones:
# - NANP (optionally +1 / 1): the area code starts with 2-9 (none starts with 0 or 1). Written
#   with separators or a parenthesised area code, 3-3-4 digits is a phone whatever the
#   exchange ("555-123-4567", the fictional form everyone writes, has exchange 123); a bare run
#   of ten digits also needs a valid exchange (2-9), since bare runs are as often ISBN-10s or
#   order numbers (a Unix timestamp starts with 1, so fails the area code). Not glued to a
#   decimal or a longer dotted/dashed number on either side ("0.2125551234" is a number).
# - International "+CC" numbers: E.164 digits, or groups of 1-6 digits with separators
#   (mandatory, so digits split only one way and the regex cannot backtrack through every
#   grouping), 7-15 digits in all (checked in `_accept`).
# - Chinese mobiles (1[3-9] + 9 digits).
_PHONE_RE = re.compile(
    r"(?<![\w+])(?<!\d[.,-])(?:\+?1[ .-]?)?"
    r"(?:(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .-]?[2-9]\d{2}[ .-]?|(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])\d{3}[ .-])"
    r"\d{4}(?!\w|[.,-]\d)"
    r"|(?<![\w+])\+\d{1,3}(?:[ .-]\d{1,6}){2,6}(?![\w.-]?\d)"
    r"|(?<![\w+])\+\d{8,15}(?!\w)"
    r"|(?<![\w+])(?:\+?86[ -]?)?1[3-9]\d{9}(?!\w)"
)
_IPV4_RE = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)"
)
_IPV6_CANDIDATE_RE = re.compile(r"(?<![\w:])[0-9A-Fa-f:]{2,39}(?![\w:])")

_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"
_CARD_PREFIXES = ("4", "34", "37", "36", "38", "30", "35", "5", "2", "6")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card(raw: str) -> bool:
    digits = raw.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits.startswith(_CARD_PREFIXES) and luhn_valid(digits)


def cn_id_valid(number: str) -> bool:
    """Checksum of an 18-character Chinese resident identity number (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(number[:17], _CN_ID_WEIGHTS))
    return _CN_ID_CHECK[total % 11] == number[17].upper()


def _public_ip(raw: str, ignore_private: bool) -> bool:
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return False
    if not ignore_private:
        return True
    return address.is_global


# Prefilters. Each detector below comes with clauses of patterns such that every match the
# detector can accept contains a match of at least one pattern of each clause; when a clause has
# no match in the text, the detector cannot find anything and its scan is skipped. The detectors'
# look-behinds make `re` try a match at every position, while these open with a literal or a
# character set that `re` skips to in C; ordinary prose and arithmetic (short numbers, "3+4",
# "2.5") have none of the long digit runs, dotted quads or "@" that leaks need, so most texts
# skip every detector after one or two cheap scans. Results are unchanged (tests compare them
# with unfiltered scans).
#
# Seven digits with at most one [ .-] between neighbours, or a dotted quad: in every ID (17
# digits), card (13+ digits, single spaces or dashes), SSN (ddd-dd-dddd), IPv4 address, and in
# every phone number except the "+CC" ones (NANP: exchange + line; Chinese mobile: 11 digits).
_LONG_NUMBER_HINT = re.compile(r"\d(?:[ .-]?\d){6}|\d\.\d{1,3}\.\d{1,3}\.\d")
_PLUS_PHONE_HINT = re.compile(r"\+(?:\d{1,3}[ .-]\d|\d{8})")  # "+CC" then a group, or E.164
_NANP_HINT = re.compile(r"\d{3}[ .-]?\d{4}")  # exchange + line; also inside a Chinese mobile
_LEAK_HINTS: dict[str, tuple[tuple[re.Pattern[str], ...], ...]] = {
    "email": ((re.compile("@"),),),
    "cn_resident_id": ((_LONG_NUMBER_HINT,), (re.compile(r"\d\d{16}"),)),
    "credit_card": ((_LONG_NUMBER_HINT,), (re.compile(r"\d(?:[ -]?\d){12}"),)),
    "us_ssn": ((_LONG_NUMBER_HINT,), (re.compile(r"\d{3}-\d{2}-\d{4}"),)),
    # `_accept` wants two colons; a candidate (at most 39 characters) has only hex digits between.
    "ipv6": ((re.compile(r":[0-9A-Fa-f]{0,37}:"),),),
    "ipv4": ((_LONG_NUMBER_HINT,), (re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d"),)),
    "phone": ((_LONG_NUMBER_HINT, _PLUS_PHONE_HINT), (_NANP_HINT, _PLUS_PHONE_HINT)),
}

# Detectors in priority order: a span claimed by an earlier one is not reported again by a
# later one (an 18-digit ID is not also a card number or a phone).
_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", _EMAIL_RE),
    ("cn_resident_id", _CN_ID_RE),
    ("credit_card", _CARD_RE),
    ("us_ssn", _SSN_RE),
    ("ipv6", _IPV6_CANDIDATE_RE),
    ("ipv4", _IPV4_RE),
    ("phone", _PHONE_RE),
)
_DIGIT_RE = re.compile(r"\d")
LEAK_KINDS: tuple[str, ...] = tuple(kind for kind, _ in _DETECTORS)


def _may_leak(kind: str, text: str, found: dict[re.Pattern[str], bool]) -> bool:
    """False when the prefilters prove that detector `kind` finds nothing in `text`.

    `found` remembers each prefilter's answer for this text, since several detectors share some.
    """
    for clause in _LEAK_HINTS[kind]:
        for hint in clause:
            if hint not in found:
                found[hint] = hint.search(text) is not None
            if found[hint]:
                break
        else:
            return False
    return True


def _accept(kind: str, raw: str, ignore_private_ips: bool) -> bool:
    if kind == "credit_card":
        return _is_card(raw)
    if kind == "cn_resident_id":
        return cn_id_valid(raw)
    if kind == "ipv6":
        return raw.count(":") >= 2 and _public_ip(raw, ignore_private_ips)
    if kind == "ipv4":
        return _public_ip(raw, ignore_private_ips)
    if kind == "phone" and raw.startswith("+"):
        return 7 <= len(_DIGIT_RE.findall(raw)) <= 15  # E.164 allows at most 15 digits
    return True


def find_privacy_leaks(
    text: str, ignore_private_ips: bool = True, kinds: Sequence[str] = LEAK_KINDS
) -> list[Leak]:
    """Personal data in the text, as (kind, start, end) spans sorted by position."""
    if _DIGIT_RE.search(text) is None and "@" not in text:
        return []  # every detector needs a digit or an "@" (hex-letter-only IPv6 is not worth it)
    starts: list[int] = []  # claimed spans, disjoint, kept sorted by start
    ends: list[int] = []
    leaks: list[Leak] = []
    found: dict[re.Pattern[str], bool] = {}
    for kind, pattern in _DETECTORS:
        if kind not in kinds or not _may_leak(kind, text, found):
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            k = bisect.bisect_right(starts, start)
            overlaps = (k > 0 and ends[k - 1] > start) or (k < len(starts) and starts[k] < end)
            if overlaps or not _accept(kind, match.group(), ignore_private_ips):
                continue
            starts.insert(k, start)
            ends.insert(k, end)
            leaks.append(Leak(kind, start, end))
    return sorted(leaks, key=lambda leak: leak.start)


def privacy_leakage(text: str, penalty_per_leak: float = -0.5, ignore_private_ips: bool = True) -> float:
    """penalty_per_leak times the number of leaks found (0 when clean)."""
    leaks = len(find_privacy_leaks(text, ignore_private_ips))
    return penalty_per_leak * leaks if leaks else 0.0


def describe_leaks(leaks: Sequence[Leak]) -> str:
    """Kinds and counts only: a reason must never repeat the leaked values."""
    if not leaks:
        return "no personal data found"
    counts = Counter(leak.kind for leak in leaks)
    return "personal data found: " + ", ".join(f"{kind} x{count}" for kind, count in sorted(counts.items()))


# --- rewards ----------------------------------------------------------------------------------


@register(
    "length_penalty",
    tags=("style",),
    description="Penalty per character or word outside [min_length, max_length]; 0 inside.",
)
class LengthPenalty(PointwiseReward):
    min_length: int = Field(default=10, ge=0)
    max_length: int = Field(default=1000, ge=0)
    unit: LengthUnit = "chars"
    penalty_rate: float = Field(default=0.01, ge=0)
    max_penalty: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LengthPenalty:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} > max_length {self.max_length}")
        return self

    def score_response(self, sample: Sample, index: int) -> float:
        return length_penalty(
            sample.responses[index].text,
            self.min_length,
            self.max_length,
            self.unit,
            self.penalty_rate,
            self.max_penalty,
        )


@register(
    "ngram_repetition_penalty",
    tags=("style",),
    description="Penalty for repeated n-grams (CJK-aware tokens), hard threshold or soft scaling.",
)
class NgramRepetitionPenalty(PointwiseReward):
    n: int = Field(default=3, ge=1)
    threshold: float = Field(default=0.3, ge=0, le=1)
    penalty_rate: float = Field(default=1.0, ge=0)
    soft: bool = False
    max_penalty: float = Field(default=1.0, ge=0)
    min_scaling: float = Field(default=0.0, ge=0, lt=1)
    scope: Literal["full", "think"] = "full"

    def score_response(self, sample: Sample, index: int) -> float | ResponseScore:
        text = sample.responses[index].text
        if self.scope == "think":
            text = " ".join(_THINK_RE.findall(text))
        rate = ngram_repetition_rate(text, self.n)
        score = repetition_penalty_from_rate(
            rate, self.threshold, self.penalty_rate, self.soft, self.max_penalty, self.min_scaling
        )
        return response_score(score, f"{self.n}-gram repetition rate {rate:.3f}")


@register(
    "privacy_leakage",
    tags=("style",),
    description="Penalty per leak of emails, phones, Luhn-valid cards, public IPs, SSNs, checksummed Chinese IDs.",
)
class PrivacyLeakage(PointwiseReward):
    penalty_per_leak: float = Field(default=-0.5, le=0)
    ignore_private_ips: bool = True

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        leaks = find_privacy_leaks(sample.responses[index].text, self.ignore_private_ips)
        score = self.penalty_per_leak * len(leaks) if leaks else 0.0
        return response_score(score, describe_leaks(leaks))
