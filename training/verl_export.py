"""Export converted Samples to verl's RL parquet rows, for GRPO training of a generative judge.

One row (verl's documented dataset format):
    {"data_source": "rmforge/pairwise/hh_rlhf",
     "prompt": [{"role": "system", "content": PAIRWISE_SYSTEM},
                {"role": "user", "content": "[Conversation]\\nUser: ...\\n\\n[Response A]\\n...\\n\\n[Response B]\\n..."}],
     "ability": "reward_modeling",
     "reward_model": {"style": "rule", "ground_truth": "A"},
     "extra_info": {"sample_id": "hh-17", "split": "train", "task": "pairwise", "swapped": False,
                    "response_index": -1, "index": 0}}
Pairwise rows come in both orders (A/B swapped, label swapped with them) so the judge cannot
win by favouring a position; ties are kept (label "tie"). Pointwise rows ask for a 0-4
helpfulness score of one response (ground truth: its label, e.g. HelpSteer2 "helpfulness").
The reward for both is `training/verl_reward.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rm_rewards.core.schema import ChatMessage, Sample
from rm_rewards.curation.pairs import fold_pairs
from training.data import ROLE_LABELS
from training.verl_reward import DATA_SOURCE_PREFIX, PAIRWISE, POINTWISE, SCORE_RANGE

ABILITY = "reward_modeling"

PAIRWISE_SYSTEM = (
    "You are an impartial judge. Read the conversation and the two candidate responses, decide which "
    "response is more helpful, honest and harmless, or whether they are equally good. Think briefly, then "
    "end with exactly one verdict tag: <verdict>A</verdict>, <verdict>B</verdict> or <verdict>tie</verdict>."
)
POINTWISE_SYSTEM = (
    "You are an impartial judge. Read the conversation and the response, and rate how helpful the response "
    "is on a scale from 0 (not helpful) to 4 (extremely helpful). Think briefly, then end with exactly one "
    "score tag, for example <score>3</score>."
)


def render_conversation(context: Sequence[ChatMessage]) -> str:
    return "\n".join(f"{ROLE_LABELS[m.role]}: {m.content}" for m in context)


def _row(
    data_source: str, system: str, user: str, ground_truth: str, extra_info: dict[str, Any]
) -> dict[str, Any]:
    return {
        "data_source": data_source,
        "prompt": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": extra_info,
    }


def _extra(sample: Sample, task: str, swapped: bool = False, response_index: int = -1) -> dict[str, Any]:
    return {
        "sample_id": sample.id,
        "split": sample.split,
        "task": task,
        "swapped": swapped,
        "response_index": response_index,
    }


def pairwise_rows(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """Two rows per distinct pairwise sample (as given, and A/B swapped); ties labelled 'tie'.

    Distinct: `rm_rewards.curation.pairs.fold_pairs` (ties included) keeps a converter's swapped copy, or a
    repeat of the pair, out; a pair of two identical texts has nothing to judge and is left out
    too. A pairwise sample must have exactly 2 responses and a preference of 0,
    1 or None (tie); anything else is an error naming the sample and the field.
    """
    rows = []
    pairs, _skipped = fold_pairs(samples, include_ties=True, strict=True)
    for pair in pairs:
        sample = pair.sample
        first, second = (r.text for r in sample.responses)
        labels = {0: ("A", "B"), 1: ("B", "A"), None: ("tie", "tie")}[pair.chosen_index]
        source = f"{DATA_SOURCE_PREFIX}/{PAIRWISE}/{sample.source}"
        for swapped, (a, b), label in (
            (False, (first, second), labels[0]),
            (True, (second, first), labels[1]),
        ):
            user = (
                f"[Conversation]\n{render_conversation(sample.input)}\n\n"
                f"[Response A]\n{a}\n\n[Response B]\n{b}"
            )
            rows.append(_row(source, PAIRWISE_SYSTEM, user, label, _extra(sample, PAIRWISE, swapped)))
    return rows


def pointwise_rows(samples: Iterable[Sample], label_key: str = "helpfulness") -> list[dict[str, Any]]:
    """One row per response that carries `label[label_key]` (0-4); responses without it are skipped."""
    rows = []
    for sample in samples:
        for index, response in enumerate(sample.responses):
            if label_key not in response.label:
                continue
            value = response.label[label_key]
            if not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:
                raise ValueError(
                    f"sample {sample.id!r}, response {index}: field 'label.{label_key}' = {value} "
                    f"is outside {SCORE_RANGE[0]:g}..{SCORE_RANGE[1]:g}"
                )
            user = f"[Conversation]\n{render_conversation(sample.input)}\n\n[Response]\n{response.text}"
            rows.append(
                _row(
                    f"{DATA_SOURCE_PREFIX}/{POINTWISE}/{sample.source}",
                    POINTWISE_SYSTEM,
                    user,
                    f"{value:g}",
                    _extra(sample, POINTWISE, response_index=index),
                )
            )
    return rows


def write_verl_parquet(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as parquet, numbering them in `extra_info.index` (verl logs it per rollout)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        raise ValueError(f"no rows to write to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    numbered = [{**row, "extra_info": {**row["extra_info"], "index": i}} for i, row in enumerate(rows)]
    pq.write_table(pa.Table.from_pylist(numbered), path)
    return path


def export_verl_dataset(
    samples: Sequence[Sample], output_dir: str | Path, label_key: str = "helpfulness"
) -> dict[str, Any]:
    """`<output_dir>/train.parquet` and `test.parquet` (by each sample's split) plus row counts."""
    rows = pairwise_rows(samples) + pointwise_rows(samples, label_key)
    output_dir = Path(output_dir)
    summary: dict[str, Any] = {"rows": {}, "paths": {}}
    for split in ("train", "test"):
        split_rows = [row for row in rows if row["extra_info"]["split"] == split]
        summary["rows"][split] = {
            task: sum(row["extra_info"]["task"] == task for row in split_rows)
            for task in (PAIRWISE, POINTWISE)
        }
        if split_rows:
            summary["paths"][split] = str(write_verl_parquet(split_rows, output_dir / f"{split}.parquet"))
    return summary
