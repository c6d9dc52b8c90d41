"""A markdown report for one (benchmark, model) evaluation, and drop detection between two of them.

`render_report(result, previous_summary=...)` writes: the headline metric and its coverage, the
counts (items, evaluated, failed, not applicable) and timings, a bar chart embedded as a base64
PNG data URI (so it renders wherever the markdown does, e.g. the Dagster UI, with no file next to
it), the benchmark report's own tables, the judge's consistency table for pairwise judges, the most
common errors, and the change since the previous report of the same model.

`detect_drops(previous_summary, current_summary, max_drop)` is what an asset check calls: the
metrics that got worse by more than `max_drop` (in the metric's own units, so 0.02 on a fraction
is 2 points; DEFAULT_MAX_DROP for the report and the check alike). Counts (`n_*`) are not metrics; `consistency_*` rates are better when lower.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from rm_rewards.benchmarks.evaluate import EvaluationResult
from rm_rewards.benchmarks.report_models import (
    JudgeBenchReport,
    RewardBench2Report,
    RMBenchReport,
    RMBReport,
    fmt_pct,
    markdown_table,
)

Summary = Mapping[str, float | int | None]

MAX_PNG_BYTES = 100_000
LOWER_IS_BETTER_PREFIXES = ("consistency_",)
COUNT_PREFIX = "n_"
# The largest fall of a metric against the previous report that is not a drop: 2 points of a rate.
DEFAULT_MAX_DROP = 0.02
# 0.60 - 0.58 is 0.0200000000000000018 in floats: a fall of exactly max_drop is not a drop
_FLOAT_SLACK = 1e-9
_MAX_BARS = 60  # beyond this a chart is unreadable at report size; RMB then plots its categories

# --- drops -------------------------------------------------------------------------------------


class Drop(BaseModel):
    """A metric that got worse. `current` is None when the metric disappeared (e.g. nothing
    applied any more); `change` is current - previous (None then)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    previous: float
    current: float | None
    change: float | None
    higher_is_better: bool

    def describe(self) -> str:
        now = "gone" if self.current is None else _fmt_value(self.metric, self.current)
        return f"{self.metric}: {_fmt_value(self.metric, self.previous)} -> {now}"


def is_metric(key: str, value: object) -> bool:
    """A comparable metric: a real number (or None) that is not a count."""
    if key.startswith(COUNT_PREFIX) or isinstance(value, bool):
        return False
    return value is None or (isinstance(value, (int, float)) and math.isfinite(value))


def higher_is_better(metric: str) -> bool:
    return not metric.startswith(LOWER_IS_BETTER_PREFIXES)


def detect_drops(previous_summary: Summary, current_summary: Summary, max_drop: float) -> list[Drop]:
    """Metrics of `previous_summary` that are worse in `current_summary` by more than `max_drop`,
    or that are missing or None now. New metrics and metrics that were None before are skipped."""
    if not (isinstance(max_drop, (int, float)) and math.isfinite(max_drop) and max_drop >= 0):
        raise ValueError(f"max_drop must be a finite number >= 0, got {max_drop!r}")
    drops = []
    for metric, before in previous_summary.items():
        if not is_metric(metric, before) or before is None:
            continue
        now = current_summary.get(metric)
        better_high = higher_is_better(metric)
        if now is None or not is_metric(metric, now):
            drops.append(
                Drop(metric=metric, previous=before, current=None, change=None, higher_is_better=better_high)
            )
            continue
        worse_by = (before - now) if better_high else (now - before)
        if worse_by > max_drop + _FLOAT_SLACK:
            drops.append(
                Drop(
                    metric=metric,
                    previous=before,
                    current=now,
                    change=now - before,
                    higher_is_better=better_high,
                )
            )
    return drops


# --- delta table -------------------------------------------------------------------------------


