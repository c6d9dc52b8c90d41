"""How self-consistent a pairwise judge is, from its verdicts on pairs asked in both orders.

The input is a verdict table: one `JudgedPair` per question asked, "of response `first` (shown as
A) and response `second` (shown as B) of item `item_id`, which is better?", with the positional
answer "a", "b", "tie", or None when no verdict could be read. Each verdict is turned into an
absolute outcome (the index of the winner, or a tie) before comparing. The report counts:

- position flips: a pair judged in both orders whose outcome changes with the order (winner to
  the other response, or a win to a tie);
- symmetry violations: the strongest flips, where both orders give a strict win but to opposite
  responses, i.e. the judge picked the same position twice (split into first- and second-position);
- transitivity violations: per item, a strict preference graph over its responses (an edge i -> j
  when every readable verdict on the pair says i beats j; disagreeing or tied pairs give no edge),
  then cyclic triads (i > j > k > i) among the triads with all three edges, and items whose graph
  has a cycle of any length (which needs at least three responses).

Failed verdicts are counted (`n_failed_verdicts`) and never read as a preference; a pair is
"complete" only when both orders have a readable verdict, and flip rates are over complete pairs.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from rm_rewards.benchmarks.report_models import fmt_pct, markdown_table
from rm_rewards.core.kinds import PairwiseVerdict

Outcome = int | Literal["tie"]


class JudgedPair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str
    first: int
    second: int
    winner: Literal["a", "b", "tie"] | None
    error: str | None = None

    @model_validator(mode="after")
    def _two_responses(self) -> JudgedPair:
        if self.first < 0 or self.second < 0 or self.first == self.second:
            raise ValueError(
                f"item {self.item_id!r}: needs two different response indices, got "
                f"{self.first} and {self.second}"
            )
        return self

    @classmethod
    def from_verdict(cls, item_id: str, first: int, second: int, verdict: PairwiseVerdict) -> JudgedPair:
        """From a `PairwiseReward` verdict on (first, second); an error means no verdict."""
        winner = None if verdict.error is not None else verdict.winner
        return cls(item_id=item_id, first=first, second=second, winner=winner, error=verdict.error)

    def outcome(self) -> Outcome | None:
        if self.winner is None:
            return None
        return {"a": self.first, "b": self.second, "tie": "tie"}[self.winner]


class ConsistencyReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_items: int
    n_verdicts: int
    n_failed_verdicts: int
    n_pairs: int
    n_complete_pairs: int
    position_flips: int
    position_flip_rate: float | None
    symmetry_violations: int
    symmetry_violation_rate: float | None
    first_position_picked_twice: int
    second_position_picked_twice: int
    n_items_checked_for_cycles: int
    n_items_with_cycles: int
    item_cycle_rate: float | None
    n_decided_triads: int
    n_cyclic_triads: int
    transitivity_violation_rate: float | None
    flipped_pairs: list[tuple[str, int, int]]
    items_with_cycles: list[str]

    def summary(self) -> dict[str, float | int | None]:
        return {key: value for key, value in self.model_dump().items() if not isinstance(value, list)}

    def to_markdown(self) -> str:
        rows = [
            ["verdicts", self.n_verdicts, "", ""],
            [
                "failed verdicts",
                self.n_failed_verdicts,
                self.n_verdicts,
                _rate(self.n_failed_verdicts, self.n_verdicts),
            ],
            ["position flips", self.position_flips, self.n_complete_pairs, fmt_pct(self.position_flip_rate)],
            [
                "symmetry violations",
                self.symmetry_violations,
                self.n_complete_pairs,
                fmt_pct(self.symmetry_violation_rate),
            ],
            [
                "  first position picked twice",
                self.first_position_picked_twice,
                self.n_complete_pairs,
                _rate(self.first_position_picked_twice, self.n_complete_pairs),
            ],
            [
                "  second position picked twice",
                self.second_position_picked_twice,
                self.n_complete_pairs,
                _rate(self.second_position_picked_twice, self.n_complete_pairs),
            ],
            [
                "cyclic triads",
                self.n_cyclic_triads,
                self.n_decided_triads,
                fmt_pct(self.transitivity_violation_rate),
            ],
            [
                "items with a cycle",
                self.n_items_with_cycles,
                self.n_items_checked_for_cycles,
                fmt_pct(self.item_cycle_rate),
            ],
        ]
        return (
            "## Pairwise judge consistency\n\n"
            + markdown_table(["check", "count", "out of", "rate (%)"], rows)
            + "\n"
        )


def _rate(count: int, total: int) -> str:
    return fmt_pct(count / total) if total else "n/a"


def _ratio(count: int, total: int) -> float | None:
    return count / total if total else None


def _collect(
    verdicts: Iterable[JudgedPair | Mapping[str, Any]],
) -> dict[str, dict[tuple[int, int], JudgedPair]]:
    by_item: dict[str, dict[tuple[int, int], JudgedPair]] = {}
    for position, raw in enumerate(verdicts):
        try:
            verdict = raw if isinstance(raw, JudgedPair) else JudgedPair.model_validate(raw)
        except ValueError as exc:
            raise ValueError(f"verdict {position}: {exc}") from exc
        asked = by_item.setdefault(verdict.item_id, {})
        key = (verdict.first, verdict.second)
        if key in asked:
            raise ValueError(
                f"verdict {position}: item {verdict.item_id!r} pair {key} was already judged in this order"
            )
        asked[key] = verdict
    return by_item


def _strict_edges(asked: dict[tuple[int, int], JudgedPair]) -> dict[frozenset[int], int]:
    """Unordered pair -> winner, when every readable verdict on the pair names the same winner."""
    outcomes: dict[frozenset[int], set[Outcome]] = {}
    for (first, second), verdict in asked.items():
        outcome = verdict.outcome()
        if outcome is not None:
            outcomes.setdefault(frozenset((first, second)), set()).add(outcome)
    return {pair: next(iter(seen)) for pair, seen in outcomes.items() if len(seen) == 1 and "tie" not in seen}


def _has_cycle(nodes: set[int], edges: dict[frozenset[int], int]) -> bool:
    beats: dict[int, list[int]] = {n: [] for n in nodes}
    for pair, winner in edges.items():
        (loser,) = pair - {winner}
        beats[winner].append(loser)
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: int) -> bool:
        state[node] = 1
        for nxt in beats[node]:
            if state.get(nxt) == 1 or (nxt not in state and visit(nxt)):
                return True
        state[node] = 2
        return False

    return any(node not in state and visit(node) for node in nodes)


def _triads(nodes: set[int], edges: dict[frozenset[int], int]) -> tuple[int, int]:
    decided = cyclic = 0
    for triple in itertools.combinations(sorted(nodes), 3):
        pairs = [frozenset(p) for p in itertools.combinations(triple, 2)]
        if all(p in edges for p in pairs):
            decided += 1
            # a triad is cyclic exactly when each of its responses wins once
            cyclic += sorted(edges[p] for p in pairs) == list(triple)
    return decided, cyclic


def _order_checks(
    item_id: str, asked: dict[tuple[int, int], JudgedPair], tally: Counter[str]
) -> list[tuple[str, int, int]]:
    """Flip and symmetry counts over the pairs of one item judged readably in both orders."""
    flipped = []
    for i, j in sorted({(min(key), max(key)) for key in asked}):
        forward, backward = asked.get((i, j)), asked.get((j, i))
        if forward is None or backward is None or forward.winner is None or backward.winner is None:
            continue
        tally["complete"] += 1
        if forward.outcome() == backward.outcome():
            continue
        tally["flips"] += 1
        flipped.append((item_id, i, j))
        if forward.winner == backward.winner:  # same position twice: "a"/"a" or "b"/"b"
            tally["first" if forward.winner == "a" else "second"] += 1
    return flipped


def _cycle_checks(asked: dict[tuple[int, int], JudgedPair], tally: Counter[str]) -> bool:
    """Triad counts of one item; whether its strict preference graph has a cycle."""
    nodes = {index for key in asked for index in key}
    if len(nodes) < 3:
        return False
    edges = _strict_edges(asked)
    decided, cyclic = _triads(nodes, edges)
    tally["checked"] += 1
    tally["decided"] += decided
    tally["cyclic"] += cyclic
    return _has_cycle(nodes, edges)


def consistency_report(verdicts: Iterable[JudgedPair | Mapping[str, Any]]) -> ConsistencyReport:
    """Position flips, symmetry and transitivity violations of a pairwise judge's verdict table."""
    by_item = _collect(verdicts)
    tally: Counter[str] = Counter()
    flipped: list[tuple[str, int, int]] = []
    cyclic_items: list[str] = []
    for item_id, asked in by_item.items():
        tally["verdicts"] += len(asked)
        tally["failed"] += sum(1 for v in asked.values() if v.winner is None)
        tally["pairs"] += len({frozenset(key) for key in asked})
        flipped += _order_checks(item_id, asked, tally)
        if _cycle_checks(asked, tally):
            cyclic_items.append(item_id)
    symmetry = tally["first"] + tally["second"]
    return ConsistencyReport(
        n_items=len(by_item),
        n_verdicts=tally["verdicts"],
        n_failed_verdicts=tally["failed"],
        n_pairs=tally["pairs"],
        n_complete_pairs=tally["complete"],
        position_flips=tally["flips"],
        position_flip_rate=_ratio(tally["flips"], tally["complete"]),
        symmetry_violations=symmetry,
        symmetry_violation_rate=_ratio(symmetry, tally["complete"]),
        first_position_picked_twice=tally["first"],
        second_position_picked_twice=tally["second"],
        n_items_checked_for_cycles=tally["checked"],
        n_items_with_cycles=len(cyclic_items),
        item_cycle_rate=_ratio(len(cyclic_items), tally["checked"]),
        n_decided_triads=tally["decided"],
        n_cyclic_triads=tally["cyclic"],
        transitivity_violation_rate=_ratio(tally["cyclic"], tally["decided"]),
        flipped_pairs=flipped,
        items_with_cycles=cyclic_items,
    )
