"""General text metrics against a reference answer: exact match, token F1, ROUGE-L, numbers.

The bare scoring functions (`exact_match`, `token_f1`, `rouge_l`, `number_accuracy`) are plain
`(candidate, reference) -> float` code; the reward classes below only fetch the texts and call
them, so the framework's overhead can be measured against the bare functions.

Tokenisation (`tokenize`) is shared with the style rules and ROUGE-L: Chinese and Japanese have
no spaces between words, so each CJK character is its own token; everything else splits into
runs of word characters. Token F1 normalises as SQuAD's official evaluation script does
(`squad_normalize`), unless asked for those word runs instead.

Speed (`bench/rule_rewards.py`): ASCII text, the common case, is tokenised by one `str.translate`
and `split()` instead of the regex (same tokens, a quarter of the time), and whatever a rule
derives from the reference alone (its tokens, its token bag, its sorted numbers) is computed once
per reference string and reused for every response of the sample (`_per_reference`).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from pydantic import Field, model_validator

from rm_rewards.core.kinds import PointwiseReward
from rm_rewards.core.registry import register
from rm_rewards.core.schema import Sample

# Han ideographs (with extensions and compatibility forms) and kana: written without spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
# Apostrophes inside words are dropped rather than split on, as SQuAD does ("don't" -> "dont").
_APOSTROPHE_RE = re.compile(r"(?<=\w)['\u2019](?=\w)")
_ARTICLES = frozenset({"a", "an", "the"})

# On ASCII text `\w` is [A-Za-z0-9_], so the regex's tokens are the runs of those characters,
# lower-cased: a table that lower-cases letters and turns every other character into a space,
# then `split()`, gives the same list (CPython translates ASCII-to-ASCII tables in a fast loop).
_ASCII_WORD = frozenset(string.ascii_letters + string.digits + "_")
_ASCII_TOKEN_TABLE = {
    code: (ord(chr(code).lower()) if chr(code) in _ASCII_WORD else ord(" "))
    for code in range(128)
    if chr(code) not in string.ascii_lowercase + string.digits + "_"
}


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens: one per CJK character, else runs of word characters; punctuation dropped."""
    if text.isascii():
        if "'" in text:  # `\w` ignores case on ASCII, so the apostrophes can go before lower-casing
            text = _APOSTROPHE_RE.sub("", text)
        return text.translate(_ASCII_TOKEN_TABLE).split()
    text = text.lower()
    if "'" in text or "\u2019" in text:  # the substitution scans every position; most texts have none
        text = _APOSTROPHE_RE.sub("", text)
    return _TOKEN_RE.findall(text)


_Derived = TypeVar("_Derived")
# Longer references are not cached: their token lists and LCS bit masks (up to one bit per token
# per distinct token) would pin megabytes each. Bundled GSM8K and RM-Bench texts are under 4,000.
_CACHED_REFERENCE_MAX_CHARS = 20_000


def _per_reference(derive: Callable[[str], _Derived]) -> Callable[[str], _Derived]:
    """`derive(reference)`, remembered for the last few references.

    A sample's responses share one reference and a batch scores them one after another, so the
    reference's tokens or numbers are computed once per sample instead of once per response.
    What `derive` returns is shared between calls and must never be mutated.
    """
    cached = functools.lru_cache(maxsize=16)(derive)

    @functools.wraps(derive)
    def lookup(reference: str) -> _Derived:
        return cached(reference) if len(reference) <= _CACHED_REFERENCE_MAX_CHARS else derive(reference)

    return lookup


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


# SQuAD v1.1's official `evaluate-v1.1.py`, `normalize_answer`: lower-case, delete ASCII
# punctuation (string.punctuation; "1,000.50" becomes "100050", "well-known" "wellknown", while
# curly quotes and dashes stay), replace the articles a/an/the between word boundaries with a
# space, then split on whitespace. Kept literally, regex included, so scores equal the script's.
_SQUAD_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SQUAD_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")

F1Normalization = Literal["squad", "word_runs"]


# ASCII characters that are neither word characters nor whitespace once punctuation is gone.
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


