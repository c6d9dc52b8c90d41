"""LLM judging: principles learned from preference pairs, principle-based scores, refined responses.

Every asset here calls the LLM through the `llm` resource (cached, rate-limited, retried) and
shares the `llm` pool, so parallel runs queue instead of multiplying the load on one endpoint.
Each materialization records its own calls, cache hits, retries, failures and tokens.
"""

import json
import os
from typing import NamedTuple

import dagster as dg

from rm_assets.data.assets import converted_samples
from rm_assets.metadata import table_metadata
from rm_assets.partitions import dataset_partitions
from rm_resources.llm import LLMClientResource
from rm_resources.warehouse import WarehouseResource, table_columns

# Every LLM-calling asset: per dataset, in the `llm` pool so parallel runs queue for the endpoint.
LLM_ASSET = dict(
    partitions_def=dataset_partitions, group_name="judging", kinds={"openai", "duckdb"}, pool="llm", code_version="1"
)


def _load_samples(warehouse, dataset: str, *, task: str | None = None, split: str | None = None):
    from rm_rewards.schema import samples_from_frame

    conditions, params = ["partition = ?"], [dataset]
    if task:
        conditions.append("task = ?")
        params.append(task)
    if split:
        conditions.append("split = ?")
        params.append(split)
    frame = warehouse.query(
        f"SELECT * FROM converted_samples WHERE {' AND '.join(conditions)} ORDER BY sample_id", params
    )
    return samples_from_frame(frame)


def _budget(samples: list, limit: int | None) -> list:
    """The first `limit` samples in sample-id order (swapped copies sort next to their original)."""
    return samples if limit is None else samples[:limit]


class LearnedPrinciples(NamedTuple):
    principle_set_id: str
    scenario: str
    principles: list[str]

    def judge_params(self) -> dict:
        """Judge fields for these principles; none when nothing survived (judges use their defaults)."""
        return {"scenario": self.scenario, "principles": self.principles} if self.principles else {}


def learned_principles(warehouse, dataset: str) -> LearnedPrinciples | None:
    """The principle set `auto_principles` learned for this dataset partition, or None."""
    frame = warehouse.query(
        "SELECT principle_set_id, scenario, principles_json FROM principle_sets WHERE partition = ?", [dataset]
    )
    if frame.empty:
        return None
    return LearnedPrinciples(frame["principle_set_id"][0], frame["scenario"][0], json.loads(frame["principles_json"][0]))


def _usage_metadata(client, before) -> dict:
    return (client.stats.snapshot() - before).as_metadata()


def local_budget(items: int) -> int | None:
    """Default item budget: small on the embedded 135M model (local profile), everything elsewhere."""
    return items if os.environ.get("RMFORGE_PROFILE", "local") == "local" else None


class PrincipleConfig(dg.Config):
    max_pairs: int | None = local_budget(2)  # labelled training pairs to learn from; None = all
    max_rounds: int = 1 if local_budget(1) else 3
    max_themes: int = 5
    scenario: str = "Answer the user's request helpfully, honestly and harmlessly."


@dg.asset(
    **LLM_ASSET,
    deps=[converted_samples],
    description="Principles learned from the partition's preference pairs (propose → evaluate → revise → "
    "select → merge), with provenance and judge agreement before and after.",
)
def auto_principles(
    context: dg.AssetExecutionContext, config: PrincipleConfig, warehouse: WarehouseResource, llm: LLMClientResource
) -> dg.MaterializeResult:
    import pandas as pd

    from rm_rewards.principles import PrincipleSettings, generate_principles

    dataset = context.partition_key
    store = warehouse.get_warehouse()
    pairs = [s for s in _load_samples(store, dataset, task="pairwise", split="train") if s.preference is not None]
    pairs = [s for s in pairs if not s.metadata.get("swapped")]  # the loop needs each pair once
    pairs = _budget(pairs, config.max_pairs)
    client = llm.get_client()
    before = client.stats.snapshot()
    settings = PrincipleSettings(scenario=config.scenario, max_rounds=config.max_rounds, max_themes=config.max_themes)
    principle_set = generate_principles(pairs, client, settings)
    provenance = principle_set.provenance

    row = pd.DataFrame([{
        "principle_set_id": principle_set.id,
        "scenario": principle_set.scenario,
        "principles_json": json.dumps(principle_set.principles, ensure_ascii=False),
        "provenance_json": provenance.model_dump_json(),
        "model": provenance.model,
        "run_id": context.run_id,
    }])
    store.replace_partition("principle_sets", dataset, row)
    agreement = {
        "agreement_before": provenance.agreement_before.rate if provenance.agreement_before else None,
        "agreement_after": provenance.agreement_after.rate if provenance.agreement_after else None,
    }
    return dg.MaterializeResult(
        metadata={
            "principle_set_id": principle_set.id,
            "principles": dg.MetadataValue.md("\n".join(f"{i}. {p}" for i, p in enumerate(principle_set.principles, 1))
                                              or "_no principle survived_"),
            "model": provenance.model,
            "pairs_used": len(provenance.pairs_used),
            "llm_failures": len(provenance.failures),
            "stopped_early": provenance.stopped_early,
            **{k: round(v, 4) for k, v in agreement.items() if v is not None},
            **_usage_metadata(client, before),
        },
        data_version=dg.DataVersion(principle_set.id),
    )


class LLMScoreConfig(dg.Config):
    max_samples: int | None = local_budget(6)  # per partition; None = all


