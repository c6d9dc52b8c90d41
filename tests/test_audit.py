"""`rmforge audit`: the lineage walk from a benchmark report back to raw HH-RLHF rows, and every
way a link breaks.

The chain is materialized for real in a Dagster instance: the real raw_rows, converted_samples,
rule_scores, training_pairs and leaderboard on bundled HH-RLHF rows, and stand-ins with the real
asset keys and partitions for the expensive assets (LLM judging, training, benchmarking) that write
the rows those assets write through the same store. Every node therefore has a real run, code
version and data version.
"""

import argparse
import contextlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pandas as pd
import pytest

from rm_assets import lineage
from rm_assets.benchmarks.assets import leaderboard
from rm_assets.curation.assets import training_pairs
from rm_assets.data.assets import converted_samples, raw_rows, rule_scores
from rm_assets.partitions import (
    checkpoint_report_partitions,
    dataset_partitions,
    principles_report_partitions,
    training_runs,
)
from rm_assets.serving.assets import served_model
from rm_resources.datasets import DatasetSourceResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.store import Store, table_columns
from rm_resources.warehouse import WarehouseResource
from training.bt_trainer import TrainResult

DATASET = "hh_rlhf_harmless"
RUN_KEY = "bt-audit-test"
REPORT = str(dg.MultiPartitionKey({"benchmark": "rm_bench", "run": RUN_KEY}))
PRINCIPLES_REPORT = str(dg.MultiPartitionKey({"benchmark": "rm_bench", "dataset": DATASET}))
PRINCIPLE_SET_ID = "ps-audit-test"


# --- stand-ins: the real asset keys and partitions, writing what the real assets write --------


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=table_columns(table))


