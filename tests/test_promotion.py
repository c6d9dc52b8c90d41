"""The promotion rule and its gate, on leaderboard entries (no Dagster)."""

from __future__ import annotations

import pytest

from rm_rewards.benchmarks.leaderboard import LeaderboardEntry
from rm_rewards.benchmarks.promotion import PromotionRule, best_model, decide_promotion, partial_allowed


def _board(scores: dict[str, dict[str, float | None]]) -> list[LeaderboardEntry]:
    entries = []
    for model, by_benchmark in scores.items():
        for benchmark, value in by_benchmark.items():
            status = "scored" if value is not None else "not_applicable"
            entries.append(LeaderboardEntry(model_key=model, benchmark=benchmark, headline=value, status=status))
    return entries


BOARD = _board({
    "checkpoint:a": {"rm_bench": 0.60, "reward_bench_2": 0.50},
    "checkpoint:b": {"rm_bench": 0.70, "reward_bench_2": 0.49},
    "checkpoint:c": {"rm_bench": 0.65, "reward_bench_2": None},
    "reward:length_penalty": {"rm_bench": 0.90, "reward_bench_2": 0.90},
})


def test_best_model_is_the_best_eligible_on_the_benchmark():
    assert best_model(BOARD, PromotionRule()) == "checkpoint:b"  # the rule reward is not eligible
    assert best_model(BOARD, PromotionRule(eligible_kinds=("checkpoint", "reward"))) == "reward:length_penalty"
    assert best_model(BOARD, PromotionRule(benchmark="rmb_pairwise")) is None


def test_first_promotion_serves_the_best():
    decision = decide_promotion(BOARD, None, PromotionRule())
    assert (decision.status, decision.served, decision.gate_passed) == ("promoted", "checkpoint:b", True)
    assert decision.candidate_headline == 0.70 and "first model served" in decision.reason


def test_promotion_beats_the_current_by_the_margin_without_regression():
    decision = decide_promotion(BOARD, "checkpoint:a", PromotionRule(margin=0.05, max_regression=0.02))
    assert decision.status == "promoted" and decision.served == "checkpoint:b"
    assert (decision.candidate_headline, decision.current_headline) == (0.70, 0.60)
    deltas = {c.benchmark: round(c.delta, 4) for c in decision.comparisons}
    assert deltas == {"rm_bench": 0.1, "reward_bench_2": -0.01}


def test_not_beating_by_the_margin_keeps_the_current():
    decision = decide_promotion(BOARD, "checkpoint:a", PromotionRule(margin=0.1))
    assert decision.status == "kept" and decision.served == "checkpoint:a" and not decision.gate_passed
    assert "0.7000 vs 0.6000 (+0.1000)" in decision.reason and "margin 0.1" in decision.reason


def test_a_regression_on_another_benchmark_blocks():
    decision = decide_promotion(BOARD, "checkpoint:a", PromotionRule(max_regression=0.005))
    assert decision.status == "blocked" and decision.served == "checkpoint:a"
    assert decision.failures == ["reward_bench_2: 0.4900 vs 0.5000 (-0.0100) regresses by more than 0.005"]


def test_a_candidate_without_every_report_waits():
    board = _board({"checkpoint:a": {"rm_bench": 0.6, "rmb_pairwise": 0.5}, "checkpoint:new": {"rm_bench": 0.9}})
    decision = decide_promotion(board, "checkpoint:a", PromotionRule())
    assert decision.status == "kept" and decision.served == "checkpoint:a"
    assert decision.failures == ["rmb_pairwise: not scored yet (the current model is: 0.5000)"]


def test_current_still_best_stays():
    decision = decide_promotion(BOARD, "checkpoint:b", PromotionRule())
    assert decision.status == "kept" and decision.served == "checkpoint:b" and decision.gate_passed
    assert "still the best on rm_bench" in decision.reason


def test_nothing_eligible_keeps_what_is_served():
    decision = decide_promotion(_board({"reward:x": {"rm_bench": 0.5}}), "checkpoint:old", PromotionRule())
    assert decision.status == "kept" and decision.served == "checkpoint:old" and decision.candidate is None


def test_override_skips_the_selection_but_not_the_gate():
    promoted = decide_promotion(BOARD, "checkpoint:b", PromotionRule(override="reward:length_penalty"))
    assert promoted.status == "promoted" and promoted.served == "reward:length_penalty"
    waiting = decide_promotion(BOARD, "checkpoint:a", PromotionRule(override="checkpoint:c"))
    assert waiting.status == "blocked" and "reward_bench_2: not scored yet" in waiting.failures[0]
    blocked = decide_promotion(BOARD, "checkpoint:b", PromotionRule(override="checkpoint:a"))
    assert blocked.status == "blocked" and blocked.served == "checkpoint:b"
    assert "does not beat the current model" in blocked.failures[0]


@pytest.mark.parametrize("current", ["checkpoint:b", None])
def test_forced_override_is_served_and_says_so(current):
    rule = PromotionRule(override="checkpoint:unscored", force=True)
    decision = decide_promotion(BOARD, current, rule)
    assert decision.status == "promoted" and decision.served == "checkpoint:unscored"
    assert decision.forced and not decision.gate_passed and "not scored on rm_bench" in decision.reason


