"""The lineage audit: from any asset partition back to the raw rows it came from, link by link.

    result = audit(instance, store, "benchmark_reports", "rm_bench|bt-1a2b3c4d5e6f")
    print(result.to_text())        # a tree, one line per asset partition, broken links under it
    result.broken                  # True when any link is broken
    result.raw_row_hashes          # the raw rows the chain used, by row hash

Each node is one (asset, partition): the Dagster run of its latest materialization with the code
and data versions recorded then, the asset's code version now, and its DuckDB rows (count, and the
runs that wrote them). Which partitions of which parents a node read is `ASSETS`, the one edge
table (a test holds it to the real asset graph).

Broken links are reported, never papered over: a node never materialized or without rows; rows
written by a run other than the latest materialization's; score rows whose `input_hash` is not
the content hash of the sample they name now; training pairs naming samples that are gone; raw
row hashes no longer in `raw_rows`; a checkpoint whose training_pairs were re-materialized since
it trained; a report or leaderboard row whose source has changed since. A recorded code version
that differs from the current one is "stale (code changed)": a warning, not a broken link.

Reads only the Dagster instance and DuckDB; writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import dagster as dg

from rm_assets.partitions import (
    baseline_report_partitions,
    checkpoint_report_partitions,
    dataset_partitions,
    grm_training_runs,
    principles_report_partitions,
    training_runs,
)
from rm_resources.store import WHOLE_TABLE

if TYPE_CHECKING:
    from rm_resources.store import Store


class AuditArgumentError(ValueError):
    """The asset or partition named does not exist (the CLI's exit code 2)."""


# --- the edge table ----------------------------------------------------------------------------

# (walk, child node) -> the partitions of one parent the child read.
Mapper = Callable[["_Walk", "Node"], list[str]]


def _same(walk: _Walk, node: Node) -> list[str]:
    return [node.partition]


def _whole(walk: _Walk, node: Node) -> list[str]:
    return [WHOLE_TABLE]


def _dimension(name: str) -> Mapper:
    """One dimension of a multi-partition key (dg.MultiToSingleDimensionPartitionMapping(name))."""

    def mapper(walk: _Walk, node: Node) -> list[str]:
        return [_split_key(ASSETS[node.asset].partitions_def, node.partition)[name]]

    mapper.__name__ = f"dimension_{name}"
    return mapper


def _checkpoint_datasets(walk: _Walk, node: Node) -> list[str]:
    """The datasets the checkpoint row says it trained on."""
    row = walk.checkpoint(node.partition)
    return list(json.loads(row["datasets"] or "[]")) if row else []


def _grm_datasets(walk: _Walk, node: Node) -> list[str]:
    """grm_checkpoints writes no table: its datasets are the keys of the recorded data versions."""
    return sorted(node.metadata.get("training_data_versions") or {})


def _leaderboard_reports(report_asset: str) -> Mapper:
    """The partitions of `report_asset` the leaderboard rows were taken from."""

    def mapper(walk: _Walk, node: Node) -> list[str]:
        return sorted(
            {r["report_partition"] for r in walk.leaderboard_rows() if r["report_asset"] == report_asset}
        )

    mapper.__name__ = f"leaderboard_{report_asset}"
    return mapper


class AssetLineage(NamedTuple):
    table: str | None  # the DuckDB table with its rows; None: it writes none
    partitions_def: dg.PartitionsDefinition | None
    parents: tuple[tuple[str, Mapper], ...]  # (parent asset, the parent partitions a child read)


_REPORT_ASSETS = ("benchmark_reports", "principles_benchmark_reports", "baseline_benchmark_reports")

ASSETS: dict[str, AssetLineage] = {
    "raw_rows": AssetLineage("raw_rows", dataset_partitions, ()),
    "converted_samples": AssetLineage("converted_samples", dataset_partitions, (("raw_rows", _same),)),
    "rule_scores": AssetLineage("rule_scores", dataset_partitions, (("converted_samples", _same),)),
    "auto_principles": AssetLineage("principle_sets", dataset_partitions, (("converted_samples", _same),)),
    "llm_scores": AssetLineage(
        "llm_scores", dataset_partitions, (("converted_samples", _same), ("auto_principles", _same))
    ),
    "refined_samples": AssetLineage(
        "refined_samples", dataset_partitions, (("converted_samples", _same), ("auto_principles", _same))
    ),
    "training_pairs": AssetLineage(
        "training_pairs",
        dataset_partitions,
        tuple(
            (parent, _same)
            for parent in ("converted_samples", "rule_scores", "llm_scores", "refined_samples")
        ),
    ),
    "rm_checkpoints": AssetLineage(
        "rm_checkpoints", training_runs, (("training_pairs", _checkpoint_datasets),)
    ),
    "grm_checkpoints": AssetLineage(None, grm_training_runs, (("training_pairs", _grm_datasets),)),
    "benchmark_reports": AssetLineage(
        "benchmark_scores", checkpoint_report_partitions, (("rm_checkpoints", _dimension("run")),)
    ),
    "principles_benchmark_reports": AssetLineage(
        "benchmark_scores", principles_report_partitions, (("auto_principles", _dimension("dataset")),)
    ),
    "baseline_benchmark_reports": AssetLineage("benchmark_scores", baseline_report_partitions, ()),
    "leaderboard": AssetLineage(
        "leaderboard", None, tuple((report, _leaderboard_reports(report)) for report in _REPORT_ASSETS)
    ),
    # promotions is a history across runs, so its rows are not the node's (see _check_served_model).
    "served_model": AssetLineage(None, None, (("leaderboard", _whole),)),
}


# --- nodes and the audit -----------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: Literal["broken", "stale"]
    message: str


@dataclass
class Node:
    """One asset partition on the chain, as the instance and the warehouse record it now."""

    asset: str
    partition: str
    this_run: bool = False  # the root, audited by its own not-yet-recorded materialization
    run_id: str | None = None  # the run of the latest materialization (or this run)
    code_version: str | None = None  # recorded by that materialization
    current_code_version: str | None = None
    data_version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None  # None: the asset writes no table
    row_run_ids: list[str] = field(default_factory=list)
    parents: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.asset, self.partition)

    @property
    def label(self) -> str:
        return self.asset if self.partition == WHOLE_TABLE else f"{self.asset}[{self.partition}]"

    @property
    def broken(self) -> bool:
        return any(f.kind == "broken" for f in self.findings)

    @property
    def status(self) -> str:
        if self.broken:
            return "BROKEN"
        if any(f.kind == "stale" for f in self.findings):
            return "stale (code changed)"
        return "this run" if self.this_run else "ok"


