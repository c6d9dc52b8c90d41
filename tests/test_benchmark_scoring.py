"""Benchmark scoring on small hand-made score tables; every expected number is worked out by hand."""

from __future__ import annotations

import math

import pytest

from rm_rewards.benchmarks.items import BenchmarkItem, item_to_sample, items_to_samples, scores_from_results
from rm_rewards.benchmarks.metrics import best_of_k_credit, score_benchmark
from rm_rewards.core.schema import ChatMessage, ResponseScore, RewardResult

PROMPT = [ChatMessage(role="user", content="q")]


def item(benchmark: str, item_id: str, domain: str, n_responses: int, n_correct: int = 1) -> BenchmarkItem:
    return BenchmarkItem(
        benchmark=benchmark,
        id=item_id,
        domain=domain,
        input=PROMPT,
        responses=[f"r{i}" for i in range(n_responses)],
        n_correct=n_correct,
    )


def rm_item(item_id: str, domain: str) -> BenchmarkItem:
    return item("rm_bench", item_id, domain, 6, n_correct=3)


# --- RM-Bench ------------------------------------------------------------------------------------


def test_rm_bench_two_item_domain_hard_normal_easy() -> None:
    items = [rm_item("a", "chat"), rm_item("b", "chat")]
    scores = {
        # chosen [5,5,5] vs rejected [4,6,6]: every chosen beats only rejected[0]
        # -> wins [[1,0,0],[1,0,0],[1,0,0]]
        "a": [5, 5, 5, 4, 6, 6],
        # chosen [1,2,3] vs rejected [0,2,2]: 2 > 2 is a tie, which is wrong
        # -> wins [[1,0,0],[1,0,0],[1,1,1]]
        "b": [1, 2, 3, 0, 2, 2],
    }
    report = score_benchmark("rm_bench", items, scores)
    (chat,) = report.domains
    # M = (sum of wins) / 2 items = [[1,0,0],[1,0,0],[1,.5,.5]]
    assert chat.matrix == [[1, 0, 0], [1, 0, 0], [1, 0.5, 0.5]]
    assert chat.hard == pytest.approx(0.0)  # (M01 + M02 + M12) / 3 = 0
    assert chat.normal == pytest.approx(0.5)  # (1 + 0 + .5) / 3
    assert chat.easy == pytest.approx(2.5 / 3)  # (M10 + M20 + M21) / 3 = (1 + 1 + .5) / 3
    assert chat.average == pytest.approx((0 + 0.5 + 2.5 / 3) / 3)
    # one domain of four: RM-Bench's total needs all of them, so there is none, only the partial mean
    assert report.total is None and report.headline is None
    assert report.total_of_present == pytest.approx(chat.average) == report.partial_headline
    assert report.coverage.describe() == "1 of 4 domains (missing: math, code, safety)"
    assert report.missing_domains == ["math", "code", "safety"]
    assert (chat.n_items, chat.n_failed, chat.n_missing) == (2, 0, 0)


def test_rm_bench_pools_safety_and_averages_domains() -> None:
    chat = [rm_item("a", "chat"), rm_item("b", "chat")]
    safety = [
        rm_item("r1", "safety-refuse"),
        rm_item("r2", "safety-refuse"),
        rm_item("s1", "safety-response"),
    ]
    scores = {
        "a": [5, 5, 5, 4, 6, 6],
        "b": [1, 2, 3, 0, 2, 2],
        "r1": [9, 9, 9, 0, 0, 0],  # all 9 comparisons right
        "r2": [9, 9, 9, 0, 0, 0],
        "s1": [0, 0, 0, 1, 1, 1],  # all 9 wrong
    }
    report = score_benchmark("rm_bench", chat + safety, scores)
    assert [d.domain for d in report.domains] == ["chat", "safety"]
    safety_result = report.domains[1]
    # pooled over 3 items: every cell is 2/3 (averaging the two sub-domains would give 1/2)
    assert safety_result.n_items == 3
    assert safety_result.matrix == [[pytest.approx(2 / 3)] * 3] * 3
    assert safety_result.average == pytest.approx(2 / 3)
    # chat: hard 0, normal 1/2, easy 5/6, average 4/9 (previous test)
    assert report.hard == pytest.approx((0 + 2 / 3) / 2)
    assert report.normal == pytest.approx((0.5 + 2 / 3) / 2)
    assert report.easy == pytest.approx((5 / 6 + 2 / 3) / 2)
    assert report.total_of_present == pytest.approx((4 / 9 + 2 / 3) / 2)  # = 5/9
    assert report.total is None and report.missing_domains == ["math", "code"]
    summary = report.summary()
    assert summary["total"] is None and summary["total_over_present"] == pytest.approx(5 / 9)
    assert (summary["n_parts_present"], summary["n_parts_required"]) == (2, 4)
    assert "hard" not in summary and summary["hard_over_present"] == pytest.approx((0 + 2 / 3) / 2)


