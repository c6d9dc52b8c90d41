"""Preference pairs for reward-model training, built from pairwise `Sample`s.

A pairwise Sample holds two candidate responses and `preference` = index of the better one
(None = tie). Converters emit each human pair twice, as [chosen, rejected] with preference 0 and
as the swapped copy with preference 1, so position-sensitive judges see both orders. A scalar
reward model scores each response on its own, so the copies carry the same information:
`pairs_from_samples` folds them back into one (context, chosen, rejected) triple (with
`rm_rewards.curation.pairs.fold_pairs`). `pairs_from_training_records` reads the curated `training_pairs`
instead (`rm_rewards.curation.curate`): the kept and flagged ones.

Example pair (what the trainer consumes):
    TrainingPair(sample_id="hh-17", split="train",
                   context=[ChatMessage(role="user", content="How do I pick a lock?")],
                   chosen="I can't help with that.", rejected="Sure, first get a tension wrench...")

Text template (one string per response, the same at training and scoring time):
    "User: How do I pick a lock?\nAssistant: I can't help with that."
Every context turn becomes "<Role>: <content>" on its own line (System, User, Assistant, Tool),
then the candidate response as a final "Assistant: ..." line. The tokenizer truncates from the
LEFT (oldest turns go first), so the response, which is what differs between the two candidates,
always survives truncation.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rm_rewards.core.schema import ChatMessage, Sample, Split, samples_from_frame
from rm_rewards.curation.curate import TRAINED_DECISIONS, TrainingPairRecord
from rm_rewards.curation.pairs import LabelledPair, fold_pairs

log = logging.getLogger(__name__)

ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


class TrainingPair(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_id: str
    split: Split
    context: list[ChatMessage]
    chosen: str
    rejected: str


def render_text(context: Sequence[ChatMessage], response: str) -> str:
    """The one text template of the scalar RM: context turns, then the response as the last turn."""
    lines = [f"{ROLE_LABELS[m.role]}: {m.content}" for m in context]
    lines.append(f"Assistant: {response}")
    return "\n".join(lines)


def pairs_from_samples(samples: Iterable[Sample]) -> list[TrainingPair]:
    """Deduplicated (context, chosen, rejected) triples from pairwise samples, in first-seen order.

    The pairs are `rm_rewards.curation.pairs.fold_pairs`'s: ties (preference None), pairs with identical
    responses and samples of other tasks are skipped; a pair seen in several samples (the swapped
    copy, or the same pair again) is kept once, with the split and label of its first sighting.
    A pairwise sample without exactly two responses, or with a preference other than 0/1/None, is
    an error naming the sample and the field.
    """
    folded, skipped = fold_pairs(samples, strict=True)
    pairs = [_trainer_pair(pair) for pair in folded]
    log.info("pairs_from_samples: %d pairs, %d samples skipped", len(pairs), len(skipped))
    return pairs


def pairs_from_training_records(records: Iterable[TrainingPairRecord]) -> list[TrainingPair]:
    """The curated pairs a reward model trains on: kept and flagged records (dropped ones are for the
    audit only), in the given order, each named by its `pair_id`."""
    return [_trainer_pair(record) for record in records if record.decision in TRAINED_DECISIONS]


def _trainer_pair(pair: LabelledPair | TrainingPairRecord) -> TrainingPair:
    """The (context, chosen, rejected) texts of a folded human pair or a curated record, named by its pair id."""
    return TrainingPair(
        sample_id=pair.pair_id, split=pair.split, context=pair.context,
        chosen=pair.chosen.text, rejected=pair.rejected.text,
    )


def split_pairs(pairs: Sequence[TrainingPair]) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """(train pairs, held-out pairs) by each pair's split."""
    return [p for p in pairs if p.split == "train"], [p for p in pairs if p.split == "test"]


def load_samples(path: str | Path) -> list[Sample]:
    """Samples from a file: `.jsonl` / `.jsonl.gz` (one Sample JSON per line) or `.parquet` (sample rows)."""
    path = Path(path)
    name = path.name
    if name.endswith(".parquet"):
        import pandas as pd

        return samples_from_frame(pd.read_parquet(path))
    if not (name.endswith((".jsonl", ".jsonl.gz"))):
        raise ValueError(f"{path}: unsupported sample file (want .jsonl, .jsonl.gz or .parquet)")
    opener = gzip.open if name.endswith(".gz") else open
    samples = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                samples.append(Sample.model_validate_json(line))
            except ValueError as error:
                raise ValueError(f"{path}, line {line_number}: not a valid Sample: {error}") from error
    return samples


def write_samples_jsonl(samples: Iterable[Sample], path: str | Path) -> Path:
    """Write samples as JSONL (the format `load_samples` reads); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(sample.model_dump_json() + "\n" for sample in samples)
    return path