def squad_normalize(text: str) -> list[str]:
    """The tokens SQuAD's official evaluation compares: `normalize_answer(text).split()`."""
    text = text.lower().translate(_SQUAD_PUNCTUATION)
    if text.isascii() and _ASCII_CONTROL_RE.search(text) is None:
        # Only letters, digits and whitespace are left, so the article regex's word boundaries
        # are exactly the whitespace around tokens: dropping the tokens a/an/the is the same
        # (and skips a regex scan of every position).
        return [token for token in text.split() if token not in _ARTICLES]
    return _SQUAD_ARTICLES_RE.sub(" ", text).split()


def _word_run_tokens(text: str) -> list[str]:
    """`tokenize` without the articles: word runs, each CJK character its own token."""
    return [t for t in tokenize(text) if t not in _ARTICLES]


_F1_TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "squad": squad_normalize,
    "word_runs": _word_run_tokens,
}


def _token_bag(text: str, normalization: F1Normalization) -> tuple[Counter[str], int]:
    """The text's normalised tokens, counted, and how many there are."""
    tokens = _F1_TOKENIZERS[normalization](text)
    return Counter(tokens), len(tokens)


@_per_reference
def _reference_bag_squad(reference: str) -> tuple[Counter[str], int]:
    return _token_bag(reference, "squad")


@_per_reference
def _reference_bag_word_runs(reference: str) -> tuple[Counter[str], int]:
    return _token_bag(reference, "word_runs")


_REFERENCE_BAGS = {"squad": _reference_bag_squad, "word_runs": _reference_bag_word_runs}


def token_f1(candidate: str, reference: str, normalization: F1Normalization = "squad") -> float:
    """F1 of the token bags (counts matter), as SQuAD's official evaluation computes it.

    normalization="squad" (default): SQuAD v1.1's `normalize_answer` (see `squad_normalize`).
    normalization="word_runs": `tokenize`'s runs of word characters with the articles dropped,
    each CJK character its own token; for Chinese or Japanese, where SQuAD's whitespace split
    reads a whole sentence as one token (so F1 is all or nothing), and for text whose
    punctuation separates words ("well-known" is two tokens here, one in SQuAD).
    Two answers that both normalise to nothing score 1.0 (SQuAD v2.0's rule; v1.1's script
    returns 0 there); one empty side scores 0.0.
    """
    if normalization not in _F1_TOKENIZERS:
        raise ValueError(f"normalization must be one of {sorted(_F1_TOKENIZERS)}, got {normalization!r}")
    cand, n_cand = _token_bag(candidate, normalization)
    ref, n_ref = _REFERENCE_BAGS[normalization](reference)
    if not n_cand or not n_ref:
        return _f_measure(0, n_cand, n_ref)
    if len(cand) > len(ref):  # walk the smaller bag
        cand, ref = ref, cand
    overlap = sum(min(count, ref[token]) for token, count in cand.items() if token in ref)
    return _f_measure(overlap, n_cand, n_ref)


def _position_masks(tokens: Sequence[str]) -> dict[str, int]:
    """For each distinct token, an int whose bit i is set where tokens[i] is that token."""
    masks: dict[str, int] = {}
    for position, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | (1 << position)
    return masks


def _lcs_from_masks(masks: dict[str, int], n_masked: int, other: Sequence[str]) -> int:
    all_ones = (1 << n_masked) - 1
    row = all_ones
    for token in other:
        matches = row & masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & all_ones
    return n_masked - row.bit_count()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö): O(len(a)·len(b)/word).

    Positions of the longer sequence are bits of one Python int, so the Python-level loop runs
    once per token of the shorter one; 1 MB of text against a short reference stays fast.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    return _lcs_from_masks(_position_masks(a), len(a), b)


@_per_reference
def _reference_tokens(reference: str) -> tuple[str, ...]:
    return tuple(tokenize(reference))