@dataclass
class Audit:
    """The chain from `root` back to raw_rows, and the raw rows it used."""

    root: tuple[str, str]
    nodes: dict[tuple[str, str], Node]  # in walk order, root first
    raw_row_hashes: dict[str, list[str]]  # dataset -> hashes the chain used (sorted)
    missing_raw_row_hashes: dict[str, list[str]]  # of those, the ones no longer in raw_rows
    limit: int | None = 10

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        found = [(node.label, f) for node in self.nodes.values() for f in node.findings]
        found += [
            (f"raw_rows[{dataset}]", Finding("broken", f"raw row {h} is used downstream but no longer there"))
            for dataset, hashes in self.missing_raw_row_hashes.items()
            for h in hashes
        ]
        return found

    @property
    def broken(self) -> bool:
        return any(f.kind == "broken" for _, f in self.findings)

    @property
    def stale(self) -> bool:
        return any(f.kind == "stale" for _, f in self.findings)

    def all_raw_row_hashes(self) -> list[tuple[str, str]]:
        return [(dataset, h) for dataset, hashes in sorted(self.raw_row_hashes.items()) for h in hashes]

    def verdict(self) -> str:
        broken = sum(f.kind == "broken" for _, f in self.findings)
        stale = sum(f.kind == "stale" for _, f in self.findings)
        text = f"BROKEN: {broken} broken link(s)" if broken else "whole"
        return text + (f"; {stale} stale node(s) (code changed)" if stale else "")

    def to_text(self) -> str:
        lines = [f"audit {self.nodes[self.root].label}"]
        _tree_lines(self, self.root, "", "", set(), lines)
        lines += _raw_rows_lines(self)
        lines.append(f"chain: {self.verdict()}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [
            f"**Lineage of {_md(self.nodes[self.root].label)}: {self.verdict()}**",
            "",
            "| node | reads | run | code | data | rows | status |",
            "| --- | --- | --- | --- | --- | ---: | --- |",
        ]
        for node in self.nodes.values():
            reads = ", ".join(self.nodes[p].label for p in node.parents) or "—"
            lines.append(
                f"| {_md(node.label)} | {_md(reads)} | {node.run_id or '—'} | {_code_cell(node)} | "
                f"{_short(node.data_version) or '—'} | {'—' if node.rows is None else node.rows} | "
                f"{node.status} |"
            )
        if self.findings:
            lines += ["", "Findings:", ""] + [
                f"- **{f.kind}** {_md(label)}: {_md(f.message)}" for label, f in self.findings
            ]
        lines += ["", *(_md(line) for line in _raw_rows_lines(self))]
        return "\n".join(lines)


