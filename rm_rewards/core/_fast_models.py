"""Result models built without pydantic's validation, for the rule rewards' hot path.

Private to `rm_rewards.core`: `kinds` re-exports what rules and callers may use. Every model here
is made by one primitive, `trusted_model`, the only code that touches pydantic's internals; the
fused pointwise batch loop (`fused_pointwise_batch`) lives here too, beside the builders it uses.

Why it exists: per sample, a cheap rule's result is a `RewardResult` and a `ResponseScore` per
response, and `model_construct` (its per-field loop) or the validating constructor were most of
the framework's cost on the rule rewards (bench/RESULTS.md, "Rule rewards"). A fresh pydantic model
is four slot stores (`__dict__`, `__pydantic_fields_set__`, `__pydantic_extra__`,
`__pydantic_private__`); `trusted_model` makes them through the slots' own descriptors, bound once
at import. tests/test_kinds.py checks each builder against `model_construct` / the constructor on
everything a caller can observe (equality, dumps, fields set, copies, pickles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from rm_rewards.core.schema import ResponseScore, RewardResult, Sample

if TYPE_CHECKING:
    from rm_rewards.core.kinds import PointwiseReward

ModelT = TypeVar("ModelT", bound=BaseModel)

# (A KeyError here at import means pydantic changed its layout; the builders' tests fail too.)
_set_values = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__

_ALL_SCORE_FIELDS = frozenset(ResponseScore.model_fields)
_ALL_RESULT_FIELDS = frozenset(RewardResult.model_fields)
_REASON_SET = frozenset({"score", "reason"})


def trusted_model(cls: type[ModelT], values: dict, fields_set: frozenset[str] | None = None) -> ModelT:
    """`cls.model_construct(**values)` without its per-field loop: the one primitive.

    `values` must name every field of `cls`, in field order, with already valid values, and `cls`
    must have no private attributes. `fields_set` (default: every name in `values`) is what
    `model_fields_set` reports; each model gets its own mutable copy.
    """
    model = cls.__new__(cls)
    _set_values(model, values)
    _set_fields_set(model, set(values) if fields_set is None else set(fields_set))
    _set_extra(model, None)
    _set_private(model, None)
    return model


def float_score(value: float) -> ResponseScore:
    """What `model_construct` builds for a finite float score: other fields at their defaults, all set."""
    return trusted_model(
        ResponseScore,
        {"score": value, "reason": "", "dimensions": {}, "steps": None, "error": None},
        _ALL_SCORE_FIELDS,
    )


def error_score(message: str) -> ResponseScore:
    """A score that is an error: no value, `message` as the error, every field set."""
    return trusted_model(
        ResponseScore,
        {"score": None, "reason": "", "dimensions": {}, "steps": None, "error": message},
        _ALL_SCORE_FIELDS,
    )


def response_score(score: float, reason: str) -> ResponseScore:
    """`ResponseScore(score=score, reason=reason)`, the same object, cheaper: for rules' hot paths.

    A finite float and a str skip the validator round trip (half of a cheap rule's result cost);
    anything else is validated as usual, so a bad score raises the same error as the constructor.
    """
    if type(score) is float and score - score == 0.0 and type(reason) is str:  # finite
        return trusted_model(
            ResponseScore,
            {"score": score, "reason": reason, "dimensions": {}, "steps": None, "error": None},
            _REASON_SET,
        )
    return ResponseScore(score=score, reason=reason)


def reward_result(
    reward_name: str, reward_version: str, sample_id: str, scores: list[ResponseScore], error: str | None
) -> RewardResult:
    """A `RewardResult` from trusted values (every field set, empty metadata)."""
    return trusted_model(
        RewardResult,
        {
            "reward_name": reward_name,
            "reward_version": reward_version,
            "sample_id": sample_id,
            "scores": scores,
            "error": error,
            "metadata": {},
        },
        _ALL_RESULT_FIELDS,
    )


def fused_pointwise_batch(
    reward: PointwiseReward, samples: Sequence[Sample], label: tuple[str, str]
) -> list[RewardResult]:
    """`_evaluate_sync` → `_score` → `_checked` → `_result` over a batch, fused into one loop.

    The same results (same errors, same isolation per response and per sample) for a pointwise
    rule that overrides none of those steps (`PointwiseReward._evaluate_sync_batch` checks), without
    four calls per sample: for a cheap rule they cost about as much as the rule itself. Kept
    because the rule-rewards bench missed its overhead target without it (bench/RESULTS.md).
    """
    from rm_rewards.core.kinds import describe_error, score_value  # kinds imports this module

    reward_name, reward_version = label
    score_response = reward.score_response
    results = []
    for sample in samples:
        try:
            scores = []
            for index in range(len(sample.responses)):
                try:
                    scores.append(score_value(score_response(sample, index)))
                except Exception as exc:  # one bad response does not void its siblings
                    scores.append(error_score(describe_error(exc)))
            if len(scores) == len(sample.responses):
                results.append(reward_result(reward_name, reward_version, sample.id, scores, None))
            else:  # a rule changed the sample's responses while scoring it
                results.append(reward._checked(sample, scores, label))
        except Exception as exc:  # a reward never takes the batch down
            results.append(reward._result(sample, None, describe_error(exc), label))
    return results