def _fmt_value(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if key.startswith(COUNT_PREFIX):
        return str(int(value))
    return f"{fmt_pct(value)}%"


def _fmt_change(key: str, before: float | None, now: float | None) -> str:
    if before is None or now is None:
        return ""
    if key.startswith(COUNT_PREFIX):
        return f"{int(now) - int(before):+d}"
    return f"{100 * (now - before):+.2f} pts"


def delta_table(previous_summary: Summary, current_summary: Summary) -> str:
    """Markdown: every summary key (current order, then keys only the previous one had), with the
    previous and current value and the change (percentage points for metrics)."""
    keys = list(current_summary) + [k for k in previous_summary if k not in current_summary]
    rows = []
    for key in keys:
        before, now = previous_summary.get(key), current_summary.get(key)
        if not (is_metric(key, before) or key.startswith(COUNT_PREFIX)):
            continue
        rows.append([key, _fmt_value(key, before), _fmt_value(key, now), _fmt_change(key, before, now)])
    return markdown_table(["metric", "previous", "current", "change"], rows)


# --- plot --------------------------------------------------------------------------------------


def bar_series(result: EvaluationResult) -> tuple[str, list[str], dict[str, list[float | None]]]:
    """What the chart shows: a title, one label per bar group, and one value list per series."""
    report = result.report
    partial = report is not None and report.coverage.is_partial
    if isinstance(report, RMBenchReport):
        labels = [d.domain for d in report.domains] + ["overall of present (partial)" if partial else "overall"]
        return (
            "RM-Bench accuracy by domain",
            labels,
            {
                "hard": [d.hard for d in report.domains] + [report.hard],
                "normal": [d.normal for d in report.domains] + [report.normal],
                "easy": [d.easy for d in report.domains] + [report.easy],
            },
        )
    if isinstance(report, RewardBench2Report):
        labels = [s.subset for s in report.subsets] + ["mean of present (partial)" if partial else "leaderboard"]
        return (
            "RewardBench 2 score by subset",
            labels,
            {"score": [s.score for s in report.subsets] + [report.mean_of_present]},
        )
    if isinstance(report, RMBReport):
        groups = report.scenarios if len(report.scenarios) <= _MAX_BARS else report.categories
        title = "RMB pairwise" if report.benchmark == "rmb_pairwise" else "RMB best-of-N"
        return (
            f"{title} accuracy by {'scenario' if groups is report.scenarios else 'category'}",
            ([g.group for g in groups] + ["all (partial)" if partial else "all"]),
            {"accuracy": [g.accuracy for g in groups] + [report.accuracy]},
        )
    if isinstance(report, JudgeBenchReport):
        return (
            "JudgeBench accuracy by category",
            [c.group for c in report.categories] + ["overall (partial)" if partial else "overall"],
            {"accuracy": [c.accuracy for c in report.categories] + [report.accuracy]},
        )
    raise ValueError(f"{result.model_key} on {result.benchmark}: no report to plot (no item applied)")


def _render_png(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]], dpi: int
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # the Agg backend, no pyplot state
    from matplotlib.figure import Figure

    n_series = len(series)
    height = 0.9 + 0.16 * len(labels) * max(1, n_series) ** 0.7
    figure = Figure(figsize=(6.4, min(height, 14.0)), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bar = 0.8 / n_series
    positions = range(len(labels))
    for k, (name, values) in enumerate(series.items()):
        offsets = [p + (k - (n_series - 1) / 2) * bar for p in positions]
        axes.barh(offsets, [100 * (v or 0.0) for v in values], height=bar, label=name)
    axes.set_yticks(list(positions), [label[:40] for label in labels], fontsize=7)
    axes.margins(y=0.01)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("%", fontsize=8)
    axes.set_title(title, fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    if n_series > 1:
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_png(result: EvaluationResult, max_bytes: int = MAX_PNG_BYTES) -> bytes:
    """A horizontal bar chart of the report per domain / subset / scenario, as PNG bytes no larger
    than `max_bytes` (rendered at lower resolution until it fits). A missing value plots as 0."""
    title, labels, series = bar_series(result)
    for dpi in (72, 54, 40, 30):
        png = _render_png(title, labels, series, dpi)
        if len(png) <= max_bytes:
            return png
    raise ValueError(f"chart for {result.model_key} on {result.benchmark} is over {max_bytes} bytes")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --- the report --------------------------------------------------------------------------------


def _header(result: EvaluationResult) -> list[str]:
    headline = result.headline
    value = "n/a (no item applied)" if headline is None else f"{fmt_pct(headline)}%"
    if result.is_partial:
        value = (f"partial, {result.headline_coverage.describe()}; no {result.headline_metric} "
                 f"(over the parts present: {fmt_pct(result.partial_headline)}%)")
    lines = [
        f"# {result.benchmark}: {result.model_key}",
        f"**{result.headline_metric}: {value}** over {result.n_evaluated} of {result.n_items} items"
        + (f"; {result.n_not_applicable} not applicable" if result.n_not_applicable else "")
        + (f"; {result.n_failed} failed (counted wrong)" if result.n_failed else ""),
    ]
    t = result.timings
    speed = "n/a" if t.items_per_s is None else f"{t.items_per_s:.1f}"
    lines.append(
        markdown_table(
            ["items", "evaluated", "failed", "not applicable", "method", "scoring (s)", "items/s"],
            [
                [
                    result.n_items,
                    result.n_evaluated,
                    result.n_failed,
                    result.n_not_applicable,
                    result.method,
                    f"{t.scoring_s:.2f}",
                    speed,
                ]
            ],
        )
    )
    return lines


def _problems(result: EvaluationResult) -> list[str]:
    parts = []
    if result.not_applicable_reasons:
        rows = [[reason, count] for reason, count in result.not_applicable_reasons.items()]
        shown = ", ".join(result.not_applicable_ids[:10]) + (" ..." if result.n_not_applicable > 10 else "")
        parts += [
            "## Not applicable (left out of the metric)",
            markdown_table(["reason", "items"], rows),
            f"Items: {shown}",
        ]
    errors = result.error_counts()
    if errors:
        parts += [
            "## Most common errors",
            markdown_table(["error", "count"], [[e.replace("|", "/"), n] for e, n in errors]),
        ]
    return parts


def _comparison(
    result: EvaluationResult, previous_summary: Summary, label: str, max_drop: float
) -> list[str]:
    current = result.summary()
    drops = detect_drops(previous_summary, current, max_drop)
    verdict = (
        f"{len(drops)} metric(s) worse by more than {100 * max_drop:.2f} pts: "
        + "; ".join(d.describe() for d in drops)
        if drops
        else f"No metric worse by more than {100 * max_drop:.2f} pts."
    )
    return [f"## Change since {label}", delta_table(previous_summary, current), verdict]


def render_report(
    result: EvaluationResult,
    *,
    previous_summary: Summary | None = None,
    previous_label: str = "the previous report",
    max_drop: float = DEFAULT_MAX_DROP,
    plot: bool = True,
) -> str:
    """The markdown report of one evaluation; with `previous_summary` (the `summary()` of the last
    report of the same model on the same benchmark) also a delta table and the drops."""
    parts = _header(result)
    if plot and result.report is not None:
        parts.append(f"![{result.benchmark} chart]({png_data_uri(plot_png(result))})")
    if result.report is not None:
        parts.append(result.report.to_markdown().strip())
    if result.consistency is not None:
        parts.append(result.consistency.to_markdown().strip())
    parts += _problems(result)
    if previous_summary is not None:
        parts += _comparison(result, previous_summary, previous_label, max_drop)
    return "\n\n".join(parts) + "\n"
