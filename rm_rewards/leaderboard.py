"""The leaderboard: every evaluated model × every benchmark, from each pair's latest report.

A cell is a headline number, or says why there is none: the benchmark does not apply to the model
(`not_applicable`, with the report's reason) or the model has no report on that benchmark yet
(`missing`). Neither is a failure; both are shown as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

CellStatus = Literal["scored", "not_applicable", "missing"]


class LeaderboardEntry(BaseModel):
    model_key: str
    benchmark: str
    headline_metric: str | None = None
    headline: float | None = None
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
                    headline=headline if status == "scored" else None, status=status, note=row.get("note") or "",
                    report_asset=row.get("asset"), report_partition=row.get("partition"),
                    report_run_id=row.get("run_id"), reported_at=row.get("created_at"),
                )
            )
    return entries


def _cell(entry: LeaderboardEntry) -> str:
    if entry.status == "scored" and entry.headline is not None:
        return f"{entry.headline:.3f}"
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
        f"- {e.model_key} on {e.benchmark}: {e.status.replace('_', ' ')}" + (f" — {e.note}" if e.note else "")
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

    from rm_rewards.plots import figure_markdown

    models = list(by_model)
    if not any(e.status == "scored" for cells in by_model.values() for e in cells.values()):
        return ""
    figure, axis = plt.subplots(figsize=(max(5, 1.6 * len(benchmarks)), 3))
    width = 0.8 / max(1, len(models))
    for index, model in enumerate(models):
        values = [
            by_model[model][b].headline if b in by_model[model] and by_model[model][b].headline is not None else 0.0
            for b in benchmarks
        ]
        axis.bar([i + index * width for i in range(len(benchmarks))], values, width, label=model)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(benchmarks))], list(benchmarks))
    axis.set_ylabel("headline")
    axis.legend(fontsize=7)
    axis.set_title("leaderboard (n/a and missing cells drawn as 0)")
    return figure_markdown(figure, "leaderboard")
