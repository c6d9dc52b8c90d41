"""The benchmark item model: one prompt of a benchmark with its responses in the benchmark's order.

Every benchmark is normalised to the same shape: `responses[:n_correct]` are the correct (chosen)
responses and the rest are incorrect (rejected), each list in the benchmark's own order, because
the scoring rules index into that order:

| benchmark        | responses                                              | n_correct   |
|------------------|--------------------------------------------------------|-------------|
| `rm_bench`       | chosen[0..2] then rejected[0..2] (concise, detailed, markdown) | 3    |
| `reward_bench_2` | chosen then rejected, as in the row                    | num_correct |
| `rmb_pairwise`   | chosen, reject                                         | 1           |
| `rmb_bon`        | bon_best, then loser_list                              | 1           |
| `judge_bench`    | the labelled better response, then the other           | 1           |

(JudgeBench's own A/B order is kept in the item's metadata, `a_index`: which response was A.)

A score table (`ScoreTable`) maps an item id to one score per response in that same order; a
None score is a failed or unparseable judgement and always counts as wrong.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rm_rewards.core.schema import ChatMessage, Response, RewardResult, Sample

BenchmarkName = Literal["rm_bench", "reward_bench_2", "rmb_pairwise", "rmb_bon", "judge_bench"]
BENCHMARK_NAMES: tuple[str, ...] = ("rm_bench", "reward_bench_2", "rmb_pairwise", "rmb_bon", "judge_bench")

# item id -> one score per response (item order); None = the judgement failed.
ScoreTable = Mapping[str, Sequence[float | None]]


class BenchmarkItem(BaseModel):
    """One benchmark prompt with its candidate responses, correct ones first.

    `domain` is what the benchmark reports by: the RM-Bench domain (from the file name, e.g.
    "safety-refuse"), the RewardBench 2 subset (e.g. "Ties"), the RMB category path without its
    `Pairwise_set/` / `BoN_set/` prefix (e.g. "Helpfulness/Chat/Discussion"), or the JudgeBench
    category its `source` starts with (e.g. "mmlu-pro" for "mmlu-pro-physics").
    """

    model_config = ConfigDict(extra="forbid")

    benchmark: BenchmarkName
    id: str
    domain: str
    input: list[ChatMessage]
    responses: list[str]
    n_correct: int
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_both_kinds(self) -> BenchmarkItem:
        if not 1 <= self.n_correct < len(self.responses):
            raise ValueError(
                f"item {self.id!r}: needs at least one correct and one incorrect response, "
                f"got n_correct={self.n_correct} of {len(self.responses)}"
            )
        return self

    @property
    def correct(self) -> list[str]:
        return self.responses[: self.n_correct]

    @property
    def incorrect(self) -> list[str]:
        return self.responses[self.n_correct :]


def sample_id_for(item: BenchmarkItem) -> str:
    """The id of the `Sample` made from an item; unique across benchmarks."""
    return f"{item.benchmark}:{item.id}"


def item_to_sample(item: BenchmarkItem) -> Sample:
    """All responses of an item in one sample, so a reward scores them side by side.

    `preference` is set only when exactly one response is correct (index 0); RM-Bench items have
    three correct responses, which one index cannot say, so `metadata["n_correct"]` carries it.
    """
    return Sample(
        id=sample_id_for(item),
        source=item.benchmark,
        task="pairwise" if len(item.responses) == 2 else "listwise",
        split="test",
        input=item.input,
        responses=[Response(message=ChatMessage(role="assistant", content=text)) for text in item.responses],
        preference=0 if item.n_correct == 1 else None,
        metadata={
            "benchmark": item.benchmark,
            "item_id": item.id,
            "domain": item.domain,
            "n_correct": item.n_correct,
            **item.metadata,
        },
    )


def items_to_samples(items: Sequence[BenchmarkItem]) -> list[Sample]:
    return [item_to_sample(item) for item in items]


def scores_from_results(
    items: Sequence[BenchmarkItem], results: Sequence[RewardResult]
) -> dict[str, list[float | None]]:
    """A score table from reward results on `items_to_samples(items)`.

    A response whose scoring failed, or a result with a sample-level error, gives None scores
    (counted wrong by the scorers). Items without a result are left out of the table; the scorers
    count them as missing and wrong. A result for an unknown sample or with the wrong number of
    scores is a mismatch between items and results, so it raises.
    """
    by_sample_id = {sample_id_for(item): item for item in items}
    table: dict[str, list[float | None]] = {}
    for position, result in enumerate(results):
        item = by_sample_id.get(result.sample_id)
        if item is None:
            raise ValueError(f"result {position}: sample_id {result.sample_id!r} is not one of the items")
        if item.id in table:
            raise ValueError(f"result {position}: a second result for sample_id {result.sample_id!r}")
        if result.error is not None:
            table[item.id] = [None] * len(item.responses)
            continue
        if len(result.scores) != len(item.responses):
            raise ValueError(
                f"result {position} (sample_id {result.sample_id!r}): {len(result.scores)} scores "
                f"for {len(item.responses)} responses"
            )
        table[item.id] = [s.score if s.error is None else None for s in result.scores]
    return table


def clean_score(value: Any, where: str) -> float | None:
    """None and NaN (how pandas/DuckDB carry a NULL) are failures; anything else must be a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: score must be a number or None, got {value!r}")
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f"{where}: score must be finite, got {value}")
    return value