@dataclass
class RowAudit:
    """One training pair or converted sample: its own links, its partition's chain, its raw rows."""

    subject: str  # "training pair <id>" / "sample <id>"
    row: dict[str, Any]
    chain: Audit
    raw_rows: list[dict[str, Any]]  # partition, row_index, row_hash, row_json (verbatim)
    findings: list[Finding] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return self.chain.broken or any(f.kind == "broken" for f in self.findings)

    def to_text(self) -> str:
        lines = [self.chain.to_text(), "", self.subject]
        lines += [f"  {name}: {_value_text(value)}" for name, value in self.row.items()]
        lines += [f"  ! {f.kind}: {f.message}" for f in self.findings]
        for raw in self.raw_rows:
            lines += [
                "",
                f"raw row {raw['partition']}#{raw['row_index']} (hash {raw['row_hash']}):",
                raw["row_json"],
            ]
        lines.append(f"\n{self.subject}: {'BROKEN' if self.broken else 'whole'}")
        return "\n".join(lines)


# --- entry points ------------------------------------------------------------------------------

# The columns a pair or sample audit shows (the raw rows follow in full).
_PAIR_FIELDS = (
    "partition",
    "reason",
    "decision",
    "split",
    "sample_ids",
    "raw_row_indices",
    "raw_row_hashes",
    "policy_hash",
    "run_id",
)
_SAMPLE_FIELDS = (
    "partition",
    "source",
    "task",
    "split",
    "content_hash",
    "raw_row_indices",
    "raw_row_hashes",
    "run_id",
)


def audit(
    instance: dg.DagsterInstance,
    store: Store,
    asset: str,
    partition: str | None = None,
    *,
    limit: int | None = 10,
    current_run_id: str | None = None,
    code_versions: Mapping[str, str] | None = None,
) -> Audit:
    """Walk from (asset, partition) back to raw_rows (see the module doc).

    `partition`: a dataset, a training run key, `"<benchmark>|<run, dataset or model>"` for report
    assets, None for the leaderboard. `current_run_id`: audit the root as materialized by this
    (still running) run, whose rows are written but whose materialization is not recorded yet.
    `code_versions`: asset name -> current code version (default: from rm_assets' definitions).
    `limit`: how many raw row hashes the text names (None: all). Raises AuditArgumentError for an
    unknown asset or partition.
    """
    partition = check_partition(instance, asset, partition)
    versions = dict(current_code_versions() if code_versions is None else code_versions)
    walk = _Walk(instance, store, versions, current_run_id, root=(asset, partition))
    walk.visit(asset, partition)
    used = walk.used_raw_rows((asset, partition))
    hashes = {d: sorted(h) for d, h in sorted(used.items())}
    missing = {d: sorted(set(h) - walk.raw_hashes(d)) for d, h in hashes.items()}
    return Audit(
        root=(asset, partition),
        nodes=walk.nodes,
        raw_row_hashes=hashes,
        missing_raw_row_hashes={d: h for d, h in missing.items() if h},
        limit=limit,
    )