@dg.asset(
    **LLM_ASSET,
    deps=[converted_samples, auto_principles],
    description="Principle-based LLM judge scores: pairwise samples judged in both orders (position "
    "inconsistency reported), pointwise samples graded 0-4; one row per sample × judge.",
)
def llm_scores(
    context: dg.AssetExecutionContext, config: LLMScoreConfig, warehouse: WarehouseResource, llm: LLMClientResource
) -> dg.MaterializeResult:
    import pandas as pd

    from rm_rewards.judges import PairwiseJudge, PointwiseJudge
    from rm_rewards.scoring import SCORE_ROW_COLUMNS, result_to_row, score_samples, summarize

    dataset = context.partition_key
    store = warehouse.get_warehouse()
    samples = _budget(_load_samples(store, dataset), config.max_samples)
    learned = learned_principles(store, dataset)
    principle_set_id = learned.principle_set_id if learned else None
    principles = learned.judge_params() if learned else {}

    client = llm.get_client()
    before = client.stats.snapshot()
    judges = [
        PairwiseJudge(client=client, **principles).named("principle_pairwise_judge"),
        PointwiseJudge(client=client, **principles).named("principle_pointwise_judge"),
    ]
    pointwise = [s for s in samples if s.task == "pointwise"]
    pairwise = [s for s in samples if s.task != "pointwise"]
    results = score_samples(pairwise, judges[:1]) + score_samples(pointwise, judges[1:])

    hashes = {s.id: s.content_hash() for s in samples}
    frame = pd.DataFrame(
        [result_to_row(r, hashes[r.sample_id]) for r in results], columns=list(SCORE_ROW_COLUMNS)
    ).assign(principle_set_id=principle_set_id, model=client.config.model, run_id=context.run_id)
    store.replace_partition("llm_scores", dataset, frame)
    inconsistent = sum(int(r.metadata.get("position_inconsistent", 0)) for r in results)
    return dg.MaterializeResult(
        metadata=table_metadata(
            "llm_scores",
            frame,
            principle_set_id=principle_set_id or "none (default principles)",
            model=client.config.model,
            samples=len(samples),
            results_with_errors=sum(int(v["errors"]) for v in summarize(results).values()),
            position_inconsistent_pairs=inconsistent,
            **_usage_metadata(client, before),
        )
    )


class RefinementConfig(dg.Config):
    max_samples: int | None = local_budget(2)
    max_rounds: int = 1 if local_budget(1) else 3


def refinement_candidates(samples: list) -> list:
    """What to refine: pointwise responses as they are, and the rejected answer of each labelled pair
    (once per pair, not again for its swapped copy) as a one-response sample."""
    candidates = []
    for sample in samples:
        if sample.task == "pointwise":
            candidates.append(sample)
        elif sample.preference is not None and not sample.metadata.get("swapped") and len(sample.responses) == 2:
            rejected = sample.responses[1 - sample.preference]
            candidates.append(
                sample.model_copy(
                    update={"id": f"{sample.id}-rejected", "task": "pointwise", "responses": [rejected],
                            "preference": None, "preference_strength": None,
                            "metadata": {**sample.metadata, "source_sample_id": sample.id}}
                )
            )
    return candidates


@dg.asset(
    **LLM_ASSET,
    deps=[converted_samples, auto_principles],
    description="Responses improved by critique-and-rewrite rounds; every round kept with its score.",
)
def refined_samples(
    context: dg.AssetExecutionContext, config: RefinementConfig, warehouse: WarehouseResource, llm: LLMClientResource
) -> dg.MaterializeResult:
    import pandas as pd

    from rm_rewards.judges import PointwiseJudge
    from rm_rewards.refinement import RefinementSettings, refine_batch

    dataset = context.partition_key
    store = warehouse.get_warehouse()
    candidates = _budget(refinement_candidates(_load_samples(store, dataset)), config.max_samples)
    learned = learned_principles(store, dataset)
    principles = learned.judge_params() if learned else {}

    client = llm.get_client()
    before = client.stats.snapshot()
    judge = PointwiseJudge(client=client, **principles).named("principle_pointwise_judge")
    results = refine_batch(candidates, judge, client, RefinementSettings(max_rounds=config.max_rounds))

    by_id = {s.id: s for s in candidates}
    rows = []
    for result in results:
        for refinement_round in result.rounds:
            rows.append({
                "sample_id": result.sample_id,
                "source_sample_id": by_id[result.sample_id].metadata.get("source_sample_id", result.sample_id),
                "round": refinement_round.round,
                "response_json": json.dumps(refinement_round.response, ensure_ascii=True),
                "score": refinement_round.score,
                "critique": refinement_round.critique,
                "error": refinement_round.error,
                "is_best": refinement_round.round == result.best_round,
                "stop_reason": result.stop_reason,
                "judge": result.judge,
                "run_id": context.run_id,
            })
    frame = pd.DataFrame(rows, columns=table_columns("refined_samples"))
    store.replace_partition("refined_samples", dataset, frame)
    improved = sum(1 for r in results if r.best_round not in (None, 0))
    return dg.MaterializeResult(
        metadata=table_metadata(
            "refined_samples",
            frame,
            samples_refined=len(results),
            improved=improved,
            stop_reasons=dg.MetadataValue.json(
                {reason: sum(1 for r in results if r.stop_reason == reason) for reason in {r.stop_reason for r in results}}
            ),
            **_usage_metadata(client, before),
        )
    )

