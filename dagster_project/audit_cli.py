"""`rmforge audit`: the lineage of an asset partition, a training pair or a sample, in the terminal.

    rmforge audit benchmark_reports 'rm_bench|bt-1a2b3c4d5e6f' [--limit N | --all]
    rmforge audit leaderboard
    rmforge audit served_model       (the chain, then the promotion history)
    rmforge audit pair <pair id>
    rmforge audit sample <sample id>

Exit codes: 0 the chain is whole (stale code versions are printed, not failed), 1 a link is broken,
2 bad arguments (unknown asset, partition, pair or sample). Reads the Dagster instance
(DAGSTER_HOME) and the DuckDB warehouse only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_ROW_TARGETS = {"pair": "a training_pairs pair_id", "sample": "a converted_samples sample_id"}


def add_audit_parser(subparsers) -> argparse.ArgumentParser:
    """Register `audit` on the `rmforge` subcommands."""
    parser = subparsers.add_parser(
        "audit",
        help="the lineage of an asset partition (or a pair, or a sample) back to its raw rows",
        description="Walk from an asset partition back to raw_rows and report every link: the run that "
        "wrote each node, its code and data versions, its rows, and every broken link. "
        "`audit pair <id>` and `audit sample <id>` also print the raw rows verbatim. "
        "Exit 0: whole; 1: a link is broken; 2: bad arguments.",
    )
    parser.add_argument("target", help="an asset name, or `pair` / `sample`")
    parser.add_argument(
        "partition",
        nargs="?",
        default=None,
        help="the asset's partition (a dataset, a training run key, '<benchmark>|<run|dataset|model>'; "
        "none for leaderboard and served_model), or the pair / sample id",
    )
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument("--limit", type=int, default=10, help="raw row hashes to list (default 10)")
    limits.add_argument("--all", action="store_true", help="list every raw row hash")
    parser.set_defaults(handler=run_audit)
    return parser


def run_audit(args: argparse.Namespace) -> int:
    from dagster_project.cli import ensure_dagster_home
    from rm_assets.lineage import ASSETS, AuditArgumentError
    from rm_resources.warehouse import default_database

    if args.target not in ASSETS and args.target not in _ROW_TARGETS:
        return _bad_arguments(f"unknown asset {args.target!r}; known: {', '.join(ASSETS)}, or pair / sample")
    if args.limit is not None and args.limit < 0:
        return _bad_arguments("--limit must be 0 or more")
    if args.target in _ROW_TARGETS and not args.partition:
        return _bad_arguments(f"audit {args.target} needs {_ROW_TARGETS[args.target]}")
    database = default_database()
    if not database.startswith("md:") and not Path(database).exists():
        print(
            f"no warehouse at {database}: nothing has been materialized there (RMFORGE_DATA_DIR)",
            file=sys.stderr,
        )
        return 1
    ensure_dagster_home()
    try:
        result = _audit(args, database)
    except AuditArgumentError as exc:
        return _bad_arguments(str(exc))
    print(result.to_text())
    if args.target == "served_model":
        from rm_assets.lineage import promotion_history_text
        from rm_resources.store import Store

        print("\n" + promotion_history_text(Store(database), limit=args.limit or 10))
    return 1 if result.broken else 0


def _audit(args: argparse.Namespace, database: str):
    import dagster as dg

    from rm_assets import lineage
    from rm_resources.store import Store

    store = Store(database)
    limit = None if args.all else args.limit
    with dg.DagsterInstance.get() as instance:
        if args.target == "pair":
            return lineage.audit_pair(instance, store, args.partition, limit=limit)
        if args.target == "sample":
            return lineage.audit_sample(instance, store, args.partition, limit=limit)
        return lineage.audit(instance, store, args.target, args.partition, limit=limit)


def _bad_arguments(message: str) -> int:
    print(f"rmforge audit: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """`python -m dagster_project.audit_cli audit ...`, until `rmforge` registers the command."""
    parser = argparse.ArgumentParser(prog="rmforge")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