def audit_pair(
    instance: dg.DagsterInstance,
    store: Store,
    pair_id: str,
    *,
    limit: int | None = 10,
    code_versions: Mapping[str, str] | None = None,
) -> RowAudit:
    """One training pair: its samples, the score rows that decided it, its raw rows verbatim."""
    rows = store.training_pair_rows([pair_id])
    if not rows:
        raise AuditArgumentError(f"no training pair {pair_id!r} in the warehouse")
    row = rows[0]
    dataset = row["partition"]
    chain = audit(instance, store, "training_pairs", dataset, limit=limit, code_versions=code_versions)
    present = {
        r["sample_id"] for r in store.sample_rows(list(row["sample_ids"] or [])) if r["partition"] == dataset
    }
    findings = [
        Finding("broken", f"sample {s} is no longer in converted_samples[{dataset}]")
        for s in row["sample_ids"] or []
        if s not in present
    ]
    decided_by = json.loads(row["decided_by_json"] or "[]")
    findings += [
        Finding("broken", f"the row that decided it is gone: {json.dumps(ref, sort_keys=True)}")
        for ref in decided_by
        if not store.reference_exists(dataset, ref)
    ]
    raw, missing = _raw_rows_of(store, dataset, row["raw_row_hashes"] or [])
    findings += missing
    shown = {name: row[name] for name in _PAIR_FIELDS}
    shown["decision_notes"] = list(row["decision_notes"] or [])
    shown["decided_by"] = decided_by
    return RowAudit(f"training pair {pair_id}", shown, chain, raw, findings)


def audit_sample(
    instance: dg.DagsterInstance,
    store: Store,
    sample_id: str,
    *,
    limit: int | None = 10,
    code_versions: Mapping[str, str] | None = None,
) -> RowAudit:
    """One converted sample: its partition's chain and the raw row(s) it came from, verbatim."""
    rows = store.sample_rows([sample_id])
    if not rows:
        raise AuditArgumentError(f"no converted sample {sample_id!r} in the warehouse")
    row = rows[0]
    dataset = row["partition"]
    chain = audit(instance, store, "converted_samples", dataset, limit=limit, code_versions=code_versions)
    raw, findings = _raw_rows_of(store, dataset, row["raw_row_hashes"] or [])
    shown = {name: row[name] for name in _SAMPLE_FIELDS}
    return RowAudit(f"sample {sample_id}", shown, chain, raw, findings)


def current_code_versions() -> dict[str, str]:
    """Asset name -> the code version of rmforge's asset definitions as they are now."""
    from rm_assets.benchmarks import assets as benchmark_assets
    from rm_assets.checkpoints import assets as checkpoint_assets
    from rm_assets.curation import assets as curation_assets
    from rm_assets.data import assets as data_assets
    from rm_assets.judging import assets as judging_assets
    from rm_assets.serving import assets as serving_assets

    modules = [data_assets, judging_assets, curation_assets, checkpoint_assets, benchmark_assets, serving_assets]
    return {
        key.to_user_string(): version
        for assets_def in dg.load_assets_from_modules(modules)
        if isinstance(assets_def, dg.AssetsDefinition)
        for key, version in assets_def.code_versions_by_key.items()
        if version
    }


def check_partition(instance: dg.DagsterInstance, asset: str, partition: str | None) -> str:
    """The partition as the warehouse spells it, or AuditArgumentError saying what is wrong."""
    if asset not in ASSETS:
        raise AuditArgumentError(f"unknown asset {asset!r}; known: {', '.join(ASSETS)}")
    partitions_def = ASSETS[asset].partitions_def
    if partitions_def is None:
        if partition not in (None, "", WHOLE_TABLE):
            raise AuditArgumentError(f"{asset} is not partitioned; give no partition (got {partition!r})")
        return WHOLE_TABLE
    if not partition:
        raise AuditArgumentError(f"{asset} needs a partition")
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        for value, dimension in zip(
            _split_key(partitions_def, partition).values(), partitions_def.partitions_defs
        ):
            _check_key(instance, dimension.partitions_def, value, f"{asset} {dimension.name}")
    else:
        _check_key(instance, partitions_def, partition, asset)
    return partition


