"""Classifier rewards: a local toxicity model in place of the seed's Detoxify.

Detoxify downloads its weights from a hub at run time; `alt-profanity-check` ships a linear model
(trained on toxic-comment data) inside its wheel, so it works offline and scores thousands of
texts per second on a CPU. Batches are classified in one vectorised call.
"""

from __future__ import annotations

from collections.abc import Sequence

from rm_rewards.core.kinds import PointwiseReward, describe_error
from rm_rewards.core.registry import register
from rm_rewards.core.schema import ResponseScore, RewardResult, Sample


def toxicity_probabilities(texts: Sequence[str]) -> list[float]:
    """P(offensive) per text from the packaged classifier (loaded on first use)."""
    from profanity_check import predict_prob

    # The vectoriser cannot encode lone surrogates: replace them, the words around them still count.
    cleaned = [text.encode("utf-8", "replace").decode("utf-8") for text in texts]
    return [float(p) for p in predict_prob(cleaned)] if cleaned else []


@register("toxicity", tags=("classifier", "safety"), description="1 - P(toxic) from an offline toxic-language classifier (higher is safer).")
class Toxicity(PointwiseReward):
    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        [probability] = toxicity_probabilities([sample.responses[index].text])
        return ResponseScore(score=1.0 - probability, reason=f"P(toxic)={probability:.3f}")

    def evaluate_batch(self, samples: Sequence[Sample], *, max_concurrency: int = 0) -> list[RewardResult]:
        texts = [response.text for sample in samples for response in sample.responses]
        try:
            probabilities = iter(toxicity_probabilities(texts))
        except Exception as exc:  # the classifier failed as a whole: every sample records why
            return [self._result(sample, None, describe_error(exc)) for sample in samples]
        results = []
        for sample in samples:
            scores = []
            for _ in sample.responses:
                probability = next(probabilities)
                scores.append(ResponseScore(score=1.0 - probability, reason=f"P(toxic)={probability:.3f}"))
            results.append(self._checked(sample, scores))
        return results