@_per_reference
def _reference_masks(reference: str) -> dict[str, int]:
    return _position_masks(_reference_tokens(reference))


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: precision and recall of the longest common token subsequence."""
    cand = tokenize(candidate)
    ref = _reference_tokens(reference)
    if not cand or not ref:
        lcs = 0
    elif len(ref) >= len(cand):  # the reference is the longer side: use its cached masks
        lcs = _lcs_from_masks(_reference_masks(reference), len(ref), cand)
    else:
        lcs = lcs_length(cand, ref)
    return _f_measure(lcs, len(cand), len(ref))


# A number: optional sign (not when glued to a preceding word or digit, so "3-5" is 3 and 5),
# digits with optional thousands separators, optional decimals and exponent; or a sign and a
# bare decimal part (".5"). Written so that the pattern opens with the set of characters a number
# can start with, which lets `re` skip to those characters in C instead of trying every position
# (3-4x faster on prose); the check on the preceding character therefore looks back over two
# characters, the one before the number and its first one. The plain form, which this must match
# exactly (tests/test_rules_general.py checks it), is
#   (?<![\w.])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\d)
#   | (?<![\w.])[-+\u2212]?\.\d+(?!\d)
_INTEGER_TAIL = r"(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\d)"  # decimals and exponent after the integer part
_NUMBER_RE = re.compile(
    # The first character, not glued to a word, digit or dot; then what may follow it:
    r"[-+\u2212\d.](?<![\w.].)(?:"
    # after a sign, an integer part (and its tail) or a bare decimal part;
    rf"(?<=[-+\u2212])(?:(?:\d{{1,3}}(?:,\d{{3}})+|\d+){_INTEGER_TAIL}|\.\d+(?!\d))"
    # after a digit, the rest of the integer part and the tail;
    rf"|(?<=\d)(?:\d{{0,2}}(?:,\d{{3}})+|\d*){_INTEGER_TAIL}"
    # after a dot, the decimals.
    r"|(?<=\.)\d+(?!\d))"
)


def extract_numbers(text: str) -> list[float]:
    """Every number written in the text, in order ("1,000" is one thousand; digits glued to letters, as in "v1", are not numbers)."""
    out = []
    isfinite = math.isfinite
    for token in _NUMBER_RE.findall(text):
        if "," in token:
            token = token.replace(",", "")
        if "\u2212" in token:
            token = token.replace("\u2212", "-")
        try:
            value = float(token)
        except (ValueError, OverflowError):  # e.g. digits float() cannot read
            continue
        if isfinite(value):  # "1e999" reads as inf
            out.append(value)
    return out


@_per_reference
def _reference_targets(reference: str) -> tuple[float, ...]:
    return tuple(sorted(extract_numbers(reference)))


def _count_matched(wanted: Sequence[float], values: Sequence[float], rel_tol: float, abs_tol: float) -> int:
    """How many of the sorted `wanted` numbers can each take a distinct close one of the sorted `values`.

    Ascending targets, each taking the leftmost free value within tolerance, give a maximum
    matching. next_free[i] is the first unused value at or after i (union-find with path
    halving), so a long candidate full of numbers is matched in O(n log n), not O(n·m).
    """
    next_free = list(range(len(values) + 1))
    n_values = len(values)
    bisect_left = bisect.bisect_left
    matched = 0
    for target in wanted:
        width = max(abs_tol, rel_tol * abs(target)) * (1 + 2 * rel_tol)
        k = bisect_left(values, target - width)
        while next_free[k] != k:
            next_free[k] = next_free[next_free[k]]
            k = next_free[k]
        if k < n_values:
            value = values[k]
            if abs(value - target) <= max(abs_tol, rel_tol * max(abs(value), abs(target))):
                matched += 1
                next_free[k] = k + 1
    return matched


def number_accuracy(candidate: str, reference: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> float:
    """Fraction of the reference's numbers that the candidate also states (each used once).

    Order does not matter: "x=3, y=4" matches "y = 4 and x = 3". Raises ValueError when the
    reference has no number at all, since then there is nothing to be accurate about.
    """
    wanted = _reference_targets(reference)
    if not wanted:
        raise ValueError("reference contains no number")
    values = sorted(extract_numbers(candidate))
    return _count_matched(wanted, values, rel_tol, abs_tol) / len(wanted)


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
    description="Token F1 against the reference, normalised as SQuAD's official script (or word runs, CJK by character).",
)
class TokenF1(_ReferenceReward):
    normalization: F1Normalization = "squad"

    def score_response(self, sample: Sample, index: int) -> float:
        return token_f1(sample.responses[index].text, self.reference_of(sample), self.normalization)


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