# --- the walk ----------------------------------------------------------------------------------


class _Walk:
    def __init__(
        self,
        instance,
        store,
        code_versions: dict[str, str],
        current_run_id: str | None,
        root: tuple[str, str],
    ):
        self.instance, self.store, self.code_versions = instance, store, code_versions
        self.current_run_id, self.root = current_run_id, root
        self.nodes: dict[tuple[str, str], Node] = {}
        self._cache: dict[Any, Any] = {}

    def visit(self, asset: str, partition: str) -> Node:
        if (asset, partition) in self.nodes:
            return self.nodes[(asset, partition)]
        node = self._describe(asset, partition)
        self.nodes[node.key] = node
        for parent_asset, mapper in ASSETS[asset].parents:
            for parent_partition in mapper(self, node):
                node.parents.append(self.visit(parent_asset, parent_partition).key)
        node.findings += [
            Finding("broken", message) for message in _LINK_CHECKS.get(asset, _no_check)(self, node)
        ]
        return node

    def _describe(self, asset: str, partition: str) -> Node:
        node = Node(asset, partition, current_code_version=self.code_versions.get(asset))
        if self.current_run_id and (asset, partition) == self.root:
            node.this_run, node.run_id, node.code_version = (
                True,
                self.current_run_id,
                node.current_code_version,
            )
        else:
            _read_materialization(self.instance, node)
        if ASSETS[asset].table is not None:
            node.rows, node.row_run_ids = self.store.rows_and_runs(ASSETS[asset].table, partition, asset=asset)
        node.findings += _node_findings(node)
        return node

    def _cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def checkpoint(self, run_key: str) -> dict[str, Any] | None:
        return self._cached(("checkpoint", run_key), lambda: self.store.checkpoint(run_key))

    def leaderboard_rows(self) -> list[dict[str, Any]]:
        return self._cached("leaderboard", lambda: self.store.read_leaderboard().to_dict(orient="records"))

    def raw_hashes(self, dataset: str) -> set[str]:
        return self._cached(("raw", dataset), lambda: set(self.store.raw_row_hashes(dataset)))

    def used_raw_rows(self, key: tuple[str, str]) -> dict[str, set[str]]:
        """dataset -> raw row hashes the node's data came from: the first node on each path that
        records raw rows decides (a checkpoint: the pairs it trained on; training pairs and
        converted samples: their rows'; raw_rows: all of them)."""
        return self._cached(("used", key), lambda: self._used_raw_rows(self.nodes[key]))

    def _used_raw_rows(self, node: Node) -> dict[str, set[str]]:
        if node.asset == "raw_rows":
            return {node.partition: self.raw_hashes(node.partition)}
        if node.asset in ("converted_samples", "training_pairs"):
            return {node.partition: set(self.store.raw_row_hashes_of(node.asset, [node.partition]))}
        if node.asset == "rm_checkpoints" and (row := self.checkpoint(node.partition)) is not None:
            return self.store.trained_raw_hashes(row)
        used: dict[str, set[str]] = {}
        for parent in node.parents:
            for dataset, hashes in self.used_raw_rows(parent).items():
                used.setdefault(dataset, set()).update(hashes)
        return used


def _read_materialization(instance: dg.DagsterInstance, node: Node) -> None:
    record = latest_materialization(instance, node.asset, node.partition)
    if record is None:
        return
    materialization = record.asset_materialization
    tags = materialization.tags or {}
    node.run_id = record.run_id
    node.code_version = tags.get("dagster/code_version")
    node.data_version = tags.get("dagster/data_version")
    node.metadata = {name: getattr(value, "value", value) for name, value in materialization.metadata.items()}


