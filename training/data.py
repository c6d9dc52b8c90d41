"""Preference pairs for reward-model training, built from pairwise `Sample`s.

A pairwise Sample holds two candidate responses and `preference` = index of the better one
(None = tie). Converters emit each human pair twice, as [chosen, rejected] with preference 0 and
as the swapped copy with preference 1, so position-sensitive judges see both orders. A scalar
reward model scores each response on its own, so the copies carry the same information:
`pairs_from_samples` folds them back into one (context, chosen, rejected) triple.

Example pair (what the trainer consumes):
    PreferencePair(sample_id="hh-17", split="train",
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
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rm_rewards.schema import ChatMessage, Sample, Split, samples_from_frame

log = logging.getLogger(__name__)

ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


class PreferencePair(BaseModel):
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


def _pair_from_sample(sample: Sample) -> PreferencePair | None:
    """The (chosen, rejected) pair of one pairwise sample; None for a tie or identical responses."""
    if len(sample.responses) != 2:
        raise ValueError(
            f"sample {sample.id!r}: field 'responses' must hold exactly 2 candidates for a pairwise "
            f"sample, got {len(sample.responses)}"
        )
    if sample.preference is None:
        return None
    if sample.preference not in (0, 1):
        raise ValueError(
            f"sample {sample.id!r}: field 'preference' must be 0, 1 or None, got {sample.preference}"
        )
    chosen = sample.responses[sample.preference].text
    rejected = sample.responses[1 - sample.preference].text
    if chosen == rejected:
        return None
    return PreferencePair(
        sample_id=sample.id, split=sample.split, context=sample.input, chosen=chosen, rejected=rejected
    )


def _pair_key(pair: PreferencePair) -> str:
    context = [m.model_dump(mode="json") for m in pair.context]
    return json.dumps([context, pair.chosen, pair.rejected], sort_keys=True, ensure_ascii=False)


def pairs_from_samples(samples: Iterable[Sample]) -> list[PreferencePair]:
    """Deduplicated (context, chosen, rejected) triples from pairwise samples, in first-seen order.

    Ties (preference None) and pairs with identical responses carry no preference and are skipped;
    samples of other tasks (pointwise, listwise) are skipped too. A pair seen in several samples
    (the swapped copy, or the same pair twice) is kept once, with the split of its first sighting.
    A pairwise sample without exactly two responses, or with a preference other than 0/1/None, is
    an error naming the sample and the field.
    """
    pairs: list[PreferencePair] = []
    seen: set[str] = set()
    skipped = {"not_pairwise": 0, "no_preference": 0, "duplicate": 0}
    for sample in samples:
        if sample.task != "pairwise":
            skipped["not_pairwise"] += 1
            continue
        pair = _pair_from_sample(sample)
        if pair is None:
            skipped["no_preference"] += 1
            continue
        key = _pair_key(pair)
        if key in seen:
            skipped["duplicate"] += 1
            continue
        seen.add(key)
        pairs.append(pair)
    log.info("pairs_from_samples: %d pairs, skipped %s", len(pairs), skipped)
    return pairs


def split_pairs(pairs: Sequence[PreferencePair]) -> tuple[list[PreferencePair], list[PreferencePair]]:
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
