"""Pairwise judge consistency on a hand-made verdict table; counts worked out in comments."""

from __future__ import annotations

import pytest

from rm_rewards.benchmarks.consistency import JudgedPair, consistency_report
from rm_rewards.core.kinds import PairwiseVerdict


def v(item_id: str, first: int, second: int, winner: str | None) -> JudgedPair:
    return JudgedPair(item_id=item_id, first=first, second=second, winner=winner)


VERDICTS = [
    # x: 0 beats 1 and 1 beats 2 in both orders; on (0,2) the judge picks position A both times:
    #    a flip and a first-position symmetry violation, so (0,2) has no edge and no triad is decided
    v("x", 0, 1, "a"),
    v("x", 1, 0, "b"),
    v("x", 1, 2, "a"),
    v("x", 2, 1, "b"),
    v("x", 0, 2, "a"),
    v("x", 2, 0, "a"),
    # y: consistent in both orders, but 0 > 1 > 2 > 0: one cyclic triad
    v("y", 0, 1, "a"),
    v("y", 1, 0, "b"),
    v("y", 1, 2, "a"),
    v("y", 2, 1, "b"),
    v("y", 0, 2, "b"),
    v("y", 2, 0, "a"),
    # z: tie one way, 1 wins the other way: a flip but not a symmetry violation; 2 responses only
    v("z", 0, 1, "tie"),
    v("z", 1, 0, "a"),
    # w: (0,1) position B both times: flip + second-position violation; (0,2) has a failed
    #    verdict so it is not complete, and its one readable verdict gives 0 > 2; 1 > 2 both ways
    v("w", 0, 1, "b"),
    v("w", 1, 0, "b"),
    v("w", 0, 2, "a"),
    v("w", 2, 0, None),
    v("w", 1, 2, "a"),
    v("w", 2, 1, "b"),
    # v: one order only, 0 > 1 > 2 > 3 > 0: a 4-cycle with no decided triad
    v("v", 0, 1, "a"),
    v("v", 1, 2, "a"),
    v("v", 2, 3, "a"),
    v("v", 3, 0, "a"),
    # u: one order only, 0 > 1 > 2 and 0 > 2: a transitive decided triad
    v("u", 0, 1, "a"),
    v("u", 1, 2, "a"),
    v("u", 0, 2, "a"),
]


def test_consistency_counts_and_rates() -> None:
    report = consistency_report(VERDICTS)
    assert report.n_items == 6
    assert report.n_verdicts == 27  # 6 + 6 + 2 + 6 + 4 + 3
    assert report.n_failed_verdicts == 1
    assert report.n_pairs == 17  # 3 + 3 + 1 + 3 + 4 + 3
    assert report.n_complete_pairs == 9  # x 3, y 3, z 1, w 2
    assert report.position_flips == 3  # x (0,2), z (0,1), w (0,1)
    assert report.position_flip_rate == pytest.approx(3 / 9)
    assert report.flipped_pairs == [("x", 0, 2), ("z", 0, 1), ("w", 0, 1)]
    assert (
        report.symmetry_violations,
        report.first_position_picked_twice,
        report.second_position_picked_twice,
    ) == (
        2,
        1,
        1,
    )
    assert report.symmetry_violation_rate == pytest.approx(2 / 9)
    assert report.n_items_checked_for_cycles == 5  # every item but z
    assert report.items_with_cycles == ["y", "v"]
    assert report.item_cycle_rate == pytest.approx(2 / 5)
    assert (report.n_decided_triads, report.n_cyclic_triads) == (2, 1)  # y (cyclic) and u (transitive)
    assert report.transitivity_violation_rate == pytest.approx(1 / 2)


def test_consistency_markdown_and_summary() -> None:
    report = consistency_report(VERDICTS)
    text = report.to_markdown()
    assert "| position flips | 3 | 9 | 33.33 |" in text
    assert "| cyclic triads | 1 | 2 | 50.00 |" in text
    summary = report.summary()
    assert summary["position_flips"] == 3 and "flipped_pairs" not in summary


def test_a_consistent_judge_has_no_violations() -> None:
    verdicts = [v("k", i, j, "a" if i < j else "b") for i in range(4) for j in range(4) if i != j]
    report = consistency_report(verdicts)
    assert (report.position_flips, report.symmetry_violations, report.n_cyclic_triads) == (0, 0, 0)
    assert report.n_decided_triads == 4  # C(4, 3), all transitive


def test_rows_as_dicts_and_from_pairwise_verdicts() -> None:
    rows = [
        {"item_id": "a", "first": 0, "second": 1, "winner": "a"},
        JudgedPair.from_verdict("a", 1, 0, PairwiseVerdict(error="unparseable output")),
    ]
    report = consistency_report(rows)
    assert (report.n_verdicts, report.n_failed_verdicts, report.n_complete_pairs) == (2, 1, 0)
    assert report.position_flip_rate is None  # nothing to compare, not zero


def test_bad_verdict_tables_raise_naming_the_row() -> None:
    with pytest.raises(ValueError, match="verdict 1: item 'a' pair \\(0, 1\\) was already judged"):
        consistency_report([v("a", 0, 1, "a"), v("a", 0, 1, "b")])
    with pytest.raises(ValueError, match="(?s)verdict 0: .*two different response indices"):
        consistency_report([{"item_id": "a", "first": 2, "second": 2, "winner": "a"}])
    with pytest.raises(ValueError, match="verdict 0"):
        consistency_report([{"item_id": "a", "first": 0, "second": 1, "winner": "A"}])
