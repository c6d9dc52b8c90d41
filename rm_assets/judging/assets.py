"""LLM judging: principles learned from preference pairs, principle-based scores, refined responses.

Every asset here calls the LLM through the `llm` resource (cached, rate-limited, retried) and
shares the `llm` pool, so parallel runs queue instead of multiplying the load on one endpoint.
Each materialization records its own calls, cache hits, retries, failures and tokens.
"""

import dagster as dg
from pydantic import Field

from rm_assets.data.assets import converted_samples
from rm_assets.metadata import table_metadata
from rm_assets.partitions import dataset_partitions
from rm_assets.versions import code_version
from rm_resources.llm import LLMClientResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.warehouse import WarehouseResource

_JUDGING_CODE = ("rm_assets.judging.assets", "rm_rewards.judging.judges", "rm_rewards.judging.alignment", "rm_rewards.judging.templates", "rm_rewards.llm", "rm_rewards.core.kinds",
                 "rm_rewards.core.schema")

# Every LLM-calling asset: per dataset, in the `llm` pool so parallel runs queue for the endpoint.
LLM_ASSET = dict(partitions_def=dataset_partitions, group_name="judging", kinds={"openai", "duckdb"}, pool="llm",
                 backfill_policy=dg.BackfillPolicy.multi_run(1))  # one run per partition, as in rm_assets/data


def _budget(samples: list, limit: int | None) -> list:
    """The first `limit` samples in sample-id order (swapped copies sort next to their original)."""
    return samples if limit is None else samples[:limit]


def judge_principles(principle_set) -> tuple[dict, str | None, str]:
    """(judge fields, principle-set id, source) for a learned set: its principles when any survived,
    else the judges' default principles, and the choice said in words (the same words the
    principles benchmark judge uses)."""
    from rm_rewards.benchmarks.model_keys import PRINCIPLES_DEFAULT, PRINCIPLES_LEARNED

    if principle_set is None:
        return {}, None, "default (no principle set learned for this dataset)"
    if not principle_set.principles:
        return {}, principle_set.id, PRINCIPLES_DEFAULT
    return {"scenario": principle_set.scenario, "principles": principle_set.principles}, principle_set.id, PRINCIPLES_LEARNED


def _usage_metadata(client, before) -> dict:
    return (client.stats.snapshot() - before).as_metadata()


# Budgets: a config field left unset (None) takes the `llm` resource's budget (LLMClientResource.items
# and .rounds): these small numbers on the embedded 135M model (local profile), everything in
# production. 0 asks for every item whatever the budget.
BUDGET_NOTE = "None: the llm resource's budget (small: {small}; full: all); 0: all"


class PrincipleConfig(dg.Config):
    max_pairs: int | None = Field(default=None, description="Labelled training pairs to learn from; "
                                  + BUDGET_NOTE.format(small=2))
    max_rounds: int | None = Field(default=None, description="None: 1 on the small budget, 3 on the full one")
    max_themes: int = 5
    scenario: str = "Answer the user's request helpfully, honestly and harmlessly."


