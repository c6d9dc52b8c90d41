"""General text metrics against a reference answer: exact match, token F1, ROUGE-L, numbers."""

from __future__ import annotations

from rm_rewards.kinds import PointwiseReward
from rm_rewards.registry import register
from rm_rewards.schema import Sample


def normalize_answer(text: str) -> str:
    return " ".join(text.strip().lower().split())


def exact_match(candidate: str, reference: str) -> float:
    return 1.0 if normalize_answer(candidate) == normalize_answer(reference) else 0.0


class _ReferenceReward(PointwiseReward):
    """A rule that compares each response with `sample.reference`."""

    def applies_to(self, sample: Sample) -> bool:
        return sample.reference is not None

    def reference_of(self, sample: Sample) -> str:
        if sample.reference is None:
            raise ValueError(f"sample {sample.id} has no reference answer")
        return sample.reference


@register("exact_accuracy", tags=("general",), description="1 if the response equals the reference after whitespace/case normalisation, else 0.")
class ExactAccuracy(_ReferenceReward):
    def score_response(self, sample: Sample, index: int) -> float:
        return exact_match(sample.responses[index].text, self.reference_of(sample))