def test_rule_rejects_unknown_fields_and_negative_thresholds():
    with pytest.raises(ValueError):
        PromotionRule(margin=-0.1)
    with pytest.raises(ValueError):
        PromotionRule(benchmrk="rm_bench")


# --- partial headlines (bundled benchmark samples) ------------------------------------------------

RM_BENCH_PARTS = "3 of 4 domains (missing: math)"


def _partial_board(cells: dict[str, dict[str, tuple[float, str | None]]]) -> list[LeaderboardEntry]:
    """(value, parts): parts None is a full (scored) headline, else a partial one over those parts."""
    entries = []
    for model, by_benchmark in cells.items():
        for benchmark, (value, parts) in by_benchmark.items():
            if parts is None:
                entries.append(LeaderboardEntry(model_key=model, benchmark=benchmark, headline=value, status="scored"))
            else:
                entries.append(LeaderboardEntry(model_key=model, benchmark=benchmark, partial_headline=value,
                                                headline_parts=parts, status="partial"))
    return entries


# As `make run` leaves it: every RM-Bench cell partial (no math items in the bundled sample).
PARTIAL = _partial_board({
    "checkpoint:a": {"rm_bench": (0.52, RM_BENCH_PARTS), "rmb_pairwise": (0.50, None)},
    "checkpoint:b": {"rm_bench": (0.55, RM_BENCH_PARTS), "rmb_pairwise": (0.49, None)},
    "reward:length_penalty": {"rm_bench": (0.90, RM_BENCH_PARTS), "rmb_pairwise": (0.90, None)},
})


def test_partial_headlines_are_not_chosen_on_by_default():
    assert best_model(PARTIAL, PromotionRule()) is None
    decision = decide_promotion(PARTIAL, None, PromotionRule())
    assert (decision.status, decision.served) == ("kept", None)
    assert "partial ones not allowed" in decision.reason


def test_allow_partial_promotes_and_says_it_was_on_a_partial_headline():
    decision = decide_promotion(PARTIAL, None, PromotionRule(allow_partial=True))
    assert (decision.status, decision.served) == ("promoted", "checkpoint:b")
    assert decision.on_partial_headline and decision.candidate_parts == RM_BENCH_PARTS
    assert decision.candidate_headline == 0.55
    assert f"on a partial headline ({RM_BENCH_PARTS})" in decision.reason

    # the next candidate is gated on the same partial numbers, over the same parts
    better = PARTIAL + _partial_board({"checkpoint:c": {"rm_bench": (0.60, RM_BENCH_PARTS),
                                                        "rmb_pairwise": (0.40, None)}})
    blocked = decide_promotion(better, "checkpoint:b", PromotionRule(allow_partial=True))
    assert (blocked.status, blocked.served, blocked.candidate) == ("blocked", "checkpoint:b", "checkpoint:c")
    assert blocked.failures == ["rmb_pairwise: 0.4000 vs 0.4900 (-0.0900) regresses by more than 0.02"]
    rm_bench = next(c for c in blocked.comparisons if c.benchmark == "rm_bench")
    assert rm_bench.candidate_parts == rm_bench.current_parts == RM_BENCH_PARTS and round(rm_bench.delta, 4) == 0.05


def test_a_full_headline_wins_over_partial_ones():
    board = PARTIAL + _partial_board({"checkpoint:full": {"rm_bench": (0.51, None)}})
    assert best_model(board, PromotionRule(allow_partial=True)) == "checkpoint:full"
    decision = decide_promotion(board, None, PromotionRule(allow_partial=True))
    assert decision.served == "checkpoint:full" and not decision.on_partial_headline
    assert "partial" not in decision.reason


def test_partial_numbers_over_different_parts_are_not_compared():
    other_parts = "2 of 4 domains (missing: math, safety)"
    board = _partial_board({
        "checkpoint:old": {"rm_bench": (0.50, other_parts)},
        "checkpoint:new": {"rm_bench": (0.70, RM_BENCH_PARTS)},
        "checkpoint:narrow": {"rm_bench": (0.99, other_parts)},
    })
    # ranked only among the widest parts: 0.99 over 2 domains does not beat 0.70 over 3
    assert best_model(board, PromotionRule(allow_partial=True)) == "checkpoint:new"
    decision = decide_promotion(board, "checkpoint:old", PromotionRule(allow_partial=True))
    assert (decision.status, decision.served) == ("kept", "checkpoint:old")
    assert decision.failures == [f"rm_bench: not comparable: 0.7000 (partial: {RM_BENCH_PARTS}) vs the current "
                                 f"model's 0.5000 (partial: {other_parts})"]
    assert next(c for c in decision.comparisons if c.benchmark == "rm_bench").delta is None


def test_partial_allowed_follows_the_benchmark_source_unless_configured():
    assert partial_allowed(None, "rm_bench", "bundled")[0] is True
    assert "bundled sample" in partial_allowed(None, "rm_bench", "bundled")[1]
    assert partial_allowed(None, "rm_bench", "hub") == (
        False, "not allowed: rm_bench is read from hub (a partial headline there is missing data)")
    assert partial_allowed(None, "judge_bench", None)[0] is False
    assert partial_allowed(False, "rm_bench", "bundled")[0] is False
    assert partial_allowed(True, "rm_bench", "files")[0] is True