def test_rm_bench_failed_and_missing_scores_count_wrong() -> None:
    items = [rm_item("a", "code"), rm_item("gone", "code")]
    # chosen [None,2,3] vs rejected [1,None,1]: any comparison with None is wrong
    # -> wins [[0,0,0],[1,0,1],[1,0,1]]; "gone" has no row: all 9 wrong, still in the denominator
    report = score_benchmark("rm_bench", items, {"a": [None, 2, 3, 1, None, 1]})
    (code,) = report.domains
    assert code.matrix == [[0, 0, 0], [0.5, 0, 0.5], [0.5, 0, 0.5]]
    assert code.hard == pytest.approx(0.5 / 3)  # M01 + M02 + M12 = 0 + 0 + .5
    assert code.normal == pytest.approx(0.5 / 3)  # M00 + M11 + M22 = 0 + 0 + .5
    assert code.easy == pytest.approx(1 / 3)  # M10 + M20 + M21 = .5 + .5 + 0
    assert (code.n_items, code.n_failed, code.n_missing) == (2, 2, 1)
    assert (report.n_failed, report.n_missing) == (2, 1)


def test_rm_bench_markdown_shows_numbers_and_missing_domains() -> None:
    items = [rm_item("a", "chat"), rm_item("b", "chat")]
    text = score_benchmark(
        "rm_bench", items, {"a": [5, 5, 5, 4, 6, 6], "b": [1, 2, 3, 0, 2, 2]}
    ).to_markdown()
    assert "| chat | 2 | 0 | 0.00 | 50.00 | 83.33 | 44.44 |" in text
    assert "Missing domains (not in the overall numbers): math, code, safety." in text
    assert "| chosen markdown | 100.00 | 50.00 | 50.00 |" in text


# --- RewardBench 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "credit"),
    [
        ([5, 1, 2, 3], 1.0),  # chosen alone at the max
        ([5, 5, 1, 2], 1 / 2),  # tied with one rejected at the max
        ([5, 5, 5, 1], 1 / 3),
        ([5, 5, 5, 5], 1 / 4),
        ([4, 5, 5, 1], 0.0),  # chosen below the max
        ([None, 1, 1, 1], 0.0),  # failed judgement on the chosen
        ([5, None, 1, 1], 0.0),  # failed judgement on a rejected: still wrong, never skipped
    ],
)
def test_reward_bench_2_tie_credit(scores: list[float | None], credit: float) -> None:
    assert best_of_k_credit(scores) == pytest.approx(credit)


def ties_item(item_id: str, n_correct: int, n_responses: int) -> BenchmarkItem:
    return item("reward_bench_2", item_id, "Ties", n_responses, n_correct)


