"""The leaderboard: every evaluated model × every benchmark, from each pair's latest report.

A cell is a headline number, or says why there is none: the benchmark does not apply to the model
(`not_applicable`, with the report's reason) or the model has no report on that benchmark yet
(`missing`). Neither is a failure; both are shown as such.

A `partial` cell is a report whose headline lacks some of its parts (RewardBench 2 with 2 of its 6
subsets, RM-Bench without math; see `rm_rewards.benchmarks.report_models`). It has no `headline`: its
value over the parts present is `partial_headline`, with `headline_parts` ("2 of 6 subsets
(missing: ...)"). The markdown shows it in parentheses with the parts, e.g. "(0.512) partial 2/6",
the chart draws it hatched, and nothing ranks it: whatever ranks models (the promotion rule) reads
`scored` cells only, so a partial number is never compared with, or ranked as, an official one.

Which benchmarks are columns (`leaderboard_benchmarks`): every benchmark with a bundled sample
(a missing cell there says "no report yet"), plus any other with at least one report. A benchmark
without bundled rows and without reports (JudgeBench with no source configured) is left out, and
the asset says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

CellStatus = Literal["scored", "partial", "not_applicable", "missing"]


class LeaderboardEntry(BaseModel):
    model_key: str
    benchmark: str
    headline_metric: str | None = None
    headline: float | None = None
    partial_headline: float | None = None
    headline_parts: str = ""
    status: CellStatus
    note: str = ""
    report_asset: str | None = None
    report_partition: str | None = None
    report_run_id: str | None = None
    reported_at: datetime | None = None


def build_leaderboard(reports: Iterable[Mapping[str, Any]], benchmarks: Sequence[str]) -> list[LeaderboardEntry]:
    """One entry per (model with any report) × benchmark, from each pair's latest report row
    (`benchmark_summaries` columns); a pair without a report is `missing`."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in reports:
        key = (row["model_key"], row["benchmark"])
        if key not in latest or row["created_at"] > latest[key]["created_at"]:
            latest[key] = row
    models = sorted({model for model, _ in latest})
    entries = []
    for model in models:
        for benchmark in benchmarks:
            row = latest.get((model, benchmark))
            if row is None:
                entries.append(LeaderboardEntry(model_key=model, benchmark=benchmark, status="missing",
                                                note="no report on this benchmark yet"))
                continue
            headline = row.get("headline")
            status = row.get("status") or ("scored" if headline is not None else "not_applicable")
            entries.append(
                LeaderboardEntry(
                    model_key=model, benchmark=benchmark, headline_metric=row.get("headline_metric"),
                    headline=headline if status == "scored" else None,
                    partial_headline=row.get("partial_headline") if status == "partial" else None,
                    headline_parts=row.get("headline_parts") or "", status=status, note=row.get("note") or "",
                    report_asset=row.get("asset"), report_partition=row.get("partition"),
                    report_run_id=row.get("run_id"), reported_at=row.get("created_at"),
                )
            )
    return entries


def leaderboard_benchmarks(
    reports: Iterable[Mapping[str, Any]], benchmarks: Sequence[str], always_shown: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(columns, left out): the benchmarks in `always_shown` (those with bundled rows) and those
    with at least one report, in `benchmarks` order; the rest are left out."""
    reported = {row["benchmark"] for row in reports}
    always = set(always_shown)
    shown = [b for b in benchmarks if b in always or b in reported]
    return shown, [b for b in benchmarks if b not in shown]


def _parts_short(entry: LeaderboardEntry) -> str:
    """"2 of 6 subsets (missing: ...)" -> "2/6"."""
    words = entry.headline_parts.split()
    return f"{words[0]}/{words[2]}" if len(words) >= 3 and words[1] == "of" else entry.headline_parts


def _cell(entry: LeaderboardEntry) -> str:
    if entry.status == "scored" and entry.headline is not None:
        return f"{entry.headline:.3f}"
    if entry.status == "partial":
        value = "n/a" if entry.partial_headline is None else f"{entry.partial_headline:.3f}"
        return f"({value}) partial {_parts_short(entry)}"
    return "n/a" if entry.status == "not_applicable" else "—"


def leaderboard_markdown(entries: Sequence[LeaderboardEntry], benchmarks: Sequence[str]) -> str:
    """A model × benchmark table of headline numbers (with the metric each is), the reasons for every
    cell without a number, and a grouped bar chart."""
    if not entries:
        return "_no benchmark reports yet_"
    by_model: dict[str, dict[str, LeaderboardEntry]] = {}
    for entry in entries:
        by_model.setdefault(entry.model_key, {})[entry.benchmark] = entry
    metrics = {e.benchmark: e.headline_metric for e in entries if e.headline_metric}
    header = "| model | " + " | ".join(f"{b} ({metrics.get(b, 'headline')})" for b in benchmarks) + " |"
    lines = [header, "| --- |" + " ---: |" * len(benchmarks)]
    for model, cells in by_model.items():
        lines.append(f"| {model} | " + " | ".join(_cell(cells[b]) if b in cells else "—" for b in benchmarks) + " |")
    notes = [
        f"- {e.model_key} on {e.benchmark}: {e.status.replace('_', ' ')}"
        + (f" ({e.headline_parts}; the number in parentheses is over the parts present, not ranked)"
           if e.status == "partial" else "")
        + (f" — {e.note}" if e.note else "")
        for e in entries
        if e.status != "scored" or e.note
    ]
    text = "\n".join(lines)
    if notes:
        text += "\n\n" + "\n".join(notes)
    chart = _bar_chart(by_model, benchmarks)
    return text + ("\n\n" + chart if chart else "")


def _bar_chart(by_model: Mapping[str, Mapping[str, LeaderboardEntry]], benchmarks: Sequence[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rm_rewards.benchmarks.plots import figure_markdown

    models = list(by_model)
    if not any(e.status in ("scored", "partial") for cells in by_model.values() for e in cells.values()):
        return ""
    figure, axis = plt.subplots(figsize=(max(5, 1.6 * len(benchmarks)), 3))
    width = 0.8 / max(1, len(models))
    for index, model in enumerate(models):
        cells = [by_model[model].get(b) for b in benchmarks]
        values = [_bar_value(cell) for cell in cells]
        bars = axis.bar([i + index * width for i in range(len(benchmarks))], values, width, label=model)
        for bar, cell in zip(bars, cells):
            if cell is not None and cell.status == "partial":
                bar.set_hatch("//")
                bar.set_alpha(0.5)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(benchmarks))], list(benchmarks))
    axis.set_ylabel("headline")
    axis.legend(fontsize=7)
    axis.set_title("leaderboard (hatched: partial, over the parts present; n/a and missing drawn as 0)", fontsize=8)
    return figure_markdown(figure, "leaderboard")


def _bar_value(cell: LeaderboardEntry | None) -> float:
    if cell is None:
        return 0.0
    value = cell.headline if cell.status == "scored" else cell.partial_headline if cell.status == "partial" else None
    return 0.0 if value is None else value