def latest_materialization(instance: dg.DagsterInstance, asset: str, partition: str):
    """The newest materialization record of the asset partition (an EventLogRecord), or None."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(asset), asset_partitions=None if partition == WHOLE_TABLE else [partition]
    )
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0] if records else None


def _node_findings(node: Node) -> list[Finding]:
    """What every node is checked for: a materialization, rows, rows from that run, the code version."""
    findings = []
    if node.run_id is None:
        findings.append(Finding("broken", "never materialized (no materialization event)"))
    elif node.run_id == "":
        findings.append(Finding("broken", "materialization reported without a run (runless event)"))
    if node.rows == 0:
        findings.append(Finding("broken", f"no rows in {ASSETS[node.asset].table}"))
    others = sorted(set(node.row_run_ids) - {node.run_id})
    if node.run_id and others:
        findings.append(
            Finding(
                "broken",
                f"rows written by run(s) {', '.join(others)}, not by {node.run_id}, "
                "the run of its latest materialization",
            )
        )
    if (
        not node.this_run
        and node.code_version
        and node.current_code_version
        and node.code_version != node.current_code_version
    ):
        findings.append(
            Finding(
                "stale",
                f"materialized with code {node.code_version}, the code is {node.current_code_version} now",
            )
        )
    return findings


# --- per-asset link checks: each returns the broken links as messages ------------------------


def _no_check(walk: _Walk, node: Node) -> list[str]:
    return []


def _check_raw_hashes(walk: _Walk, node: Node) -> list[str]:
    referenced = walk.store.raw_row_hashes_of(node.asset, [node.partition])
    gone = [h for h in referenced if h not in walk.raw_hashes(node.partition)]
    if not gone:
        return []
    return [
        f"{len(gone)} raw row hash(es) it names are no longer in raw_rows[{node.partition}]: {_listed(gone)}"
    ]


def _check_scores(walk: _Walk, node: Node) -> list[str]:
    problems = []
    mismatched = sorted(
        {m["sample_id"] for m in walk.store.score_hash_mismatches(ASSETS[node.asset].table, node.partition)}
    )
    if mismatched:
        problems.append(
            f"score rows of {len(mismatched)} sample(s) whose input_hash is not the sample's current content "
            f"hash (or the sample is gone): {_listed(mismatched)}"
        )
    if node.asset == "llm_scores":
        used = walk.store.llm_score_principle_ids(node.partition)
        problems += _check_principle_ids(walk, node.partition, used)
    return problems


def _check_principle_ids(walk: _Walk, dataset: str, used: list[str]) -> list[str]:
    current_id = walk.store.principle_set_id(dataset)
    stale = [i for i in used if i != current_id]
    if not stale:
        return []
    return [f"used principle set {', '.join(stale)}; auto_principles[{dataset}] is {current_id} now"]


def _check_refinements(walk: _Walk, node: Node) -> list[str]:
    gone = walk.store.missing_refinement_sources(node.partition)
    if not gone:
        return []
    return [f"{len(gone)} refinement(s) of samples no longer in converted_samples: {_listed(gone)}"]


def _check_training_pairs(walk: _Walk, node: Node) -> list[str]:
    problems = []
    gone = walk.store.missing_pair_samples(node.partition)
    if gone:
        pairs, samples = {g["pair_id"] for g in gone}, sorted({g["sample_id"] for g in gone})
        problems.append(
            f"{len(pairs)} pair(s) name samples no longer in converted_samples: {_listed(samples)}"
        )
    return problems + _check_raw_hashes(walk, node)


def _check_checkpoint(walk: _Walk, node: Node) -> list[str]:
    row = walk.checkpoint(node.partition)
    if row is None:
        return []
    trained_on = json.loads(row["data_versions_json"] or "{}")
    runs = json.loads(row["source_runs_json"] or "{}")
    problems = []
    for dataset in json.loads(row["datasets"] or "[]"):
        now = walk.store.training_pairs_version(dataset)
        if trained_on.get(dataset) != now:
            problems.append(
                f"trained on training_pairs[{dataset}] version {trained_on.get(dataset)}; it is {now} "
                "now (re-materialized since)"
            )
        current_runs = walk.store.run_ids("training_pairs", dataset)
        if dataset in runs and sorted(runs[dataset]) != current_runs:
            problems.append(
                f"trained on training_pairs[{dataset}] rows of run(s) {', '.join(runs[dataset])}; "
                f"the rows are from {', '.join(current_runs) or 'no run'} now"
            )
    return problems


def _check_checkpoint_report(walk: _Walk, node: Node) -> list[str]:
    run_key = _split_key(ASSETS[node.asset].partitions_def, node.partition)["run"]
    row = walk.checkpoint(run_key)
    if row is None:
        return []
    problems = []
    paths = walk.store.report_checkpoint_paths(node.asset, node.partition)
    if paths and paths != [row["path"]]:
        problems.append(
            f"scored checkpoint {', '.join(map(str, paths))}; rm_checkpoints[{run_key}] is {row['path']} now"
        )
    recorded = node.metadata.get("checkpoint_run_id")
    if recorded and recorded != row["run_id"]:
        problems.append(
            f"scored the checkpoint written by run {recorded}; rm_checkpoints[{run_key}] was "
            f"rewritten by run {row['run_id']}"
        )
    return problems


def _check_principles_report(walk: _Walk, node: Node) -> list[str]:
    dataset = _split_key(ASSETS[node.asset].partitions_def, node.partition)["dataset"]
    used = node.metadata.get("principle_set_id")
    return _check_principle_ids(walk, dataset, [used]) if used else []


def _check_leaderboard(walk: _Walk, node: Node) -> list[str]:
    problems = []
    for row in walk.leaderboard_rows():
        if not row["report_asset"]:
            continue
        report = walk.nodes.get((row["report_asset"], row["report_partition"]))
        if report is not None and report.run_id and row["report_run_id"] != report.run_id:
            problems.append(
                f"shows {report.label} from run {row['report_run_id']}; its latest materialization "
                f"is run {report.run_id}"
            )
    return problems


def _check_served_model(walk: _Walk, node: Node) -> list[str]:
    """The latest promotion row is this materialization's, and decided on the leaderboard as it is now."""
    latest = walk.store.promotions(limit=1)
    if not latest:
        return ["no promotion decision in the promotions table"]
    row, problems = latest[0], []
    if node.run_id and not node.this_run and row["run_id"] != node.run_id:
        problems.append(f"the latest promotion row is from run {row['run_id']}, not {node.run_id}")
    board = walk.nodes.get(("leaderboard", WHOLE_TABLE))
    if board is not None and board.run_id and row["leaderboard_run_id"] != board.run_id:
        problems.append(
            f"decided on the leaderboard of run {row['leaderboard_run_id']}; the leaderboard is run {board.run_id} now"
        )
    return problems


