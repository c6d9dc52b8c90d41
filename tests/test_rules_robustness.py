"""Every registered rule reward (code-execution ones excepted) on hostile input: a score or a
recorded error, never an exception, never a hang; a batch of good and bad samples goes on."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, RewardResult, Sample

pytestmark = pytest.mark.timeout(300)

# The rule rewards this file must cover (more may exist; these must not silently disappear).
EXPECTED = {
    "exact_accuracy",
    "token_f1",
    "rouge_l",
    "number_accuracy",
    "math_verify",
    "length_penalty",
    "ngram_repetition_penalty",
    "privacy_leakage",
    "reasoning_format",
    "tool_call_format",
}

HOSTILE_TEXTS = {
    "empty": "",
    "whitespace": " \n\t ",
    "one_megabyte": ("The answer is 42. " * 60_000)[:1_000_000],
    "one_megabyte_tags": "<think>" * 50_000 + "<tool_call>{" * 50_000 + "\\frac{" * 50_000,
    "lone_surrogates": "answer \ud800 is \udfff 42 \ud83d",
    "replacement_and_control": "\ufffd\ufffd\x00\x01\x1b[31m 42 \x7f\u200b\u202e",
    "chinese": "答案是四十二。我们先计算 6 × 7 = 42，所以答案是 42。",
    "arabic": "الإجابة هي ٤٢ لأن ستة في سبعة يساوي ٤٢",
    "emoji": "🤖🔥 the answer is 42 👍🏽👨‍👩‍👧‍👦",
}


def rule_reward_names() -> list[str]:
    return [s.name for s in registry.specs(is_llm=False) if "code" not in s.tags]


def make_sample(sample_id: str, text: str, reference: str | None = "The answer is 42") -> Sample:
    return Sample(
        id=sample_id,
        source="robustness",
        input=[ChatMessage(role="user", content="What is 6 x 7?")],
        responses=[
            Response(message=ChatMessage(role="assistant", content=text)),
            Response(message=ChatMessage(role="assistant", content="The answer is 42.")),
        ],
        reference=reference,
    )


def assert_well_formed(result: RewardResult, sample: Sample) -> None:
    assert isinstance(result, RewardResult) and result.sample_id == sample.id
    if result.error is not None:
        assert isinstance(result.error, str) and result.error
        return
    assert len(result.scores) == len(sample.responses)
    for score in result.scores:
        if score.score is None:
            assert isinstance(score.error, str) and score.error
        else:
            assert math.isfinite(score.score) and score.error is None


def test_every_expected_rule_reward_is_registered() -> None:
    assert EXPECTED <= set(rule_reward_names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("case", sorted(HOSTILE_TEXTS))
def test_hostile_response_gives_a_score_or_an_error(name: str, case: str) -> None:
    reward = registry.get(name)
    sample = make_sample(f"{name}-{case}", HOSTILE_TEXTS[case])
    started = time.monotonic()
    result = reward.evaluate(sample)
    assert time.monotonic() - started < 8, f"{name} took too long on {case}"
    assert_well_formed(result, sample)
    # The sibling response is ordinary: hostile text next to it must not void its score.
    assert result.error is None and result.scores[1].score is not None


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize(
    "case", ["empty", "lone_surrogates", "replacement_and_control", "chinese", "arabic", "emoji"]
)
def test_hostile_reference_gives_a_score_or_an_error(name: str, case: str) -> None:
    reward = registry.get(name)
    sample = make_sample(f"{name}-ref-{case}", "The answer is 42.", reference=HOSTILE_TEXTS[case])
    started = time.monotonic()
    result = reward.evaluate(sample)
    assert time.monotonic() - started < 8
    assert_well_formed(result, sample)


def _mixed_batch() -> list[Sample]:
    samples = [make_sample("good-0", "The answer is 42.")]
    samples += [make_sample(f"bad-{case}", text) for case, text in sorted(HOSTILE_TEXTS.items())]
    samples.append(make_sample("no-reference", "The answer is 42.", reference=None))
    samples.append(make_sample("good-1", "I believe it is 41."))
    return samples


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_mixed_batch_goes_on(name: str) -> None:
    reward = registry.get(name)
    samples = _mixed_batch()
    results = reward.evaluate_batch(samples)
    assert [r.sample_id for r in results] == [s.id for s in samples]
    for result, sample in zip(results, samples):
        assert_well_formed(result, sample)
    # The good samples score exactly as they do alone.
    for k in (0, len(samples) - 1):
        assert results[k].values() == reward.evaluate(samples[k]).values()
        assert results[k].ok


def test_mixed_batches_also_go_on_through_the_async_path() -> None:
    samples = _mixed_batch()

    async def score_all() -> dict[str, list[RewardResult]]:
        return {name: await registry.get(name).aevaluate_batch(samples) for name in sorted(EXPECTED)}

    for name, results in asyncio.run(score_all()).items():
        assert len(results) == len(samples), name
        for result, sample in zip(results, samples):
            assert_well_formed(result, sample)
