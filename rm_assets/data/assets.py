"""The data slice of the lineage graph: raw rows → converted samples → rule scores.

Each asset reads its input from the store, calls a plain function from `rm_rewards`, and
replaces its partition's rows in one transaction. Heavy work happens before the warehouse lock
is taken, so parallel runs only queue for the short write.
"""

import dagster as dg

from rm_assets.metadata import table_metadata
from rm_assets.partitions import dataset_partitions
from rm_assets.versions import code_version
from rm_resources.datasets import DatasetSourceResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.warehouse import WarehouseResource


@dg.asset(
    partitions_def=dataset_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),  # one run per partition: bodies read context.partition_key
    group_name="data",
    kinds={"duckdb"},
    code_version=code_version("rm_assets.data.assets", "rm_resources.datasets", "rm_rewards.datasets.sources",
                              "rm_rewards.datasets.catalog"),
    description="Dataset rows exactly as loaded (bundled samples, local files or the HF hub), each with "
    "its row hash.",
)
def raw_rows(
    context: dg.AssetExecutionContext, datasets: DatasetSourceResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    dataset = context.partition_key
    rows = datasets.load_rows(dataset)
    store = warehouse.get_store()
    count, version = store.write_raw_rows(dataset, rows, context.run_id)
    return dg.MaterializeResult(
        metadata=table_metadata(
            "raw_rows", store.read_partition("raw_rows", dataset, order_by="row_index"),
            source=datasets.describe(dataset), content_hash=version,
        ),
        data_version=dg.DataVersion(version),
    )


class ConversionConfig(dg.Config):
    test_fraction: float = 0.2


@dg.asset(
    partitions_def=dataset_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),  # one run per partition: bodies read context.partition_key
    deps=[raw_rows],
    group_name="data",
    kinds={"duckdb"},
    code_version=code_version("rm_assets.data.assets", "rm_rewards.datasets.convert", "rm_rewards.datasets",
                              "rm_rewards.core.schema"),
    description="Samples in rmforge's schema (pointwise and A/B-swapped pairwise), with a stable split and "
    "the raw rows each came from; bad rows go to the quarantine table.",
)
def converted_samples(
    context: dg.AssetExecutionContext,
    config: ConversionConfig,
    datasets: DatasetSourceResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from rm_rewards.datasets.convert import stream_rows

    dataset = context.partition_key
    store = warehouse.get_store()
    rows = store.read_raw_rows(dataset)
    dataset_format = datasets.info(dataset).format
    # Each sample becomes its table row as it is made: memory holds the partition's rows, not
    # its Sample objects (~8 KB each; bench/load_rules.py).
    converted = stream_rows(dataset, rows, test_fraction=config.test_fraction, format=dataset_format)
    version = store.write_converted(dataset, converted, converted.quarantined, context.run_id)

    counts = converted.counts
    quarantined_rows = len({q.row_index for q in converted.quarantined})
    return dg.MaterializeResult(
        metadata=table_metadata(
            "converted_samples",
            store.read_partition("converted_samples", dataset, order_by="sample_id"),
            format=dataset_format,
            raw_rows=len(rows),
            quarantined_rows=quarantined_rows,
            quarantine_rate=round(quarantined_rows / len(rows), 4) if rows else 0.0,
            counts_by_task_and_split=dg.MetadataValue.json(dict(sorted(counts.items()))),
        ),
        data_version=dg.DataVersion(version),
    )


@dg.asset(
    partitions_def=dataset_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),  # one run per partition: bodies read context.partition_key
    deps=[converted_samples],
    group_name="scoring",
    kinds={"duckdb"},
    code_version=code_version("rm_assets.data.assets", "rm_rewards.core.apply", "rm_rewards.rules",
                              "rm_rewards.core.kinds", "rm_rewards.sandbox", "rm_rewards.core.registry"),
    description="Every applicable rule-based reward on every converted sample: one row per sample × reward, "
    "with the reward version and the sample's content hash.",
)
def rule_scores(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, ray: RayClusterResource
) -> dg.MaterializeResult:
    from rm_rewards.core.apply import ScoreSummary, rule_rewards

    dataset = context.partition_key
    store = warehouse.get_store()
    rewards = rule_rewards()
    # Batch by batch (in process or on Ray, by the resource's mode): each batch of samples is
    # scored and its results turned into rows before the next is read, so memory holds the
    # partition's rows, not ~8 KB of sample and ~3 KB of result objects per row (bench/load_rules.py).
    scoring = ScoreSummary()
    scored = ray.score_rules_batches(store.iter_sample_batches(dataset, ray.scoring_batch_size), rewards)
    frame = store.write_score_batches(
        "rule_scores", dataset, scoring.counting(scored), context.run_id, reward_order=[r.name for r in rewards]
    )
    summary = scoring.as_dict()
    return dg.MaterializeResult(
        metadata=table_metadata(
            "rule_scores",
            frame,
            samples=scoring.n_samples,
            scoring=ray.describe_scoring(),
            rewards=dg.MetadataValue.json(sorted(r.name for r in rewards)),
            per_reward=dg.MetadataValue.md(summary_markdown(summary)),
            results_with_errors=sum(int(v["errors"]) for v in summary.values()),
        ),
        data_version=dg.DataVersion(_frame_version(frame)),
    )


def _frame_version(frame) -> str:
    from rm_resources.store import content_version

    # Row by row, each cell as `astype(str)` writes it: a whole-frame astype(str) would hold a
    # text copy of every score row at once.
    rows = frame.drop(columns=["run_id"]).itertuples(index=False)
    return content_version(tuple(str(value) for value in row) for row in rows)


def summary_markdown(summary: dict[str, dict[str, float]]) -> str:
    lines = ["| reward | samples | with errors | mean score |", "| --- | ---: | ---: | ---: |"]
    for name, entry in sorted(summary.items()):
        lines.append(f"| {name} | {int(entry['samples'])} | {int(entry['errors'])} | {entry['mean_score']} |")
    return "\n".join(lines)