def promotion_history_text(store: Store, limit: int = 10) -> str:
    """The newest promotion decisions, one line each: when, status, what is served, why."""
    rows = store.promotions(limit=limit)
    if not rows:
        return "promotion history: none"
    lines = [f"promotion history (newest first, {len(rows)} shown):"]
    lines += [
        f"  {row['decided_at']}  {row['status']:<8}  served={row['served'] or '-'}  run={(row['run_id'] or '-')[:8]}"
        f"  {row['reason']}"
        for row in rows
    ]
    return "\n".join(lines)


_LINK_CHECKS: dict[str, Callable[[_Walk, Node], list[str]]] = {
    "converted_samples": _check_raw_hashes,
    "rule_scores": _check_scores,
    "llm_scores": _check_scores,
    "refined_samples": _check_refinements,
    "training_pairs": _check_training_pairs,
    "rm_checkpoints": _check_checkpoint,
    "benchmark_reports": _check_checkpoint_report,
    "principles_benchmark_reports": _check_principles_report,
    "leaderboard": _check_leaderboard,
    "served_model": _check_served_model,
}


# --- rendering ---------------------------------------------------------------------------------


def _tree_lines(audit: Audit, key, lead: str, child_lead: str, shown: set, lines: list[str]) -> None:
    node = audit.nodes[key]
    if key in shown:
        lines.append(f"{lead}{node.label}  (above)")
        return
    shown.add(key)
    rows = "" if node.rows is None else f"  rows={node.rows}"
    run = node.run_id[:8] if node.run_id else "-"  # the Dagster UI's short run id
    lines.append(
        f"{lead}{node.label}  run={run}  code={_code_cell(node)}  "
        f"data={_short(node.data_version) or '-'}{rows}  {node.status}"
    )
    bar = "│ " if node.parents else "  "
    lines += [f"{child_lead}{bar} ! {f.kind}: {f.message}" for f in node.findings]
    for index, parent in enumerate(node.parents):
        last = index == len(node.parents) - 1
        _tree_lines(
            audit,
            parent,
            child_lead + ("└─ " if last else "├─ "),
            child_lead + ("   " if last else "│  "),
            shown,
            lines,
        )


