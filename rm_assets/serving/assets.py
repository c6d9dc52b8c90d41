"""Promotion: `served_model` picks the model `rmforge serve` serves, from the leaderboard.

The rule and its gate are `rm_rewards.benchmarks.promotion`; every decision (promoted, kept, blocked) is one
more row of the `promotions` table, so what was served, when and why is history in DuckDB.

Partial headlines: `allow_partial` unset (the default) lets the rule choose on them exactly when the
rule's benchmark comes from its bundled sample (the embedded profile: `DatasetSourceResource`
mode bundled, no benchmark files), where RM-Bench has no math items and no full headline exists;
with benchmark files or the hub it stays off. The metadata and the reason say when a model was
promoted on a partial headline, and over which parts.
"""

import dagster as dg

from rm_assets.benchmarks.assets import leaderboard
from rm_assets.metadata import preview_markdown
from rm_assets.versions import code_version
from rm_resources.datasets import DatasetSourceResource
from rm_resources.warehouse import WarehouseResource


class PromotionConfig(dg.Config):
    benchmark: str = "rm_bench"  # the benchmark the best model is chosen on
    margin: float = 0.0  # a candidate must beat the served model by more than this
    max_regression: float = 0.02  # largest drop allowed on any other benchmark
    eligible_kinds: list[str] = ["checkpoint"]  # model-key kinds the rule chooses among
    override: str | None = None  # an explicit model key: skips the selection, not the gate
    force: bool = False  # with override: serve it even when it fails the gate
    # choose and gate on partial headlines; None: iff the benchmark is read from its bundled sample
    allow_partial: bool | None = None

    def rule(self, allow_partial: bool):
        from rm_rewards.benchmarks.promotion import PromotionRule

        return PromotionRule(**{**self.model_dump(), "eligible_kinds": tuple(self.eligible_kinds),
                                "allow_partial": allow_partial})


def _source_kind(datasets: DatasetSourceResource, benchmark: str) -> str | None:
    from rm_rewards.benchmarks.loaders import NoBenchmarkSource

    try:
        return datasets.benchmark_source(benchmark).kind
    except NoBenchmarkSource:
        return None


def _comparisons_markdown(decision) -> str:
    if not decision.comparisons:
        return "_nothing to compare against_"
    lines = [f"| benchmark | {decision.candidate} | {decision.current} | delta |", "| --- | ---: | ---: | ---: |"]
    for c in decision.comparisons:
        cells = ["—" if v is None else f"{v:.4f}" + ("" if parts is None else f" (partial: {parts})")
                 for v, parts in ((c.candidate, c.candidate_parts), (c.current, c.current_parts))]
        delta = f"{c.delta:+.4f}" if c.delta is not None else ("not comparable" if None not in (c.candidate, c.current)
                                                              else "—")
        lines.append(f"| {c.benchmark} | {cells[0]} | {cells[1]} | {delta} |")
    return "\n".join(lines)


@dg.asset(
    deps=[leaderboard],
    group_name="serving",
    kinds={"duckdb"},
    code_version=code_version("rm_assets.serving.assets", "rm_rewards.benchmarks.promotion", "rm_rewards.benchmarks.leaderboard"),
    description="The model rmforge serves: the best checkpoint on a benchmark when it beats the served model "
    "by a margin without regressing elsewhere (or an explicit model key); every decision is a promotions row.",
)
def served_model(
    context: dg.AssetExecutionContext, config: PromotionConfig, warehouse: WarehouseResource,
    datasets: DatasetSourceResource,
) -> dg.MaterializeResult:
    import pandas as pd

    from rm_rewards.benchmarks.promotion import decide_promotion, entries_from_rows, partial_allowed

    store = warehouse.get_store()
    board = store.read_leaderboard()
    allow_partial, partial_why = partial_allowed(config.allow_partial, config.benchmark,
                                                 _source_kind(datasets, config.benchmark))
    rule = config.rule(allow_partial)
    decision = decide_promotion(entries_from_rows(board.to_dict(orient="records")), store.served_model(), rule)
    leaderboard_runs = sorted(set(board["run_id"].dropna()))
    store.write_promotion(decision, rule, leaderboard_run_id=leaderboard_runs[-1] if leaderboard_runs else None,
                          run_id=context.run_id)
    history = pd.DataFrame(store.promotions(limit=10))
    numbers = {"candidate_headline": decision.candidate_headline, "current_headline": decision.current_headline}
    return dg.MaterializeResult(
        metadata={
            "served": decision.served or "nothing",
            "status": decision.status,
            "reason": decision.reason,
            "candidate": decision.candidate or "none",
            "previous": decision.current or "none",
            "benchmark": decision.benchmark,
            "on_partial_headline": decision.on_partial_headline,
            **({"headline_parts": decision.candidate_parts} if decision.candidate_parts else {}),
            "partial_headlines": partial_why,
            "gate_passed": decision.gate_passed,
            "forced": decision.forced,
            **{k: round(v, 4) for k, v in numbers.items() if v is not None},
            "failures": dg.MetadataValue.json(decision.failures),
            "comparison": dg.MetadataValue.md(_comparisons_markdown(decision)),
            "history": dg.MetadataValue.md(preview_markdown(
                history[["decided_at", "status", "served", "candidate", "previous", "reason"]] if len(history)
                else history, rows=10, max_chars=120)),
            "dagster/table_name": "promotions",
        },
        data_version=dg.DataVersion(f"{decision.served}:{decision.status}"),
    )
