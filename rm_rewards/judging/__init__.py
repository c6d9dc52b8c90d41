"""Judging: LLM judges in principle -> critique -> score form, the principles they use, refinement
and best-of-N.

- `templates`: prompt templates as data and the output models that check every answer;
- `judges`: `PointwiseJudge`, `PairwiseJudge` (both orders), `ListwiseJudge`, `StepwiseJudge`;
- `alignment`: the registered alignment judges (helpfulness, harmlessness, honesty, safety,
  factuality, 15 helpfulness scenarios) and the generic `llm_<kind>_judge` entries;
- `principles`: principles learned from preference pairs; `embeddings`: diverse selection for them;
- `refinement`: critique-and-revise loops; `best_of_n`: keep the top n responses by any reward.
"""