def _raw_rows_lines(audit: Audit) -> list[str]:
    reached = audit.all_raw_row_hashes()
    if not reached:
        return ["raw rows reached: none (nothing upstream records raw rows)"]
    per_dataset = ", ".join(f"{d}: {len(h)}" for d, h in audit.raw_row_hashes.items())
    shown = reached if audit.limit is None else reached[: audit.limit]
    head = f"raw rows reached: {len(reached)} ({per_dataset})"
    head += ":" if len(shown) == len(reached) else f"; the first {len(shown)}:"
    missing = {(d, h) for d, hashes in audit.missing_raw_row_hashes.items() for h in hashes}
    return [head] + [f"  {d} {h}{'  MISSING from raw_rows' if (d, h) in missing else ''}" for d, h in shown]


def _code_cell(node: Node) -> str:
    if node.code_version and node.current_code_version and node.code_version != node.current_code_version:
        return f"{node.code_version}→{node.current_code_version}"
    return node.code_version or node.current_code_version or "-"


def _short(value: str | None, width: int = 16) -> str:
    return "" if value is None else value if len(value) <= width else value[:width] + "…"


def _listed(values: list[str], limit: int = 5) -> str:
    head = ", ".join(values[:limit])
    return head + (f" … ({len(values) - limit} more)" if len(values) > limit else "")


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


# --- partition keys ----------------------------------------------------------------------------


def _split_key(partitions_def, partition: str) -> dict[str, str]:
    """A multi-partition key string ("rm_bench|bt-…") by dimension name."""
    names = [d.name for d in partitions_def.partitions_defs]
    values = partition.split("|", len(names) - 1)
    if len(values) != len(names) or not all(values):
        raise AuditArgumentError(f"partition {partition!r} is not {'|'.join(f'<{n}>' for n in names)}")
    return dict(zip(names, values))


def _check_key(instance: dg.DagsterInstance, partitions_def, key: str, what: str) -> None:
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        if not instance.has_dynamic_partition(partitions_def.name, key):
            known = instance.get_dynamic_partitions(partitions_def.name)
            raise AuditArgumentError(
                f"{what}: no partition {key!r} registered in {partitions_def.name} "
                f"(known: {_listed(list(known)) or 'none'})"
            )
    elif key not in partitions_def.get_partition_keys():
        raise AuditArgumentError(
            f"{what}: no partition {key!r}; known: {', '.join(partitions_def.get_partition_keys())}"
        )


def _raw_rows_of(store: Store, dataset: str, hashes: list[str]) -> tuple[list[dict[str, Any]], list[Finding]]:
    """The raw rows with these hashes in the dataset's raw_rows, and a broken finding per missing one."""
    found = {h: row for h, row in store.raw_rows_by_hash(list(hashes)).items() if row["partition"] == dataset}
    missing = [
        Finding("broken", f"raw row {h} is no longer in raw_rows[{dataset}]")
        for h in hashes
        if h not in found
    ]
    return [found[h] for h in hashes if h in found], missing


__all__ = [
    "ASSETS",
    "Audit",
    "AuditArgumentError",
    "Finding",
    "Node",
    "RowAudit",
    "audit",
    "audit_pair",
    "audit_sample",
    "check_partition",
    "current_code_versions",
    "latest_materialization",
    "promotion_history_text",
]
