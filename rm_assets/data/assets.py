"""The data slice of the lineage graph: raw rows → converted samples → rule scores.

Each asset reads its input from the warehouse, calls a plain function from `rm_rewards`, and
replaces its partition's rows in one transaction. Heavy work happens before the warehouse lock
is taken, so parallel runs only queue for the short write.
"""


import hashlib
import json

import dagster as dg

from rm_assets.metadata import table_metadata
from rm_assets.partitions import dataset_partitions
from rm_resources.datasets import DatasetSourceResource
from rm_resources.warehouse import WarehouseResource


def _rows_frame(rows: list[dict]):
    import pandas as pd

    records = []
    for index, row in enumerate(rows):
        # ASCII-escaped: rows with lone surrogates still store (Arrow/DuckDB need valid UTF-8).
        text = json.dumps(row, ensure_ascii=True, sort_keys=True, default=str)
        records.append(
            {"row_index": index, "row_json": text, "row_hash": hashlib.sha256(text.encode()).hexdigest()[:32]}
        )
    return pd.DataFrame(records, columns=["row_index", "row_json", "row_hash"])


def _content_version(hashes) -> str:
    digest = hashlib.sha256()
    for value in hashes:
        digest.update(str(value).encode())
    return digest.hexdigest()[:16]


@dg.asset(
    partitions_def=dataset_partitions,
    group_name="data",
    kinds={"duckdb"},
    code_version="1",
    description="Dataset rows exactly as loaded (bundled samples, local files or the HF hub).",
)
def raw_rows(
    context: dg.AssetExecutionContext, datasets: DatasetSourceResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    dataset = context.partition_key
    rows = datasets.load_rows(dataset)
    frame = _rows_frame(rows).assign(run_id=context.run_id)
    version = _content_version(frame["row_hash"])
    warehouse.get_warehouse().replace_partition("raw_rows", dataset, frame)
    return dg.MaterializeResult(
        metadata=table_metadata("raw_rows", frame, source=datasets.describe(dataset), content_hash=version),
        data_version=dg.DataVersion(version),
    )


class ConversionConfig(dg.Config):
    test_fraction: float = 0.2


@dg.asset(
    partitions_def=dataset_partitions,
    deps=[raw_rows],
    group_name="data",
    kinds={"duckdb"},
    code_version="1",
    description="Samples in rmforge's schema (pointwise and A/B-swapped pairwise), with a stable split.",
)
def converted_samples(
    context: dg.AssetExecutionContext, config: ConversionConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    import pandas as pd

    from rm_rewards.converters import convert_rows
    from rm_rewards.schema import samples_to_frame

    dataset = context.partition_key
    store = warehouse.get_warehouse()
    raw = store.read_partition("raw_rows", dataset, order_by="row_index")
    rows = [json.loads(text) for text in raw["row_json"]]
    result = convert_rows(dataset, rows, test_fraction=config.test_fraction)

    samples = samples_to_frame(result.samples).assign(run_id=context.run_id)
    quarantined = pd.DataFrame(
        [
            {"asset": "converted_samples", "row_index": q.row_index, "field": q.field, "reason": q.reason,
             "row_json": q.row_json, "run_id": context.run_id}
            for q in result.quarantined
        ],
        columns=["asset", "row_index", "field", "reason", "row_json", "run_id"],
    )
    store.replace_partitions(
        [
            ("converted_samples", dataset, samples, None),
            ("quarantine", dataset, quarantined, {"asset": "converted_samples"}),
        ]
    )
    counts = samples.groupby(["task", "split"]).size() if len(samples) else pd.Series(dtype=int)
    quarantined_rows = quarantined["row_index"].nunique()
    return dg.MaterializeResult(
        metadata=table_metadata(
            "converted_samples",
            samples,
            raw_rows=len(rows),
            quarantined_rows=int(quarantined_rows),
            quarantine_rate=round(quarantined_rows / len(rows), 4) if rows else 0.0,
            counts_by_task_and_split=dg.MetadataValue.json({f"{t}/{s}": int(n) for (t, s), n in counts.items()}),
        ),
        data_version=dg.DataVersion(_content_version(samples["sample_id"])),
    )


@dg.asset(
    partitions_def=dataset_partitions,
    deps=[converted_samples],
    group_name="scoring",
    kinds={"duckdb"},
    code_version="1",
    description="Every applicable rule-based reward on every converted sample: one row per sample × reward.",
)
def rule_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    import pandas as pd

    from rm_rewards.schema import samples_from_frame
    from rm_rewards.scoring import result_to_row, rule_rewards, score_samples, summarize

    dataset = context.partition_key
    store = warehouse.get_warehouse()
    samples = samples_from_frame(store.read_partition("converted_samples", dataset, order_by="sample_id"))
    rewards = rule_rewards()
    results = score_samples(samples, rewards)
    hashes = {s.id: s.content_hash() for s in samples}
    frame = pd.DataFrame([result_to_row(r, hashes[r.sample_id]) for r in results]).assign(run_id=context.run_id)
    store.replace_partition("rule_scores", dataset, frame)
    summary = summarize(results)
    return dg.MaterializeResult(
        metadata=table_metadata(
            "rule_scores",
            frame,
            samples=len(samples),
            rewards=dg.MetadataValue.json(sorted(r.name for r in rewards)),
            per_reward=dg.MetadataValue.md(_summary_markdown(summary)),
            results_with_errors=sum(int(v["errors"]) for v in summary.values()),
        )
    )


def _summary_markdown(summary: dict[str, dict[str, float]]) -> str:
    lines = ["| reward | samples | with errors | mean score |", "| --- | ---: | ---: | ---: |"]
    for name, entry in sorted(summary.items()):
        lines.append(f"| {name} | {int(entry['samples'])} | {int(entry['errors'])} | {entry['mean_score']} |")
    return "\n".join(lines)