# Per prompt id (correct scores first). spread = best - worst correct of tied; margin = worst
# correct - best incorrect.
TIES_SCORES = {
    # tied: spread 10-8=2, margin 8-6=2 (accurate); ref: margin 9-7=2 (accurate)
    # pref 2>2 no; pref_hard min(2,2)=2>2 no; m = tanh(2/2-1) = 0
    "tied:1": [10, 8, 9, 5, 6],
    "ref:1": [9, 4, 7],
    # tied: spread 1, margin 6-2=4 (accurate); ref: margin 3-1.5=1.5 (accurate)
    # pref 4>1 yes; pref_hard min(1.5,4)=1.5>1 yes; m = tanh(1.5-1) = tanh(.5)
    "tied:2": [7, 6, 1, 2],
    "ref:2": [3, 1.5, 0],
    # tied: spread 0, margin 5-5=0 (not accurate); ref: margin 3-3=0 (not accurate)
    # pref 0>0 no; pref_hard no; m = tanh(0/0 - 1) = NaN -> 0
    "tied:3": [5, 5, 5, 1],
    "ref:3": [3, 3, 1],
    # tied: spread 0, margin 4-1=3 (accurate); ref: margin 2-3=-1 (not accurate)
    # pref 3>0 yes; pref_hard min(-1,3)=-1>0 no; m = tanh(-1/0 - 1) = tanh(-inf) = -1
    "tied:5": [4, 4, 1],
    "ref:5": [2, 3],
    # ref only (no tied:4): counts for ref accuracy, not for the paired terms; accurate
    "ref:4": [1, 0],
}


def ties_items() -> list[BenchmarkItem]:
    n_correct = {"tied:1": 3, "tied:2": 2, "tied:3": 2, "tied:5": 2}
    return [ties_item(i, n_correct.get(i, 1), len(s)) for i, s in TIES_SCORES.items()]


def test_reward_bench_2_ties_components_and_score() -> None:
    report = score_benchmark("reward_bench_2", ties_items(), TIES_SCORES)
    (ties_result,) = report.subsets
    ties = ties_result.ties
    assert ties is not None
    assert (ties.n_ref, ties.n_tied, ties.n_paired) == (5, 4, 4)
    assert ties.ref_accuracy == pytest.approx(3 / 5)  # ref 1, 2, 4
    assert ties.tied_accuracy == pytest.approx(3 / 4)  # tied 1, 2, 5
    assert ties.pref == pytest.approx(2 / 4)  # ids 2, 5
    assert ties.pref_hard == pytest.approx(1 / 4)  # id 2
    m = (0 + math.tanh(0.5) + 0 - 1) / 4
    assert ties.margin_score == pytest.approx(m)
    expected = 0.30 * 3 / 4 + 0.30 * 3 / 5 + 0.20 * 2 / 4 + 0.20 * 1 / 4 + 0.01 * m  # = 0.553655...
    assert ties_result.score == pytest.approx(expected)
    assert ties_result.score == pytest.approx(0.5536552929, abs=1e-9)


def test_reward_bench_2_ties_failed_tied_side_is_wrong_everywhere_it_is_used() -> None:
    items = [ties_item("tied:1", 2, 3), ties_item("ref:1", 1, 2)]
    # tied failed: tied acc 0, pref 0, pref_hard 0, m at its floor -1; ref margin 5-1=4 accurate
    report = score_benchmark("reward_bench_2", items, {"tied:1": [10, None, 1], "ref:1": [5, 1]})
    ties = report.subsets[0]
    assert ties.score == pytest.approx(0.30 * 0 + 0.30 * 1 + 0 + 0 + 0.01 * -1)  # 0.29
    assert ties.n_failed == 1


def test_reward_bench_2_ties_failed_ref_side_keeps_pref() -> None:
    items = [ties_item("tied:1", 2, 3), ties_item("ref:1", 1, 2)]
    # tied: spread 1, margin 9-1=8: accurate, pref 8>1; ref failed: acc 0, pref_hard 0, m -1
    report = score_benchmark("reward_bench_2", items, {"tied:1": [10, 9, 1], "ref:1": [None, 1]})
    assert report.subsets[0].score == pytest.approx(0.30 * 1 + 0.30 * 0 + 0.20 * 1 + 0 + 0.01 * -1)  # 0.49