@dg.asset(
    **LLM_ASSET,
    deps=[converted_samples],
    code_version=code_version(*_JUDGING_CODE, "rm_rewards.judging.principles", "rm_rewards.judging.embeddings", "rm_rewards.curation.pairs"),
    description="Principles learned from the partition's preference pairs (propose → evaluate → revise → "
    "select → merge), with provenance and judge agreement before and after.",
)
def auto_principles(
    context: dg.AssetExecutionContext, config: PrincipleConfig, warehouse: WarehouseResource, llm: LLMClientResource
) -> dg.MaterializeResult:
    from rm_rewards.curation.pairs import fold_pairs
    from rm_rewards.judging.principles import PrincipleSettings, generate_principles

    dataset = context.partition_key
    store = warehouse.get_store()
    pairs, _skipped = fold_pairs(store.read_samples(dataset, task="pairwise", split="train"))
    samples = _budget([pair.sample for pair in pairs], llm.items(config.max_pairs, small=2))
    client = llm.get_client()
    before = client.stats.snapshot()
    settings = PrincipleSettings(scenario=config.scenario, max_rounds=llm.rounds(config.max_rounds),
                                 max_themes=config.max_themes)
    principle_set = generate_principles(samples, client, settings)
    provenance = principle_set.provenance
    store.write_principle_set(dataset, principle_set, context.run_id)

    agreement = {
        "agreement_before": provenance.agreement_before.rate if provenance.agreement_before else None,
        "agreement_after": provenance.agreement_after.rate if provenance.agreement_after else None,
    }
    return dg.MaterializeResult(
        metadata={
            "principle_set_id": principle_set.id,
            "principles": dg.MetadataValue.md("\n".join(f"{i}. {p}" for i, p in enumerate(principle_set.principles, 1))
                                              or "_no principle survived: the judges use their default principles_"),
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
    max_samples: int | None = Field(default=None, description="Samples per partition; " + BUDGET_NOTE.format(small=6))


@dg.asset(
    **LLM_ASSET,
    deps=[converted_samples, auto_principles],
    code_version=code_version(*_JUDGING_CODE, "rm_rewards.core.apply", "rm_resources.ray_scoring"),
    description="Principle-based LLM judge scores with the principles auto_principles learned for the "
    "partition (the defaults when none survived, said on every row): pairwise samples judged in both orders "
    "(position inconsistency reported), pointwise samples graded 0-4; one row per sample × judge.",
)
def llm_scores(
    context: dg.AssetExecutionContext,
    config: LLMScoreConfig,
    warehouse: WarehouseResource,
    llm: LLMClientResource,
    ray: RayClusterResource,
) -> dg.MaterializeResult:
    from rm_rewards.core.apply import summarize

    dataset = context.partition_key
    store = warehouse.get_store()
    samples = _budget(store.read_samples(dataset), llm.items(config.max_samples, small=6))
    principles, principle_set_id, principles_source = judge_principles(store.read_principle_set(dataset))

    run = ray.judge(samples, llm.get_client(), principles)  # in process or on Ray, by the resource's mode
    results = run.results
    frame = store.write_scores(
        "llm_scores", dataset, results, samples, context.run_id,
        principle_set_id=principle_set_id, principles_source=principles_source, model=run.model,
        template_version=run.template_version,
    )
    inconsistent = sum(int(r.metadata.get("position_inconsistent", 0)) for r in results)
    return dg.MaterializeResult(
        metadata=table_metadata(
            "llm_scores",
            frame,
            principle_set_id=principle_set_id or "none",
            principles_source=principles_source,
            model=run.model,
            samples=len(samples),
            scoring=ray.describe_scoring(),
            results_with_errors=sum(int(v["errors"]) for v in summarize(results).values()),
            position_inconsistent_pairs=inconsistent,
            **run.usage.as_metadata(),
        )
    )


class RefinementConfig(dg.Config):
    max_samples: int | None = Field(default=None, description="Responses to refine; " + BUDGET_NOTE.format(small=2))
    max_rounds: int | None = Field(default=None, description="None: 1 on the small budget, 3 on the full one")


@dg.asset(
    **LLM_ASSET,
    deps=[converted_samples, auto_principles],
    code_version=code_version(*_JUDGING_CODE, "rm_rewards.judging.refinement", "rm_rewards.curation.pairs"),
    description="Responses improved by critique-and-rewrite rounds with the learned principles (pointwise "
    "responses, and the rejected answer of each labelled pair); every round kept with its score.",
)
def refined_samples(
    context: dg.AssetExecutionContext, config: RefinementConfig, warehouse: WarehouseResource, llm: LLMClientResource
) -> dg.MaterializeResult:
    from rm_rewards.judging.judges import PointwiseJudge
    from rm_rewards.judging.refinement import RefinementSettings, refine_batch, refinement_candidates

    dataset = context.partition_key
    store = warehouse.get_store()
    candidates = _budget(refinement_candidates(store.read_samples(dataset)), llm.items(config.max_samples, small=2))
    principles, _principle_set_id, principles_source = judge_principles(store.read_principle_set(dataset))

    client = llm.get_client()
    before = client.stats.snapshot()
    judge = PointwiseJudge(client=client, **principles).named("principle_pointwise_judge")
    results = refine_batch(candidates, judge, client, RefinementSettings(max_rounds=llm.rounds(config.max_rounds)))
    sources = {s.id: s.metadata.get("source_sample_id", s.id) for s in candidates}
    frame = store.write_refinements(dataset, results, sources, context.run_id)
    improved = sum(1 for r in results if r.best_round not in (None, 0))
    return dg.MaterializeResult(
        metadata=table_metadata(
            "refined_samples",
            frame,
            samples_refined=len(results),
            improved=improved,
            principles_source=principles_source,
            stop_reasons=dg.MetadataValue.json(
                {reason: sum(1 for r in results if r.stop_reason == reason) for reason in {r.stop_reason for r in results}}
            ),
            **_usage_metadata(client, before),
        )
    )
