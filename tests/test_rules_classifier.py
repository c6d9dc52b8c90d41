"""The toxicity classifier reward."""

from __future__ import annotations

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample


def _sample(sample_id: str, *texts: str) -> Sample:
    return Sample(
        id=sample_id, source="t", input=[ChatMessage(role="user", content="Say something.")],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in texts],
    )


def test_toxic_language_scores_lower_than_polite_language():
    reward = registry.get("toxicity")
    [result] = reward.evaluate_batch([_sample("a", "Thank you, that is a lovely idea.", "Shut up, you stupid idiot.")])
    polite, rude = result.values()
    assert polite > 0.8 and rude < 0.2
    assert "P(toxic)=" in result.scores[1].reason


def test_batch_equals_one_at_a_time_and_survives_odd_text():
    reward = registry.get("toxicity")
    samples = [
        _sample("a", "fine", ""),
        _sample("b", "x" * 1_000_000),
        _sample("c", "lone \ud800 surrogate", "中文回答。", "مرحبا 👋"),
    ]
    batch = reward.evaluate_batch(samples)
    single = [reward.evaluate(s) for s in samples]
    assert [r.values() for r in batch] == [r.values() for r in single]
    assert all(r.ok for r in batch)
    assert registry.spec("toxicity").tags == ("classifier", "safety")
