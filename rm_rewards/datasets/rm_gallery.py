"""RM-Gallery `DataSample` rows (modelscope/RM-Gallery, rm_gallery/core/data/schema.py) → samples.

A DataSample: `unique_id`, `input` (ChatMessages: role system / user / assistant / function,
content), `output` (DataOutputs: `answer`, a Step = ChatMessage + `label` dict, and optional
`steps`, Steps with their own labels), `task_category`, `source`, `metadata`. (RM-Gallery's early
`evaluation_sample` schema, the bundled HH-RLHF helpful file, is read by `hh_rlhf`.)

What the outputs' answer labels say decides the sample (labels as RM-Gallery's own loaders write
them; every output of a row must be labelled the same way, else the row is quarantined):

- `preference` "chosen" / "rejected" (RewardBench, RM-Bench, RMB loaders), or `is_preferred` true /
  false (its HelpSteer3 loader): two outputs → an A/B-swapped pair, preference the chosen one, no
  strength; both `is_preferred` false is that loader's tie (preference None). More than two → one
  listwise sample, each response labelled {"chosen": 1 or 0}, preference the chosen index when
  exactly one is chosen (best-of-N), else None.
- `rank` (an integer, 1 the best) on every output, at least two → one listwise sample, each
  response labelled {"rank": r}, preference the index of the single best rank, else None.
- otherwise numeric labels (scores, e.g. its HelpSteer2 loader's five attributes) → one pointwise
  sample per output, the numbers as the response's label.

Every response also keeps the answer's other numeric labels. A string `reference` label (the gold
answer RM-Gallery's math and code rewards read) becomes the sample's `reference`. Steps become the
response's `steps`, each with a float label: `correctness` "correct" → 1 / "error" or "incorrect"
→ 0 (its PRMBench loader), or a numeric or boolean `score` / `label`; an unlabelled step has None.
An output with no label at all (no number, preference, rank, reference or step label) is
quarantined: rmforge converts labelled data only. Kept in the metadata: `rm_gallery_id`
(unique_id), `rm_gallery_source`, `rm_gallery_task_category`, and every output's full answer label
as given (`rm_gallery_labels`, so string labels such as a model name are not lost).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rm_rewards.core.schema import ChatMessage, Response, Role, Sample, Step, Task
from rm_rewards.datasets.keys import content_digest, conversation_key
from rm_rewards.datasets.messages import MESSAGE_ROLES, check_pair, check_prompt, require_messages
from rm_rewards.datasets.quarantine import (
    ConversionStream,
    RowError,
    convert_each_row,
    is_finite_number,
    require_field,
    require_text,
)
from rm_rewards.datasets.samples import listwise_sample, pointwise_sample, swapped_pair_samples

GALLERY_ROLES: dict[str, Role] = {**MESSAGE_ROLES, "function": "tool", "tool": "tool"}
_CORRECTNESS = {"correct": 1.0, "error": 0.0, "incorrect": 0.0}
_STEP_POSITION_KEYS = {"step_idx"}  # where a step sits, not how good it is


@dataclass(frozen=True)
class GalleryOutput:
    response: Response
    label: dict[str, Any]
    path: str  # "output[i]", for errors found when the outputs are compared


@dataclass(frozen=True)
class GallerySample:
    task: Task
    messages: list[ChatMessage]
    responses: list[Response]
    preference: int | None
    reference: str | None
    metadata: dict[str, Any]
    digest: str


def _number(value: Any) -> bool:
    return is_finite_number(value)


def _mapping(
    parent: Mapping[str, Any], field: str, path: str, *, optional: bool = False
) -> Mapping[str, Any]:
    value = parent.get(field) if optional else require_field(parent, field, path)
    if optional and value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RowError(path, f"expected an object, got {type(value).__name__}")
    return value


def read_step_label(label: Mapping[str, Any], path: str) -> float | None:
    if "correctness" in label:
        if not isinstance(label["correctness"], str) or label["correctness"] not in _CORRECTNESS:
            raise RowError(
                f"{path}.correctness", f"expected one of {sorted(_CORRECTNESS)}, got {label['correctness']!r}"
            )
        return _CORRECTNESS[label["correctness"]]
    for key in ("score", "label"):
        if key in label:
            if not (_number(label[key]) or isinstance(label[key], bool)):
                raise RowError(f"{path}.{key}", f"expected a number or a boolean, got {label[key]!r}")
            return float(label[key])
    if set(label) - _STEP_POSITION_KEYS:
        raise RowError(path, f"no step label rmforge reads (correctness, score, label) among {sorted(label)}")
    return None


def read_steps(output: Mapping[str, Any], path: str) -> list[Step] | None:
    steps = output.get("steps")
    if steps is None:
        return None
    if not isinstance(steps, list):
        raise RowError(f"{path}.steps", f"expected a list, got {type(steps).__name__}")
    read = []
    for index, step in enumerate(steps):
        step_path = f"{path}.steps[{index}]"
        if not isinstance(step, Mapping):
            raise RowError(step_path, f"expected an object, got {type(step).__name__}")
        content = require_text(step, "content", f"{step_path}.content").strip()
        label = read_step_label(
            _mapping(step, "label", f"{step_path}.label", optional=True), f"{step_path}.label"
        )
        read.append(Step(content=content, label=label))
    return read or None


def read_output(output: Any, path: str) -> GalleryOutput:
    if not isinstance(output, Mapping):
        raise RowError(path, f"expected an object with an answer, got {type(output).__name__}")
    answer = _mapping(output, "answer", f"{path}.answer")
    role = require_field(answer, "role", f"{path}.answer.role")
    if role != "assistant":
        raise RowError(f"{path}.answer.role", f"expected 'assistant', got {role!r}")
    content = require_text(answer, "content", f"{path}.answer.content").strip()
    reasoning = answer.get("reasoning_content")
    message = ChatMessage(
        role="assistant",
        content=content,
        reasoning=reasoning if isinstance(reasoning, str) and reasoning else None,
    )
    label = dict(_mapping(answer, "label", f"{path}.answer.label", optional=True))
    for key, value in sorted(label.items()):
        # A number that is not finite (NaN, Infinity, an integer past float range) is a broken
        # label, not a missing one: dropping it would keep the row with a label quietly lost.
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not _number(value):
            raise RowError(f"{path}.answer.label.{key}", f"expected a finite number, got {value!r:.40}")
    scores = {key: float(value) for key, value in label.items() if _number(value)}
    return GalleryOutput(Response(message=message, steps=read_steps(output, path), label=scores), label, path)


def _is_chosen(output: GalleryOutput) -> bool:
    path = f"{output.path}.answer.label"
    preference, is_preferred = output.label.get("preference"), output.label.get("is_preferred")
    if preference is not None and preference not in ("chosen", "rejected"):
        raise RowError(f"{path}.preference", f"expected 'chosen' or 'rejected', got {preference!r}")
    if is_preferred is not None and not isinstance(is_preferred, bool):
        raise RowError(f"{path}.is_preferred", f"expected true or false, got {is_preferred!r}")
    if preference is None and is_preferred is None:
        raise RowError(f"{path}.preference", "missing: the other outputs are labelled chosen / rejected")
    if preference is not None and is_preferred is not None and (preference == "chosen") != is_preferred:
        raise RowError(f"{path}.is_preferred", f"{is_preferred} contradicts preference {preference!r}")
    return preference == "chosen" if preference is not None else is_preferred


def _labelled(output: GalleryOutput, key: str, value: float) -> Response:
    return output.response.model_copy(update={"label": {**output.response.label, key: value}})


def _preference_sample(outputs: list[GalleryOutput]) -> tuple[Task, list[Response], int | None]:
    chosen = [_is_chosen(output) for output in outputs]
    if len(outputs) < 2:
        raise RowError("output", "a chosen / rejected label needs at least two outputs, got 1")
    uses_is_preferred = all("preference" not in output.label for output in outputs)
    if len(outputs) == 2 and not any(chosen) and uses_is_preferred:
        return "pairwise", [output.response for output in outputs], None  # the HelpSteer3 loader's tie
    if all(chosen) or not any(chosen):
        raise RowError(
            "output", f"needs a chosen and a rejected output, got {sum(chosen)} chosen of {len(chosen)}"
        )
    if len(outputs) == 2:
        return "pairwise", [output.response for output in outputs], chosen.index(True)
    responses = [_labelled(output, "chosen", float(is_chosen)) for output, is_chosen in zip(outputs, chosen)]
    return "listwise", responses, chosen.index(True) if sum(chosen) == 1 else None


def _rank_sample(outputs: list[GalleryOutput]) -> tuple[Task, list[Response], int | None]:
    ranks = []
    for output in outputs:
        rank = output.label.get("rank")
        if not (_number(rank) and float(rank).is_integer() and rank >= 1):
            raise RowError(
                f"{output.path}.answer.label.rank", f"expected an integer >= 1 (1 the best), got {rank!r}"
            )
        ranks.append(int(rank))
    if len(outputs) < 2:
        raise RowError("output", "a rank label needs at least two outputs, got 1")
    best = min(ranks)
    preference = ranks.index(best) if ranks.count(best) == 1 else None
    return (
        "listwise",
        [_labelled(output, "rank", float(rank)) for output, rank in zip(outputs, ranks)],
        preference,
    )


def read_reference(outputs: list[GalleryOutput]) -> str | None:
    references = set()
    for output in outputs:
        reference = output.label.get("reference")
        if reference is None:
            continue
        if not isinstance(reference, str) or not reference.strip():
            raise RowError(
                f"{output.path}.answer.label.reference", f"expected a non-empty string, got {reference!r}"
            )
        references.add(reference)
    if len(references) > 1:
        raise RowError("output", f"the outputs name {len(references)} different references")
    return references.pop() if references else None


def _check_labelled(output: GalleryOutput) -> None:
    steps = output.response.steps or []
    if not (
        output.response.label
        or output.label.get("reference") is not None
        or any(s.label is not None for s in steps)
    ):
        raise RowError(
            f"{output.path}.answer.label", "no label: no number, preference, rank, reference or step label"
        )


def _classify(outputs: list[GalleryOutput]) -> tuple[Task, list[Response], int | None]:
    """(task, responses, preference) from how the outputs are labelled."""
    if any("preference" in output.label or "is_preferred" in output.label for output in outputs):
        return _preference_sample(outputs)
    if any("rank" in output.label for output in outputs):
        return _rank_sample(outputs)
    for output in outputs:
        _check_labelled(output)
    return "pointwise", [output.response for output in outputs], None


def read_rm_gallery_row(row: Mapping[str, Any]) -> GallerySample:
    if "evaluation_sample" in row and "input" not in row:
        raise RowError(
            "input", "missing: this is RM-Gallery's early evaluation_sample schema (format hh_rlhf)"
        )
    unique_id = require_text(row, "unique_id")
    messages = require_messages(row, "input", GALLERY_ROLES)
    check_prompt(messages, "input")
    raw_outputs = require_field(row, "output")
    if not isinstance(raw_outputs, list) or not raw_outputs:
        raise RowError("output", f"expected a non-empty list of outputs, got {raw_outputs!r:.60}")
    outputs = [read_output(output, f"output[{index}]") for index, output in enumerate(raw_outputs)]
    reference = read_reference(outputs)
    task, responses, preference = _classify(outputs)
    if task == "pairwise":
        check_pair(
            messages,
            responses[0].text,
            responses[1].text,
            ("output[0].answer.content", "output[1].answer.content"),
        )
    metadata = {
        "rm_gallery_id": unique_id,
        **{
            f"rm_gallery_{key}": row[key]
            for key in ("source", "task_category")
            if isinstance(row.get(key), str)
        },
        "rm_gallery_labels": [output.label for output in outputs],
    }
    digest = content_digest(
        {
            "input": conversation_key(messages),
            "responses": [response.model_dump(mode="json") for response in responses],
            "preference": preference,
            "reference": reference,
        }
    )
    return GallerySample(task, messages, responses, preference, reference, metadata, digest)


def gallery_samples(
    dataset: str, record: GallerySample, test_fraction: float, row_index: int
) -> list[Sample]:
    common = {"raw_row_indices": [row_index], "reference": record.reference}
    if record.task == "pairwise":
        responses = (record.responses[0], record.responses[1])
        return swapped_pair_samples(
            dataset,
            record.digest,
            "pair",
            record.messages,
            responses,
            record.preference,
            None,
            test_fraction,
            record.metadata,
            **common,
        )
    if record.task == "listwise":
        return [
            listwise_sample(
                dataset,
                record.digest,
                record.messages,
                record.responses,
                record.preference,
                test_fraction,
                record.metadata,
                **common,
            )
        ]
    return [
        pointwise_sample(
            dataset,
            content_digest([record.digest, index]),
            record.messages,
            response,
            test_fraction,
            {**record.metadata, "rm_gallery_output_index": index},
            **common,
        )
        for index, response in enumerate(record.responses)
    ]


def convert_rm_gallery(dataset: str, rows: list[Any], test_fraction: float) -> ConversionStream:
    """Each valid DataSample → a swapped pair, one listwise sample, or a pointwise sample per output."""
    return convert_each_row(dataset, rows, test_fraction, read_rm_gallery_row, gallery_samples)
