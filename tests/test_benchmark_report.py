"""Markdown reports of benchmark evaluations, their embedded chart, and drop detection."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from rm_rewards.benchmarks.evaluate import EvaluationResult, RewardModel, evaluate, evaluate_model
from rm_rewards.benchmarks.items import BenchmarkItem
from rm_rewards.benchmarks.loaders import load_benchmark
from rm_rewards.benchmarks.report_render import (
    MAX_PNG_BYTES,
    bar_series,
    delta_table,
    detect_drops,
    plot_png,
    render_report,
)
from rm_rewards.core.kinds import PairwiseReward, PairwiseVerdict
from rm_rewards.core.schema import Sample

BENCHMARKS = ("rm_bench", "reward_bench_2", "rmb_pairwise", "rmb_bon")
DATA_URI = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


@pytest.fixture(scope="module")
def bundled() -> dict[str, list[BenchmarkItem]]:
    return {name: load_benchmark(name) for name in BENCHMARKS}


def length_scores(samples: list[Sample]) -> list[list[float]]:
    return [[float(len(r.text)) for r in s.responses] for s in samples]


@pytest.fixture(scope="module")
def rm_bench_result(bundled: dict[str, list[BenchmarkItem]]) -> EvaluationResult:
    return evaluate("rm_bench", bundled["rm_bench"], length_scores, model_key="checkpoint:len")


def embedded_png(markdown: str) -> bytes:
    (encoded,) = DATA_URI.findall(markdown)
    return base64.b64decode(encoded)


# --- the report ----------------------------------------------------------------------------------


def test_report_has_headline_chart_tables_and_counts(rm_bench_result: EvaluationResult) -> None:
    markdown = render_report(rm_bench_result)
    assert markdown.startswith("# rm_bench: checkpoint:len\n")
    # the bundled RM-Bench has no math domain: the header says partial, with the mean of what is there
    assert (
        f"**total: partial, 3 of 4 domains (missing: math); no total (over the parts present: "
        f"{100 * rm_bench_result.partial_headline:.2f}%)** over 221 of 221 items"
    ) in markdown
    assert rm_bench_result.report.to_markdown().strip() in markdown  # the report's own tables
    assert "| 221 | 221 | 0 | 0 | scores |" in markdown
    png = embedded_png(markdown)
    assert len(png) < MAX_PNG_BYTES
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 200 and image.height > 100
    assert "Change since" not in markdown


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_chart_fits_for_every_benchmark(benchmark: str, bundled: dict[str, list[BenchmarkItem]]) -> None:
    result = evaluate(benchmark, bundled[benchmark], length_scores)
    title, labels, series = bar_series(result)
    report = result.report
    assert title.endswith(("by domain", "by subset", "by scenario"))
    if benchmark == "rm_bench":
        assert labels == ["chat", "code", "safety", "overall of present (partial)"]
        assert set(series) == {"hard", "normal", "easy"}
        assert series["easy"][-1] == report.easy
    elif benchmark == "reward_bench_2":
        assert labels == [s.subset for s in report.subsets] + ["mean of present (partial)"]
        assert series["score"][-1] == report.mean_of_present
    else:
        assert labels == [g.group for g in report.scenarios] + ["all"]
        assert series["accuracy"][-1] == report.accuracy
    png = plot_png(result)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < MAX_PNG_BYTES


def test_chart_shrinks_to_the_byte_limit(rm_bench_result: EvaluationResult) -> None:
    full = plot_png(rm_bench_result)
    smaller = plot_png(rm_bench_result, max_bytes=len(full) - 1)
    assert len(smaller) < len(full)
    assert Image.open(io.BytesIO(smaller)).width < Image.open(io.BytesIO(full)).width
    with pytest.raises(ValueError, match="over 100 bytes"):
        plot_png(rm_bench_result, max_bytes=100)


def test_report_compares_with_the_previous_summary(rm_bench_result: EvaluationResult) -> None:
    current = rm_bench_result.summary()
    previous = {**current, "total_over_present": current["total_over_present"] + 0.05,
                "chat_average": current["chat_average"] - 0.01}
    markdown = render_report(rm_bench_result, previous_summary=previous, previous_label="run 41")
    section = markdown.split("## Change since run 41\n\n", 1)[1]
    assert "| total_over_present | " in section and "| -5.00 pts |" in section
    assert "| chat_average |" in section and "| +1.00 pts |" in section
    assert "| n_items | 221 | 221 | +0 |" in section
    assert "1 metric(s) worse by more than 2.00 pts: total_over_present:" in section
    same = render_report(rm_bench_result, previous_summary=current)
    assert "No metric worse by more than 2.00 pts." in same


def test_delta_table_shows_metrics_that_appeared_or_went() -> None:
    table = delta_table(
        {"accuracy": 0.5, "Old": 0.2, "n_items": 10}, {"accuracy": 0.75, "New": 0.1, "n_items": 12}
    )
    rows = table.splitlines()[2:]
    assert rows == [
        "| accuracy | 50.00% | 75.00% | +25.00 pts |",
        "| New | n/a | 10.00% |  |",
        "| n_items | 10 | 12 | +2 |",
        "| Old | 20.00% | n/a |  |",
    ]


class AlwaysA(PairwiseReward):
    def compare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        if len(sample.responses[j].text) % 7 == 0:
            return PairwiseVerdict(error="judge said nothing useful")
        return PairwiseVerdict(winner="a")


def test_pairwise_report_shows_consistency_and_errors(bundled: dict[str, list[BenchmarkItem]]) -> None:
    result = evaluate("rmb_pairwise", bundled["rmb_pairwise"], AlwaysA())
    markdown = render_report(result)
    assert result.consistency.to_markdown().strip() in markdown
    assert "| position flips |" in markdown
    assert "## Most common errors" in markdown and "| judge said nothing useful |" in markdown
    assert f"; {result.n_failed} failed (counted wrong)" in markdown and result.n_failed > 0


def test_report_of_a_reward_that_applied_to_nothing(bundled: dict[str, list[BenchmarkItem]]) -> None:
    result = evaluate_model("rmb_bon", bundled["rmb_bon"], RewardModel(reward="token_f1"))
    markdown = render_report(result, previous_summary={"accuracy": 0.6, "n_items": 98})
    assert "**accuracy: n/a (no item applied)** over 0 of 98 items; 98 not applicable" in markdown
    assert "data:image/png" not in markdown
    assert "## Not applicable (left out of the metric)" in markdown
    assert "1 metric(s) worse by more than 2.00 pts: accuracy: 60.00% -> gone" in markdown
    with pytest.raises(ValueError, match="no report to plot"):
        plot_png(result)


# --- drops -----------------------------------------------------------------------------------------


def test_detect_drops_max_drop_is_strict() -> None:
    previous = {"total": 0.60, "hard": 0.50, "easy": 0.70}
    current = {"total": 0.58, "hard": 0.47, "easy": 0.90}
    # total fell by exactly 0.02 (not more, though the float difference is 0.0200...18), hard by
    # 0.03, easy rose
    drops = detect_drops(previous, current, max_drop=0.02)
    assert [d.metric for d in drops] == ["hard"]
    assert drops[0].model_dump() == {
        "metric": "hard",
        "previous": 0.50,
        "current": 0.47,
        "change": pytest.approx(-0.03),
        "higher_is_better": True,
    }
    assert [d.metric for d in detect_drops(previous, current, max_drop=0.01)] == ["total", "hard"]
    assert detect_drops(previous, current, max_drop=0.5) == []
    assert [d.metric for d in detect_drops(previous, current, max_drop=0.0)] == ["total", "hard"]


def test_detect_drops_directions_counts_and_gaps() -> None:
    previous = {
        "consistency_position_flip_rate": 0.10,  # lower is better: a rise is a drop
        "consistency_symmetry_violation_rate": 0.10,
        "n_failed": 0,  # counts are not metrics
        "accuracy": 0.8,
        "Helpfulness": 0.7,  # gone now
        "Harmlessness": None,  # was not measured: nothing to drop from
        "flag": True,  # not a number
    }
    current = {
        "consistency_position_flip_rate": 0.30,
        "consistency_symmetry_violation_rate": 0.01,
        "n_failed": 50,
        "accuracy": None,
        "Harmlessness": 0.1,
        "brand_new": 0.0,
        "flag": False,
    }
    drops = {d.metric: d for d in detect_drops(previous, current, max_drop=0.05)}
    assert set(drops) == {"consistency_position_flip_rate", "accuracy", "Helpfulness"}
    assert drops["consistency_position_flip_rate"].higher_is_better is False
    assert drops["consistency_position_flip_rate"].change == pytest.approx(0.2)
    assert drops["accuracy"].current is None and drops["accuracy"].change is None
    assert drops["Helpfulness"].describe() == "Helpfulness: 70.00% -> gone"


@pytest.mark.parametrize("max_drop", [-0.01, float("nan"), float("inf")])
def test_detect_drops_rejects_bad_max_drops(max_drop: float) -> None:
    with pytest.raises(ValueError, match="max_drop must be a finite number >= 0"):
        detect_drops({"a": 1.0}, {"a": 0.0}, max_drop)


def test_summary_round_trips_through_json_for_the_next_comparison(rm_bench_result: EvaluationResult) -> None:
    # the asset layer stores a result (or its summary) as JSON and compares the next run with it
    restored = EvaluationResult.model_validate_json(rm_bench_result.model_dump_json())
    assert restored == rm_bench_result
    assert detect_drops(restored.summary(), rm_bench_result.summary(), 0.0) == []
