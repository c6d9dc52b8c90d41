"""Scorers the server holds: a trained checkpoint or a rule reward, loaded once per replica.

A checkpoint scores exactly as `training.bt_scoring.score_with_checkpoint` does offline (the training
template, the checkpoint's own tokenizer truncation), so served and offline scores agree; the
requests of one dynamic batch go through one `score_texts` call. A rule reward runs its
`evaluate_batch`. When a batch fails, each request is retried alone, so one bad request fails
only itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rm_resources.serving.protocol import ScoreJob


@dataclass(frozen=True)
class ModelSpec:
    """What to serve: a model key, and for a checkpoint its path."""

    model_key: str
    kind: str  # "checkpoint" | "reward"
    version: str
    path: str | None = None


@dataclass
class JobScores:
    """Per sample: one score per response (None where the reward errored) and the errors."""

    scores: list[list[float | None]]
    errors: list[list[str | None]]


def resolve_model(model_key: str | None, store) -> ModelSpec:
    """The spec for `model_key`, or for the model `served_model` promoted when None.

    Raises ValueError saying what is missing (nothing promoted, an unknown checkpoint, an LLM judge).
    """
    from rm_rewards.benchmarks.model_keys import model_from_key, parse_model_key

    if model_key is None:
        model_key = store.served_model()
        if model_key is None:
            raise ValueError("nothing is promoted yet: materialize served_model, or pass --model")
    kind = parse_model_key(model_key).kind
    if kind == "checkpoint":
        run = parse_model_key(model_key).name
        row = store.checkpoint(run)
        if row is None:
            raise ValueError(f"{model_key}: no trained checkpoint {run!r} in the warehouse")
        return ModelSpec(model_key, "checkpoint", version=row["run_id"] or run, path=row["path"])
    if kind == "reward":
        model = model_from_key(model_key)
        return ModelSpec(model_key, "reward", version=model.build().version)
    raise ValueError(f"{model_key}: serving {kind} models is not supported (checkpoints and rule rewards are)")


def isolated(score: Callable[[list[ScoreJob]], list[JobScores]], jobs: list[ScoreJob]) -> list[JobScores | Exception]:
    """`score(jobs)`; when the batch raises, each job alone, so only the failing ones fail."""
    try:
        return list(score(jobs))
    except Exception:
        if len(jobs) == 1:
            raise
    results: list[JobScores | Exception] = []
    for job in jobs:
        try:
            results.append(score([job])[0])
        except Exception as exc:
            results.append(exc)
    return results


class CheckpointScorer:
    def __init__(self, spec: ModelSpec, batch_size: int = 32):
        from training.bt_scoring import score_texts

        self.spec, self.batch_size = spec, batch_size
        score_texts(spec.path, ["warm up"], batch_size=1)  # loads the model once per replica (cached)

    @staticmethod
    def texts(job: ScoreJob) -> list[str]:
        from training.data import render_text

        if job.raw_texts is not None:
            return list(job.raw_texts)
        return [render_text(s.input, r.text) for s in job.samples for r in s.responses]

    def __call__(self, jobs: Sequence[ScoreJob]) -> list[JobScores]:
        from training.bt_scoring import score_texts

        per_job = [self.texts(job) for job in jobs]
        flat = score_texts(self.spec.path, [t for texts in per_job for t in texts], batch_size=self.batch_size)
        results, offset = [], 0
        for job in jobs:
            scores = []
            for sample in job.samples:
                n = 1 if job.raw_texts is not None else len(sample.responses)
                scores.append(flat[offset : offset + n])
                offset += n
            results.append(JobScores(scores=scores, errors=[[None] * len(s) for s in scores]))
        return results


class RuleScorer:
    def __init__(self, spec: ModelSpec):
        from rm_rewards.benchmarks.model_keys import model_from_key

        self.spec = spec
        self.reward = model_from_key(spec.model_key).build()

    def __call__(self, jobs: Sequence[ScoreJob]) -> list[JobScores]:
        flat = [s for job in jobs for s in job.samples]
        by_id = {}
        applicable = [s for s in flat if self.reward.applies_to(s)]
        for sample, result in zip(applicable, self.reward.evaluate_batch(applicable) if applicable else []):
            by_id[id(sample)] = result
        results = []
        for job in jobs:
            scores, errors = [], []
            for sample in job.samples:
                result = by_id.get(id(sample))
                if result is None:
                    scores.append([None] * len(sample.responses))
                    errors.append([f"{self.spec.model_key} does not apply to this sample"] * len(sample.responses))
                    continue
                scores.append([r.score for r in result.scores] or [None] * len(sample.responses))
                errors.append([r.error or result.error for r in result.scores] or [result.error] * len(sample.responses))
            results.append(JobScores(scores=scores, errors=errors))
        return results


def load_scorer(spec: ModelSpec, batch_size: int = 32) -> Any:
    return CheckpointScorer(spec, batch_size) if spec.kind == "checkpoint" else RuleScorer(spec)