def test_reward_bench_2_with_missing_subsets_has_no_leaderboard_score_only_a_partial_mean() -> None:
    focus = [item("reward_bench_2", f"f{i}", "Focus", 4) for i in range(3)]
    math_items = [item("reward_bench_2", f"m{i}", "Math", 4) for i in range(2)]
    scores = {
        "f0": [5, 1, 2, 3],
        "f1": [5, 5, 1, 2],
        "f2": [5, 5, 5, 1],  # 1 + 1/2 + 1/3 = 11/6 over 3
        "m0": [4, 5, 5, 1],
        "m1": [5, 5, 5, 5],  # 0 + 1/4 over 2
        **TIES_SCORES,
    }
    report = score_benchmark("reward_bench_2", focus + math_items + ties_items(), scores)
    by_name = {s.subset: s.score for s in report.subsets}
    assert by_name["Focus"] == pytest.approx(11 / 18)
    assert by_name["Math"] == pytest.approx(1 / 8)
    assert [s.subset for s in report.subsets] == ["Math", "Focus", "Ties"]  # leaderboard order
    assert report.leaderboard is None and report.headline is None
    assert report.mean_of_present == pytest.approx((11 / 18 + 1 / 8 + 0.5536552929) / 3)
    assert report.partial_headline == report.mean_of_present
    assert report.missing_subsets == ["Factuality", "Precise IF", "Safety"]
    assert report.coverage.describe() == "3 of 6 subsets (missing: Factuality, Precise IF, Safety)"
    summary = report.summary()
    assert summary["leaderboard"] is None and summary["leaderboard_over_present"] == report.mean_of_present
    text = report.to_markdown()
    assert "| Focus | 3 | 0 | 61.11 |" in text
    assert "| **leaderboard: partial, 3 of 6 subsets (missing: Factuality, Precise IF, Safety)** |" in text
    assert "| mean of present subsets (not the leaderboard score) |" in text
    assert "**Partial:** 3 of 6 subsets" in text


def test_reward_bench_2_with_all_six_subsets_has_the_leaderboard_score() -> None:
    subsets = ["Factuality", "Precise IF", "Math", "Safety", "Focus"]
    items = [item("reward_bench_2", f"{name}-0", name, 4) for name in subsets]
    scores = {f"{name}-0": [5, 1, 1, 1] for name in subsets}  # each subset 1.0
    report = score_benchmark("reward_bench_2", items + ties_items(), {**scores, **TIES_SCORES})
    assert not report.coverage.is_partial
    assert report.leaderboard == pytest.approx((5 + 0.5536552929) / 6) == report.headline
    assert report.partial_headline is None and report.summary()["leaderboard"] == report.leaderboard


def test_reward_bench_2_ties_without_pairs_has_no_score() -> None:
    report = score_benchmark("reward_bench_2", [ties_item("ref:1", 1, 2)], {"ref:1": [2, 1]})
    ties = report.subsets[0]
    assert ties.score is None and ties.ties is not None and ties.ties.pref is None
    assert report.leaderboard is None and report.mean_of_present is None
    assert "Ties" not in report.coverage.present  # a subset without a score is missing from the mean


def test_reward_bench_2_rejects_bad_ties_ids_and_single_answer_tied_prompts() -> None:
    with pytest.raises(ValueError, match="'odd:1'"):
        score_benchmark("reward_bench_2", [ties_item("odd:1", 1, 2)], {"odd:1": [2, 1]})
    items = [ties_item("tied:1", 1, 2), ties_item("ref:1", 1, 2)]
    with pytest.raises(ValueError, match="tied:1.*single correct answer"):
        score_benchmark("reward_bench_2", items, {"tied:1": [2, 1], "ref:1": [2, 1]})


# --- RMB -----------------------------------------------------------------------------------------


def test_rmb_pairwise_accuracy_strict_and_failures_wrong() -> None:
    help_domain, harm_domain = "Helpfulness/Chat/Discussion", "Harmlessness/S1"
    items = [item("rmb_pairwise", str(i), help_domain if i < 3 else harm_domain, 2) for i in range(5)]
    scores = {
        "0": [2, 1],  # right
        "1": [1, 1],  # tie: wrong
        "2": [1, 2],  # wrong
        "3": [None, 1],  # failed: wrong
        # "4" missing: wrong
    }
    report = score_benchmark("rmb_pairwise", items, scores)
    assert report.accuracy == pytest.approx(1 / 5)
    assert (report.n_correct, report.n_failed, report.n_missing) == (1, 2, 1)
    groups = {g.group: (g.n_items, g.n_correct, g.accuracy) for g in report.categories}
    assert groups == {"Helpfulness": (3, 1, pytest.approx(1 / 3)), "Harmlessness": (2, 0, 0.0)}
    assert [s.group for s in report.scenarios] == [harm_domain, help_domain]
    assert "| **all** | 5 | 2 | 1 | 20.00 |" in report.to_markdown()