@dg.asset(
    name="auto_principles", partitions_def=dataset_partitions, deps=["converted_samples"], code_version="p1"
)
def auto_principles_standin(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    row = {
        "principle_set_id": PRINCIPLE_SET_ID,
        "scenario": "Be helpful.",
        "principles_json": '["Be kind."]',
        "provenance_json": "{}",
        "model": "fake",
        "run_id": context.run_id,
    }
    warehouse.get_store().replace_partition(
        "principle_sets", context.partition_key, _frame("principle_sets", [row])
    )
    return dg.MaterializeResult(
        metadata={"principle_set_id": PRINCIPLE_SET_ID}, data_version=dg.DataVersion(PRINCIPLE_SET_ID)
    )


@dg.asset(
    name="llm_scores",
    partitions_def=dataset_partitions,
    deps=["converted_samples", "auto_principles"],
    code_version="l1",
)
def llm_scores_standin(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from rm_rewards.core import registry
    from rm_rewards.core.apply import apply_rewards

    store = warehouse.get_store()
    samples = store.read_samples(context.partition_key)[:4]
    results = apply_rewards(samples, [registry.get("length_penalty")])
    store.write_scores(
        "llm_scores",
        context.partition_key,
        results,
        samples,
        context.run_id,
        principle_set_id=PRINCIPLE_SET_ID,
        principles_source="learned",
        model="fake",
        template_version="t1",
    )


@dg.asset(
    name="refined_samples",
    partitions_def=dataset_partitions,
    deps=["converted_samples", "auto_principles"],
    code_version="r1",
)
def refined_samples_standin(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    store = warehouse.get_store()
    source = store.read_samples(context.partition_key, task="pairwise")[0]
    rejected = source.responses[1 - source.preference]
    texts = [(0, rejected.text, 1.0), (1, "A careful, kind and complete rewrite.", 3.0)]
    rows = [
        {
            "sample_id": f"{source.id}-rejected",
            "source_sample_id": source.id,
            "round": n,
            "response_json": json.dumps({"message": {"role": "assistant", "content": text}}),
            "score": score,
            "critique": "",
            "error": None,
            "is_best": n == 1,
            "stop_reason": "max_rounds",
            "judge": "fake_judge",
            "run_id": context.run_id,
        }
        for n, text, score in texts
    ]
    store.replace_partition("refined_samples", context.partition_key, _frame("refined_samples", rows))


@dg.asset(
    name="rm_checkpoints",
    partitions_def=training_runs,
    deps=[dg.AssetDep("training_pairs", partition_mapping=dg.AllPartitionMapping())],
    code_version="t1",
)
def rm_checkpoints_standin(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    store, datasets = warehouse.get_store(), [DATASET]
    result = TrainResult(final_checkpoint=f"/checkpoints/{context.partition_key}/final", steps=1, train_pairs=3,
                         eval_pairs=1, baseline_eval_accuracy=0.5, final_eval_accuracy=0.6, wall_s=0.0, history=[])
    store.write_checkpoint(
        context.partition_key, result, datasets=datasets, config={"pairs": "curated"},
        data_versions={d: store.training_pairs_version(d) for d in datasets},
        source_runs={d: store.run_ids("training_pairs", d) for d in datasets}, run_id=context.run_id,
    )
    return dg.MaterializeResult(data_version=dg.DataVersion(context.partition_key))


def _write_report(
    context, store: Store, asset: str, model_key: str, checkpoint_path: str | None = None
) -> None:
    partition = str(context.partition_key)
    rows = [
        {
            "asset": asset,
            "benchmark": "rm_bench",
            "model_key": model_key,
            "item_id": f"item-{i}",
            "domain": "chat",
            "response_index": 0,
            "is_correct": i == 0,
            "score": float(i),
            "error": None,
            "status": "scored",
            "checkpoint_path": checkpoint_path,
            "run_id": context.run_id,
        }
        for i in range(2)
    ]
    store.replace_partition(
        "benchmark_scores", partition, _frame("benchmark_scores", rows), where={"asset": asset}
    )
    summary = {
        "asset": asset,
        "benchmark": "rm_bench",
        "model_key": model_key,
        "headline_metric": "accuracy",
        "headline": 0.5,
        "status": "scored",
        "note": "",
        "summary_json": "{}",
        "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
        "run_id": context.run_id,
    }
    store.append("benchmark_summaries", partition, _frame("benchmark_summaries", [summary]))


@dg.asset(
    name="benchmark_reports",
    partitions_def=checkpoint_report_partitions,
    deps=[dg.AssetDep("rm_checkpoints", partition_mapping=dg.MultiToSingleDimensionPartitionMapping("run"))],
    code_version="b1",
)
def benchmark_reports_standin(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Writes its rows, then audits its own materialization for the report page, as the real one will."""
    store = warehouse.get_store()
    run_key = context.partition_key.keys_by_dimension["run"]
    checkpoint = store.checkpoint(run_key)
    _write_report(context, store, "benchmark_reports", f"checkpoint:{run_key}", checkpoint["path"])
    chain = lineage.audit(
        context.instance,
        store,
        "benchmark_reports",
        str(context.partition_key),
        current_run_id=context.run_id,
        code_versions=CODE_VERSIONS,
    )
    return dg.MaterializeResult(
        metadata={
            "checkpoint_run_id": checkpoint["run_id"],
            "lineage": dg.MetadataValue.md(chain.to_markdown()),
            "lineage_broken": chain.broken,
        }
    )


@dg.asset(
    name="principles_benchmark_reports",
    partitions_def=principles_report_partitions,
    deps=[
        dg.AssetDep("auto_principles", partition_mapping=dg.MultiToSingleDimensionPartitionMapping("dataset"))
    ],
    code_version="b1",
)
def principles_reports_standin(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    dataset = context.partition_key.keys_by_dimension["dataset"]
    _write_report(context, warehouse.get_store(), "principles_benchmark_reports", f"principles:{dataset}")
    return dg.MaterializeResult(metadata={"principle_set_id": PRINCIPLE_SET_ID})


DATA_ASSETS = [
    raw_rows,
    converted_samples,
    rule_scores,
    auto_principles_standin,
    llm_scores_standin,
    refined_samples_standin,
    training_pairs,
]
ALL_ASSETS = [
    *DATA_ASSETS,
    rm_checkpoints_standin,
    benchmark_reports_standin,
    principles_reports_standin,
    leaderboard,
    served_model,
]
CODE_VERSIONS = {k.to_user_string(): v for a in ALL_ASSETS for k, v in a.code_versions_by_key.items()}
# The chain fixtures patch lineage.current_code_versions to the stand-ins' versions; this is the real one.
REAL_CODE_VERSIONS = lineage.current_code_versions


# --- the chain ---------------------------------------------------------------------------------


def _materialize(instance, assets, resources, partition=None, **kwargs) -> None:
    result = dg.materialize(assets, resources=resources, instance=instance, partition_key=partition, **kwargs)
    assert result.success


def _build_chain(root: Path) -> None:
    """Everything from raw rows to the leaderboard, in a persistent instance the CLI can open."""
    with _chain_environment(root) as instance:
        resources = _resources(root)
        _materialize(instance, DATA_ASSETS, resources, DATASET)
        instance.add_dynamic_partitions("training_runs", [RUN_KEY])
        _materialize(instance, [rm_checkpoints_standin], resources, RUN_KEY)
        _materialize(instance, [benchmark_reports_standin], resources, REPORT)
        _materialize(instance, [principles_reports_standin], resources, PRINCIPLES_REPORT)
        _materialize(instance, [leaderboard], resources)
        _materialize(instance, [served_model], resources)


def _resources(root: Path) -> dict:
    return {
        "datasets": DatasetSourceResource(mode="bundled", limit=6),
        "warehouse": WarehouseResource(database=str(root / "data" / "rmforge.duckdb")),
        "ray": RayClusterResource(),  # rule_scores scores in process (no address)
    }


@contextlib.contextmanager
def _chain_environment(root: Path):
    """DAGSTER_HOME and RMFORGE_DATA_DIR under `root` (as the CLI finds them), the stand-ins' code
    versions as the current ones, and the instance."""
    from dagster_project.cli import ensure_dagster_home

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        monkeypatch.setenv("RMFORGE_DATA_DIR", str(root / "data"))
        monkeypatch.setattr(lineage, "current_code_versions", lambda: dict(CODE_VERSIONS))
        ensure_dagster_home()
        with dg.DagsterInstance.get() as instance:
            yield instance


@pytest.fixture(scope="module")
def built_chain(tmp_path_factory) -> Path:
    """Materialized once; every test gets a copy (instance folder and warehouse), so the tests that
    break links break only their own."""
    root = tmp_path_factory.mktemp("audit_chain")
    _build_chain(root)
    return root


@pytest.fixture
def chain(built_chain, tmp_path):
    root = tmp_path / "chain"
    shutil.copytree(built_chain, root)
    with _chain_environment(root) as instance:
        yield SimpleNamespace(
            instance=instance,
            store=Store(str(root / "data" / "rmforge.duckdb")),
            resources=_resources(root),
            root=root,
        )


def _audit(chain, asset: str, partition: str | None = None, **kwargs) -> lineage.Audit:
    return lineage.audit(chain.instance, chain.store, asset, partition, code_versions=CODE_VERSIONS, **kwargs)


def _messages(result: lineage.Audit) -> str:
    return "\n".join(f"{label}: {f.kind}: {f.message}" for label, f in result.findings)


# --- the edge table is the asset graph ---------------------------------------------------------


def test_edge_table_is_exactly_the_asset_graph():
    """A new dependency, asset or partitioning in the Definitions fails here until lineage.ASSETS says
    which partitions of the new parent a child reads."""
    from dagster_project.definitions import defs

    graph = defs().resolve_asset_graph()
    materializable = [graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    actual = {
        n.key.to_user_string(): sorted(p.to_user_string() for p in n.parent_keys) for n in materializable
    }
    assert {asset: sorted(p for p, _ in spec.parents) for asset, spec in lineage.ASSETS.items()} == actual
    for node in materializable:
        assert node.partitions_def == lineage.ASSETS[node.key.to_user_string()].partitions_def, node.key
    assert REAL_CODE_VERSIONS() == {n.key.to_user_string(): n.code_version for n in materializable}


def test_edge_table_tables_exist():
    from rm_resources.store import TABLES

    assert {spec.table for spec in lineage.ASSETS.values()} - {None} <= set(TABLES)


# --- a whole chain -----------------------------------------------------------------------------


def test_report_audit_reaches_the_raw_rows_the_checkpoint_trained_on(chain):
    result = _audit(chain, "benchmark_reports", REPORT)
    assert not result.broken, _messages(result)
    assert {asset for asset, _ in result.nodes} == {
        "benchmark_reports",
        "rm_checkpoints",
        "training_pairs",
        "converted_samples",
        "raw_rows",
        "rule_scores",
        "llm_scores",
        "refined_samples",
        "auto_principles",
    }
    assert result.nodes[("rm_checkpoints", RUN_KEY)].parents == [("training_pairs", DATASET)]

    # The raw rows named are those of the pairs the checkpoint trained on, all present in raw_rows.
    trained = chain.store._query(
        "SELECT DISTINCT unnest(raw_row_hashes) AS h FROM training_pairs "
        "WHERE decision IN ('kept', 'flagged')"
    )
    raw = chain.store.read_partition("raw_rows", DATASET)
    assert result.raw_row_hashes == {DATASET: sorted(trained["h"])}
    assert set(result.raw_row_hashes[DATASET]) <= set(raw["row_hash"])
    assert result.missing_raw_row_hashes == {}

    # Every node names the run that wrote it, and its rows are that run's.
    for node in result.nodes.values():
        record = lineage.latest_materialization(chain.instance, node.asset, node.partition)
        assert node.run_id == record.run_id and node.row_run_ids == [record.run_id], node.label
        assert node.code_version == CODE_VERSIONS[node.asset] and node.status == "ok"


def test_text_and_markdown_name_every_node_and_the_raw_rows(chain):
    result = _audit(chain, "benchmark_reports", REPORT, limit=2)
    text = result.to_text()
    report = result.nodes[("benchmark_reports", REPORT)]
    assert text.splitlines()[1].startswith(f"benchmark_reports[{REPORT}]  run={report.run_id[:8]}  code=b1  ")
    assert f"└─ rm_checkpoints[{RUN_KEY}]  run=" in text
    assert "converted_samples[hh_rlhf_harmless]  (above)" in text
    first = result.raw_row_hashes[DATASET][0]
    assert f"  {DATASET} {first}" in text
    assert "the first 2:" in text and result.raw_row_hashes[DATASET][2] not in text
    assert text.splitlines()[-1] == "chain: whole"

    markdown = result.to_markdown()
    assert markdown.startswith(f"**Lineage of benchmark_reports[rm_bench\\|{RUN_KEY}]: whole**")
    assert "| rm_checkpoints[bt-audit-test] | training_pairs[hh_rlhf_harmless] |" in markdown
    assert len(_audit(chain, "benchmark_reports", REPORT, limit=None).to_text().split(first)) == 2


def test_the_report_audits_its_own_run_for_its_page(chain):
    record = lineage.latest_materialization(chain.instance, "benchmark_reports", REPORT)
    metadata = record.asset_materialization.metadata
    assert metadata["lineage_broken"].value is False
    assert "| this run |" in metadata["lineage"].value
    assert f"| {record.run_id} |" in metadata["lineage"].value
    assert (
        f"{DATASET} {_audit(chain, 'benchmark_reports', REPORT).raw_row_hashes[DATASET][0]}"
        in metadata["lineage"].value
    )


def test_leaderboard_and_principles_reports(chain):
    result = _audit(chain, "leaderboard")
    assert not result.broken, _messages(result)
    assert result.nodes[("leaderboard", "__all__")].parents == [
        ("benchmark_reports", REPORT),
        ("principles_benchmark_reports", PRINCIPLES_REPORT),
    ]
    assert result.nodes[("principles_benchmark_reports", PRINCIPLES_REPORT)].parents == [
        ("auto_principles", DATASET)
    ]
    assert result.to_text().splitlines()[1].startswith("leaderboard  run=")


def test_a_stale_code_version_is_stale_not_broken(chain):
    changed = {**CODE_VERSIONS, "converted_samples": "0123456789ab"}
    result = lineage.audit(chain.instance, chain.store, "training_pairs", DATASET, code_versions=changed)
    node = result.nodes[("converted_samples", DATASET)]
    assert node.status == "stale (code changed)"
    assert not result.broken and result.stale
    assert f"code={node.code_version}→0123456789ab" in result.to_text()
    assert result.to_text().endswith("chain: whole; 1 stale node(s) (code changed)")


def test_pair_and_sample_audits_print_the_raw_rows_verbatim(chain):
    pair = chain.store._query(
        "SELECT * FROM training_pairs WHERE reason = 'refined' ORDER BY pair_id LIMIT 1"
    ).to_dict(orient="records")[0]
    result = lineage.audit_pair(chain.instance, chain.store, pair["pair_id"], code_versions=CODE_VERSIONS)
    assert not result.broken, result.to_text()
    raw = chain.store.raw_rows_by_hash(pair["raw_row_hashes"])
    text = result.to_text()
    for row_hash, row in raw.items():
        assert f"raw row {DATASET}#{row['row_index']} (hash {row_hash}):\n{row['row_json']}" in text
    assert '"table": "refined_samples"' in text  # what decided it

    sample_id = pair["sample_ids"][0]
    sample = lineage.audit_sample(chain.instance, chain.store, sample_id, code_versions=CODE_VERSIONS)
    assert not sample.broken
    assert [r["row_hash"] for r in sample.raw_rows] == list(
        chain.store.sample_rows([sample_id])[0]["raw_row_hashes"]
    )
    assert sample.raw_rows[0]["row_json"] in sample.to_text()
    assert json.loads(sample.raw_rows[0]["row_json"])["chosen"]  # a real HH-RLHF row

    with pytest.raises(lineage.AuditArgumentError, match="no training pair 'nope'"):
        lineage.audit_pair(chain.instance, chain.store, "nope", code_versions=CODE_VERSIONS)


@pytest.mark.parametrize(
    ("asset", "partition", "message"),
    [
        ("nope", DATASET, "unknown asset 'nope'"),
        ("converted_samples", "imagenet", "no partition 'imagenet'"),
        ("benchmark_reports", RUN_KEY, "is not <benchmark>|<run>"),
        ("benchmark_reports", "mmlu|" + RUN_KEY, "benchmark: no partition 'mmlu'"),
        ("rm_checkpoints", "bt-never", "no partition 'bt-never' registered in training_runs"),
        ("leaderboard", DATASET, "not partitioned"),
        ("raw_rows", None, "needs a partition"),
    ],
)
def test_bad_arguments(chain, asset, partition, message):
    with pytest.raises(lineage.AuditArgumentError, match=message):
        _audit(chain, asset, partition)


# --- broken links ------------------------------------------------------------------------------


def _node(result: lineage.Audit, asset: str, partition: str = DATASET) -> lineage.Node:
    return result.nodes[(asset, partition)]


def test_a_deleted_raw_row_breaks_every_link_that_used_it(chain):
    store = chain.store
    gone = _audit(chain, "benchmark_reports", REPORT).raw_row_hashes[DATASET][0]
    with store.connect() as connection:
        connection.execute("DELETE FROM raw_rows WHERE row_hash = ?", [gone])

    result = _audit(chain, "benchmark_reports", REPORT)
    assert result.broken
    assert result.missing_raw_row_hashes == {DATASET: [gone]}
    assert _node(result, "converted_samples").broken and _node(result, "training_pairs").broken
    assert not _node(result, "rule_scores").broken
    assert f"{gone}  MISSING from raw_rows" in result.to_text()
    assert result.to_text().splitlines()[-1].startswith("chain: BROKEN")


def test_rematerialized_training_pairs_break_the_checkpoint(chain):
    # Other curation decisions give other pairs: the checkpoint no longer matches its training data.
    _materialize(
        chain.instance,
        [training_pairs],
        chain.resources,
        DATASET,
        run_config={"ops": {"training_pairs": {"config": {"on_contradiction": "drop"}}}},
    )
    result = _audit(chain, "benchmark_reports", REPORT)
    checkpoint = _node(result, "rm_checkpoints", RUN_KEY)
    messages = [f.message for f in checkpoint.findings]
    # The policy is part of the pairs' content version, so the version moved.
    assert any("re-materialized since" in m for m in messages), messages
    assert any("rows of run(s)" in m for m in messages), messages
    assert result.broken and not _node(result, "training_pairs").broken


def test_rematerialized_converted_samples_break_scores_and_pairs(chain):
    # Fewer raw rows, converted again: pairs and scores now name samples that are gone.
    smaller = {**chain.resources, "datasets": DatasetSourceResource(mode="bundled", limit=3)}
    _materialize(chain.instance, [raw_rows, converted_samples], smaller, DATASET)
    result = _audit(chain, "training_pairs", DATASET)
    assert not _node(result, "raw_rows").broken and not _node(result, "converted_samples").broken
    assert "input_hash is not the sample's current content hash" in _messages(result)
    assert "name samples no longer in converted_samples" in _messages(result)
    assert "raw row hash(es) it names are no longer in raw_rows" in _messages(result)
    assert _node(result, "rule_scores").broken and _node(result, "training_pairs").broken


def test_rows_from_another_run_and_missing_materializations(chain):
    store = chain.store
    frame = (
        store.read_partition("principle_sets", DATASET)
        .drop(columns=["partition"])
        .assign(run_id="someone-else")
    )
    store.replace_partition("principle_sets", DATASET, frame)
    result = _audit(chain, "principles_benchmark_reports", PRINCIPLES_REPORT)
    assert "rows written by run(s) someone-else" in _messages(result)

    chain.instance.add_dynamic_partitions("training_runs", ["bt-never-trained"])
    never = _audit(chain, "rm_checkpoints", "bt-never-trained")
    assert [f.message for f in _node(never, "rm_checkpoints", "bt-never-trained").findings] == [
        "never materialized (no materialization event)",
        "no rows in rm_checkpoints",
    ]


def test_a_replaced_principle_set_breaks_the_scores_and_reports_that_used_it(chain):
    store = chain.store
    with store.connect() as connection:
        connection.execute("UPDATE principle_sets SET principle_set_id = 'ps-other'")
    result = _audit(chain, "leaderboard")
    assert _node(result, "llm_scores").broken
    assert _node(result, "principles_benchmark_reports", PRINCIPLES_REPORT).broken
    assert "used principle set ps-audit-test; auto_principles[hh_rlhf_harmless] is ps-other now" in _messages(
        result
    )


def test_a_rematerialized_report_breaks_the_leaderboard(chain):
    _materialize(chain.instance, [principles_reports_standin], chain.resources, PRINCIPLES_REPORT)
    result = _audit(chain, "leaderboard")
    assert _node(result, "leaderboard", "__all__").broken
    assert f"shows principles_benchmark_reports[{PRINCIPLES_REPORT}] from run" in _messages(result)


def test_served_model_audit_reaches_the_raw_rows_through_the_leaderboard(chain):
    result = _audit(chain, "served_model")
    assert not result.broken, _messages(result)
    assert result.nodes[("served_model", "__all__")].parents == [("leaderboard", "__all__")]
    assert result.raw_row_hashes[DATASET]
    (row,) = chain.store.promotions()
    assert (row["status"], row["served"], row["previous"]) == ("promoted", f"checkpoint:{RUN_KEY}", None)
    assert row["leaderboard_run_id"] == result.nodes[("leaderboard", "__all__")].run_id


def test_a_rebuilt_leaderboard_breaks_the_promotion_until_it_is_decided_again(chain):
    _materialize(chain.instance, [leaderboard], chain.resources)
    assert "decided on the leaderboard of run" in _messages(_audit(chain, "served_model"))
    _materialize(chain.instance, [served_model], chain.resources)
    result = _audit(chain, "served_model")
    assert not result.broken, _messages(result)
    statuses = [row["status"] for row in chain.store.promotions()]
    assert statuses == ["kept", "promoted"]  # the history keeps both decisions, newest first


# --- the CLI -----------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    from dagster_project.audit_cli import add_audit_parser

    parser = argparse.ArgumentParser(prog="rmforge")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *argv])
    return args.handler(args)


def test_cli_exit_codes(chain, capsys):
    assert _cli("benchmark_reports", REPORT) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "chain: whole" and f"rm_checkpoints[{RUN_KEY}]" in out

    pair_id = chain.store._query("SELECT pair_id FROM training_pairs LIMIT 1")["pair_id"][0]
    assert _cli("pair", pair_id) == 0
    assert f"training pair {pair_id}: whole" in capsys.readouterr().out

    assert _cli("served_model") == 0
    out = capsys.readouterr().out
    assert "promotion history (newest first, 1 shown):" in out and f"served=checkpoint:{RUN_KEY}" in out

    assert _cli("nope", DATASET) == 2
    assert "rmforge audit: unknown asset 'nope'" in capsys.readouterr().err
    assert _cli("benchmark_reports", "rm_bench") == 2
    assert "is not <benchmark>|<run>" in capsys.readouterr().err
    assert _cli("sample", "no-such-sample") == 2
    assert _cli("pair") == 2

    with chain.store.connect() as connection:
        connection.execute(
            "DELETE FROM converted_samples WHERE sample_id IN "
            "(SELECT sample_id FROM converted_samples ORDER BY sample_id LIMIT 1)"
        )
    assert _cli("benchmark_reports", REPORT, "--all") == 1
    assert "chain: BROKEN" in capsys.readouterr().out
