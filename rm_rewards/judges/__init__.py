"""Principle-based LLM judges (rewards of every kind), their prompt templates, and the alignment set.

- `templates`: prompt templates as data and the output models that check every answer;
- `judges`: `PointwiseJudge`, `PairwiseJudge` (both orders), `ListwiseJudge`, `StepwiseJudge`;
- `alignment`: the registered alignment judges (helpfulness, harmlessness, honesty, safety,
  factuality, 15 helpfulness scenarios) and the generic `llm_<kind>_judge` entries.
"""

from rm_rewards.judges.alignment import ALIGNMENT_SPECS, AlignmentSpec, make_judge, spec_for
from rm_rewards.judges.judges import (
    POSITION_INCONSISTENT,
    JudgeCallError,
    JudgePairVerdict,
    ListwiseJudge,
    LLMJudge,
    OrderVerdict,
    PairwiseJudge,
    PointwiseJudge,
    StepwiseJudge,
    pair_metadata,
    presentation_order,
)
from rm_rewards.judges.templates import (
    LISTWISE_TEMPLATE,
    PAIRWISE_TEMPLATE,
    POINTWISE_TEMPLATE,
    STEPWISE_TEMPLATE,
    JudgeTemplate,
)

__all__ = [
    "ALIGNMENT_SPECS",
    "LISTWISE_TEMPLATE",
    "PAIRWISE_TEMPLATE",
    "POINTWISE_TEMPLATE",
    "POSITION_INCONSISTENT",
    "STEPWISE_TEMPLATE",
    "AlignmentSpec",
    "JudgeCallError",
    "JudgePairVerdict",
    "JudgeTemplate",
    "LLMJudge",
    "ListwiseJudge",
    "OrderVerdict",
    "PairwiseJudge",
    "PointwiseJudge",
    "StepwiseJudge",
    "make_judge",
    "pair_metadata",
    "presentation_order",
    "spec_for",
]