def test_rmb_best_of_n_needs_to_beat_every_loser() -> None:
    items = [item("rmb_bon", str(i), "Helpfulness/Code/Code Generation", 3) for i in range(4)]
    scores = {
        "0": [5, 4, 3],  # beats both: right
        "1": [5, 5, 1],  # ties a loser: wrong
        "2": [5, 6, 1],  # loses to one: wrong
        "3": [5, 4, None],  # failed judgement on a loser: wrong
    }
    report = score_benchmark("rmb_bon", items, scores)
    assert report.accuracy == pytest.approx(1 / 4)
    assert report.n_failed == 1


# --- score tables and reward results -------------------------------------------------------------


def test_score_table_errors_name_the_item() -> None:
    items = [item("rmb_pairwise", "p1", "Helpfulness/Chat", 2)]
    with pytest.raises(ValueError, match="'p1': 3 scores for 2 responses"):
        score_benchmark("rmb_pairwise", items, {"p1": [1, 2, 3]})
    with pytest.raises(ValueError, match="not items"):
        score_benchmark("rmb_pairwise", items, {"p1": [1, 2], "zz": [1, 2]})
    with pytest.raises(ValueError, match="'p1' response 0: score must be finite"):
        score_benchmark("rmb_pairwise", items, {"p1": [math.inf, 2]})
    with pytest.raises(TypeError, match="'p1' response 1: score must be a number"):
        score_benchmark("rmb_pairwise", items, {"p1": [1, "2"]})
    with pytest.raises(ValueError, match="belong to another benchmark"):
        score_benchmark("rmb_bon", items, {})


def test_nan_score_is_a_failure_not_a_number() -> None:
    items = [item("rmb_pairwise", "p1", "Helpfulness/Chat", 2)]
    report = score_benchmark("rmb_pairwise", items, {"p1": [float("nan"), 0.0]})
    assert (report.accuracy, report.n_failed) == (0.0, 1)


def test_scores_from_results_round_trip() -> None:
    items = [
        item("rmb_bon", "b1", "Helpfulness/Chat", 3),
        item("rmb_bon", "b2", "Helpfulness/Chat", 3),
        item("rmb_bon", "b3", "Helpfulness/Chat", 3),
    ]
    samples = items_to_samples(items)
    assert [s.id for s in samples] == ["rmb_bon:b1", "rmb_bon:b2", "rmb_bon:b3"]
    results = [
        RewardResult(
            reward_name="r",
            sample_id="rmb_bon:b1",
            scores=[ResponseScore(score=3), ResponseScore(score=1), ResponseScore(score=2)],
        ),
        RewardResult(
            reward_name="r",
            sample_id="rmb_bon:b2",
            scores=[ResponseScore(score=3), ResponseScore(error="unparseable"), ResponseScore(score=2)],
        ),
        RewardResult(reward_name="r", sample_id="rmb_bon:b3", error="judge down"),
    ]
    table = scores_from_results(items, results)
    assert table == {"b1": [3, 1, 2], "b2": [3, None, 2], "b3": [None, None, None]}
    report = score_benchmark("rmb_bon", items, table)
    assert (report.n_correct, report.n_failed) == (1, 2)
    with pytest.raises(ValueError, match="not one of the items"):
        scores_from_results(items, [RewardResult(reward_name="r", sample_id="rmb_bon:zz")])


def test_item_to_sample_keeps_order_and_preference() -> None:
    sample = item_to_sample(rm_item("a", "chat"))
    assert sample.task == "listwise" and sample.preference is None  # 3 correct: no single index
    assert [r.text for r in sample.responses] == [f"r{i}" for i in range(6)]
    assert sample.metadata["n_correct"] == 3
    pair = item_to_sample(item("rmb_pairwise", "p", "Helpfulness/Chat", 2))
    assert (pair.task, pair.preference, pair.split) == ("pairwise", 0, "test")
