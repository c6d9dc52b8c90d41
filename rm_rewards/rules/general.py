"""General text metrics against a reference answer: exact match, token F1, ROUGE-L, numbers.

The bare scoring functions (`exact_match`, `token_f1`, `rouge_l`, `number_accuracy`) are plain
`(candidate, reference) -> float` code; the reward classes below only fetch the texts and call
them, so the framework's overhead can be measured against the bare functions.

Tokenisation is shared with the style rules: Chinese and Japanese have no spaces between words,
so each CJK character is its own token; everything else splits into runs of word characters.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter

from pydantic import Field, model_validator

from rm_rewards.kinds import PointwiseReward
from rm_rewards.registry import register
from rm_rewards.schema import Sample

# Han ideographs (with extensions and compatibility forms) and kana: written without spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
# Apostrophes inside words are dropped rather than split on, as SQuAD does ("don't" -> "dont").
_APOSTROPHE_RE = re.compile(r"(?<=\w)['\u2019](?=\w)")
_ARTICLES = frozenset({"a", "an", "the"})


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens: one per CJK character, else runs of word characters; punctuation dropped."""
    return _TOKEN_RE.findall(_APOSTROPHE_RE.sub("", text.lower()))


def normalize_answer(text: str) -> str:
    return " ".join(text.strip().lower().split())


def exact_match(candidate: str, reference: str) -> float:
    return 1.0 if normalize_answer(candidate) == normalize_answer(reference) else 0.0


def _f_measure(overlap: float, n_candidate: int, n_reference: int) -> float:
    if n_candidate == 0 and n_reference == 0:
        return 1.0  # two empty answers agree
    if overlap == 0:
        return 0.0
    precision = overlap / n_candidate
    recall = overlap / n_reference
    return 2 * precision * recall / (precision + recall)


def token_f1(candidate: str, reference: str) -> float:
    """SQuAD-style F1 of the token bags (counts matter, articles a/an/the ignored)."""
    cand = [t for t in tokenize(candidate) if t not in _ARTICLES]
    ref = [t for t in tokenize(reference) if t not in _ARTICLES]
    if not cand or not ref:
        return _f_measure(0, len(cand), len(ref))
    overlap = sum((Counter(cand) & Counter(ref)).values())
    return _f_measure(overlap, len(cand), len(ref))


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö): O(len(a)·len(b)/word).

    Positions of the longer sequence are bits of one Python int, so the Python-level loop runs
    once per token of the shorter one; 1 MB of text against a short reference stays fast.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[str, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    all_ones = (1 << len(a)) - 1
    row = all_ones
    for token in b:
        matches = row & masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & all_ones
    return len(a) - row.bit_count()


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: precision and recall of the longest common token subsequence."""
    cand = tokenize(candidate)
    ref = tokenize(reference)
    return _f_measure(lcs_length(cand, ref), len(cand), len(ref))


# A number: optional sign (not when glued to a preceding word or digit, so "3-5" is 3 and 5),
# digits with optional thousands separators, optional decimals and exponent.
_NUMBER_RE = re.compile(
    r"(?<![\w.])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\d])"
    r"|(?<![\w.])[-+\u2212]?\.\d+(?![\d])"
)


def extract_numbers(text: str) -> list[float]:
    """Every number written in the text, in order ("1,000" is one thousand; digits glued to letters, as in "v1", are not numbers)."""
    out = []
    for match in _NUMBER_RE.finditer(text):
        token = match.group().replace(",", "").replace("\u2212", "-")
        try:
            out.append(float(token))
        except (ValueError, OverflowError):  # e.g. digits float() cannot read
            continue
    return [n for n in out if math.isfinite(n)]


def _close(a: float, b: float, rel_tol: float, abs_tol: float) -> bool:
    return abs(a - b) <= max(abs_tol, rel_tol * max(abs(a), abs(b)))


def number_accuracy(candidate: str, reference: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> float:
    """Fraction of the reference's numbers that the candidate also states (each used once).

    Order does not matter: "x=3, y=4" matches "y = 4 and x = 3". Raises ValueError when the
    reference has no number at all, since then there is nothing to be accurate about.
    """
    wanted = sorted(extract_numbers(reference))
    if not wanted:
        raise ValueError("reference contains no number")
    values = sorted(extract_numbers(candidate))
    # next_free[i]: the first unused value at or after i (union-find with path halving), so a
    # long candidate full of numbers is matched in O(n log n), not O(n·m).
    next_free = list(range(len(values) + 1))

    def free_from(i: int) -> int:
        while next_free[i] != i:
            next_free[i] = next_free[next_free[i]]
            i = next_free[i]
        return i

    matched = 0
    for target in wanted:  # ascending targets + leftmost free value: a maximum matching
        width = max(abs_tol, rel_tol * abs(target)) * (1 + 2 * rel_tol)
        k = free_from(bisect.bisect_left(values, target - width))
        if k < len(values) and _close(values[k], target, rel_tol, abs_tol):
            matched += 1
            next_free[k] = k + 1
    return matched / len(wanted)


# --- rewards ----------------------------------------------------------------------------------


class _ReferenceReward(PointwiseReward):
    """A rule that compares each response with `sample.reference`."""

    def applies_to(self, sample: Sample) -> bool:
        return sample.reference is not None

    def reference_of(self, sample: Sample) -> str:
        if sample.reference is None:
            raise ValueError(f"sample {sample.id} has no reference answer")
        return sample.reference


@register(
    "exact_accuracy",
    tags=("general",),
    description="1 if the response equals the reference after whitespace/case normalisation, else 0.",
)
class ExactAccuracy(_ReferenceReward):
    def score_response(self, sample: Sample, index: int) -> float:
        return exact_match(sample.responses[index].text, self.reference_of(sample))


@register(
    "token_f1",
    tags=("general",),
    description="SQuAD-style token F1 of the response against the reference (CJK by character).",
)
class TokenF1(_ReferenceReward):
    def score_response(self, sample: Sample, index: int) -> float:
        return token_f1(sample.responses[index].text, self.reference_of(sample))


@register(
    "rouge_l",
    tags=("general",),
    description="ROUGE-L F-measure (longest common token subsequence) against the reference.",
)
class RougeL(_ReferenceReward):
    def score_response(self, sample: Sample, index: int) -> float:
        return rouge_l(sample.responses[index].text, self.reference_of(sample))


@register(
    "number_accuracy",
    tags=("general",),
    description="Fraction of the reference's numbers found in the response, within a tolerance.",
)
class NumberAccuracy(_ReferenceReward):
    rel_tol: float = Field(default=1e-6, ge=0)
    abs_tol: float = Field(default=1e-9, ge=0)

    @model_validator(mode="after")
    def _some_tolerance(self) -> NumberAccuracy:
        if self.rel_tol == 0 and self.abs_tol == 0:
            # float noise ("0.1+0.2") would then fail every comparison; say so up front.
            raise ValueError("rel_tol and abs_tol cannot both be 0")
        return self

    def applies_to(self, sample: Sample) -> bool:
        return sample.reference is not None and _NUMBER_RE.search(sample.reference) is not None

    def score_response(self, sample: Sample, index: int) -> float:
        reference = self.reference_of(sample)
        try:
            return number_accuracy(sample.responses[index].text, reference, self.rel_tol, self.abs_tol)
        except ValueError as exc:  # name the sample: "which reference has no number?"
            raise ValueError(f"sample {sample.id}: {exc}") from None
