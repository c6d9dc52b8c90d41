"""training_pairs: the curated preference set reward models train on.

Built per dataset from the converted pairs, their rule and LLM scores and the refinements, by the
curation policy in `rm_rewards.curation.curate` (human pairs once each, data correction against the judge,
refined pairs, rule gates). Every row says why it is there and what decided it.
"""

from typing import Literal

import dagster as dg

from rm_assets.data.assets import converted_samples, rule_scores
from rm_assets.judging.assets import llm_scores, refined_samples
from rm_assets.metadata import table_metadata
from rm_assets.partitions import dataset_partitions
from rm_assets.versions import code_version
from rm_resources.warehouse import WarehouseResource


def _policy_default(field: str):
    from rm_rewards.curation.curate import CurationPolicy

    return CurationPolicy.model_fields[field].get_default(call_default_factory=True)


class RuleGateConfig(dg.Config):
    """Drop or flag a pair whose chosen response scores below `below` on the rule reward `reward`."""

    reward: str
    below: float
    action: Literal["drop", "flag"]


class CurationConfig(dg.Config):
    """The curation policy as run config; defaults (and their documentation) are
    `rm_rewards.curation.curate.CurationPolicy`'s."""

    on_contradiction: Literal["flag", "drop", "keep", "relabel"] = _policy_default("on_contradiction")
    refined_margin: float = _policy_default("refined_margin")
    rule_gates: list[RuleGateConfig] = [gate.model_dump() for gate in _policy_default("rule_gates")]

    def policy(self):
        from rm_rewards.curation.curate import CurationPolicy, RuleGate

        gates = [RuleGate.model_validate(g if isinstance(g, dict) else dict(g)) for g in self.rule_gates]
        return CurationPolicy(on_contradiction=self.on_contradiction, refined_margin=self.refined_margin,
                              rule_gates=gates)


@dg.asset(
    partitions_def=dataset_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),  # one run per partition: bodies read context.partition_key
    deps=[converted_samples, rule_scores, llm_scores, refined_samples],
    group_name="curation",
    kinds={"duckdb"},
    code_version=code_version("rm_assets.curation.assets", "rm_rewards.curation.curate", "rm_rewards.curation.pairs"),
    description="The curated preference pairs reward models train on: human pairs once each, checked "
    "against the LLM judge (flag/drop/keep/relabel), refined pairs that beat their original, rule gates; "
    "each row with its reason, decision, source samples, raw row hashes and the score rows that decided it.",
)
def training_pairs(
    context: dg.AssetExecutionContext, config: CurationConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    from rm_rewards.curation.curate import curate
    from rm_rewards.curation.pairs import fold_pairs

    dataset = context.partition_key
    store = warehouse.get_store()
    samples = store.read_samples(dataset)
    pairs, skipped = fold_pairs([s for s in samples if s.task == "pairwise"])
    scores = store.read_score_records("rule_scores", dataset) + store.read_score_records("llm_scores", dataset)
    refinements = store.read_refinements(dataset)
    policy = config.policy()
    result = curate(pairs, {s.id: s for s in samples}, scores, refinements, policy)
    version = store.write_training_pairs(dataset, result.pairs, policy.policy_hash(), context.run_id)
    counts = result.counts()
    return dg.MaterializeResult(
        metadata=table_metadata(
            "training_pairs",
            store.read_partition("training_pairs", dataset, order_by="pair_id"),
            policy=dg.MetadataValue.json(policy.model_dump(mode="json")),
            counts_by_reason=dg.MetadataValue.json(counts["by_reason"]),
            counts_by_decision=dg.MetadataValue.json(counts["by_decision"]),
            human_pairs=len(pairs),
            samples_not_paired=len(skipped),
            examples=dg.MetadataValue.md(result.examples_markdown(limit=5)),
            content_version=version,
        ),
        data_version=dg.DataVersion(version),
    )
