"""Benchmarks judged pair by pair, for pairwise rewards (judges that compare two responses).

A pairwise reward's default scores (each response's share of wins over all pairs) are not what the
benchmarks ask: RM-Bench asks "does chosen[i] beat rejected[j]?", RMB "does chosen beat reject?"
and "does bon_best beat every loser?", RewardBench 2 "does the chosen beat each rejected?". So a
pairwise reward is asked exactly those (correct, incorrect) pairs (`pairs_for_item`), optionally in
both orders, and the benchmark is scored from the verdicts:

- a pair is won only when every order asked names the correct response; a tie, a verdict for the
  incorrect response, or an order that flips is lost; a failed (unreadable) verdict makes the pair
  failed, which is wrong and counts the item in `n_failed`;
- RM-Bench: M[i][j] = share of items whose pair (chosen i, rejected j) is won, then hard / normal /
  easy as usual (`report_from_pair_outcomes` builds the report directly: nine independent
  verdicts need not agree with any one scalar score per response);
- RMB and RewardBench 2 (non-Ties): the outcomes are written as a score table that the benchmark's
  own rule scores exactly (correct response 1.0; an incorrect one 0.0 when the correct beat it,
  2.0 when it did not, None when the verdict failed), then `score_benchmark` does the rest;
- RewardBench 2 Ties is not supported: its score is built from score margins and spreads, which
  verdicts do not have. Ties items are reported as not applicable (`unsupported_reason`);
- JudgeBench asks its pair as JudgeBench does, (A, B) then (B, A) in the row's own A/B order, and
  scores the verdicts with its own rule (`judge_bench.report_from_verdicts`: decisions summed, a
  failed or tied verdict adds 0), not with "every order must name the correct response".

Every verdict is also kept as a `JudgedPair`, so `consistency_report` can count position flips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from statistics import fmean
from typing import Literal

from rm_rewards.benchmarks import judge_bench
from rm_rewards.benchmarks.consistency import JudgedPair
from rm_rewards.benchmarks.items import BenchmarkItem, item_to_sample
from rm_rewards.benchmarks.metrics import rm_bench_domain_result, rm_bench_report, score_benchmark
from rm_rewards.benchmarks.report_models import BenchmarkReport, RMBenchDomainResult, RMBenchReport
from rm_rewards.core.kinds import PairwiseReward, PairwiseVerdict, describe_error, run_sync
from rm_rewards.core.schema import Sample

PairOrders = Literal["both", "one"]
# (correct index, incorrect index) -> True won, False lost (incl. ties and flips), None failed
PairOutcomes = dict[tuple[int, int], bool | None]

TIES_UNSUPPORTED = (
    "RewardBench 2 Ties is scored from score margins and spreads; pairwise verdicts have neither"
)


def unsupported_reason(item: BenchmarkItem) -> str | None:
    """Why an item cannot be judged pair by pair, or None when it can."""
    if item.benchmark == "reward_bench_2":
        if item.domain.lower() == "ties":
            return TIES_UNSUPPORTED
        if item.n_correct != 1:
            return f"RewardBench 2 pairs need one chosen response, item has {item.n_correct}"
    if item.benchmark == "rm_bench" and (item.n_correct != 3 or len(item.responses) != 6):
        return "RM-Bench pairs need 3 chosen and 3 rejected responses"
    return None


def pairs_for_item(item: BenchmarkItem) -> list[tuple[int, int]]:
    """The (correct, incorrect) response pairs the item's benchmark scores, in item order."""
    if item.benchmark == "rm_bench":
        return [(i, 3 + j) for i in range(3) for j in range(3)]
    return [(0, k) for k in range(1, len(item.responses))]


def _questions(item: BenchmarkItem, orders: PairOrders) -> list[tuple[int, int]]:
    """(first, second) as shown to the judge: correct first (JudgeBench: its response_A first), then
    (both orders) the swap."""
    if item.benchmark == "judge_bench":
        a = judge_bench.a_index(item)
        pairs = [(a, 1 - a)]
        return pairs + [(1 - a, a)] if orders == "both" else pairs
    pairs = pairs_for_item(item)
    return pairs + [(r, c) for c, r in pairs] if orders == "both" else pairs


def _checked_verdict(verdict: object) -> PairwiseVerdict:
    if not isinstance(verdict, PairwiseVerdict):
        return PairwiseVerdict(error=f"judge returned {type(verdict).__name__}, not a PairwiseVerdict")
    return verdict


def _ask(reward: PairwiseReward, sample: Sample, first: int, second: int) -> PairwiseVerdict:
    try:
        return _checked_verdict(reward.compare(sample, first, second))
    except Exception as exc:  # one failed verdict is a value, not the end of the run
        return PairwiseVerdict(error=describe_error(exc))


async def _aask(
    reward: PairwiseReward, sample: Sample, first: int, second: int, limit: asyncio.Semaphore
) -> PairwiseVerdict:
    async with limit:
        try:
            return _checked_verdict(await reward.acompare(sample, first, second))
        except Exception as exc:
            return PairwiseVerdict(error=describe_error(exc))


async def ajudge_items(
    reward: PairwiseReward,
    items: Sequence[BenchmarkItem],
    orders: PairOrders = "both",
    max_concurrency: int = 64,
) -> list[JudgedPair]:
    """Every question of every item, concurrently (up to `max_concurrency` in flight) for async
    judges; a sync judge runs in a worker thread so the event loop stays free."""
    if not reward.is_async:
        return await asyncio.to_thread(judge_items, reward, items, orders)
    limit = asyncio.Semaphore(max(1, max_concurrency))
    jobs, keys = [], []
    for item in items:
        sample = item_to_sample(item)
        for first, second in _questions(item, orders):
            jobs.append(_aask(reward, sample, first, second, limit))
            keys.append((item.id, first, second))
    verdicts = await asyncio.gather(*jobs)
    return [JudgedPair.from_verdict(i, f, s, v) for (i, f, s), v in zip(keys, verdicts)]


def judge_items(
    reward: PairwiseReward,
    items: Sequence[BenchmarkItem],
    orders: PairOrders = "both",
    max_concurrency: int = 64,
) -> list[JudgedPair]:
    """Sync entry point; an async (LLM) judge still runs its questions concurrently."""
    if reward.is_async:
        return run_sync(lambda: ajudge_items(reward, items, orders, max_concurrency))
    out = []
    for item in items:
        sample = item_to_sample(item)
        for first, second in _questions(item, orders):
            out.append(JudgedPair.from_verdict(item.id, first, second, _ask(reward, sample, first, second)))
    return out


def pair_outcomes(items: Sequence[BenchmarkItem], verdicts: Sequence[JudgedPair]) -> dict[str, PairOutcomes]:
    """Per item, each needed pair: won only if every order asked names the correct response."""
    asked: dict[str, dict[tuple[int, int], list[JudgedPair]]] = {}
    for verdict in verdicts:
        pair = (min(verdict.first, verdict.second), max(verdict.first, verdict.second))
        asked.setdefault(verdict.item_id, {}).setdefault(pair, []).append(verdict)
    table: dict[str, PairOutcomes] = {}
    for item in items:
        outcomes: PairOutcomes = {}
        for correct, incorrect in pairs_for_item(item):
            seen = asked.get(item.id, {}).get((min(correct, incorrect), max(correct, incorrect)), [])
            if not seen or any(v.outcome() is None for v in seen):
                outcomes[(correct, incorrect)] = None  # never asked counts as failed, too
            else:
                outcomes[(correct, incorrect)] = all(v.outcome() == correct for v in seen)
        table[item.id] = outcomes
    return table


def _failed(outcomes: PairOutcomes) -> bool:
    return any(won is None for won in outcomes.values())


def _rm_bench_domain(
    domain: str, items: Sequence[BenchmarkItem], table: dict[str, PairOutcomes]
) -> RMBenchDomainResult:
    matrix = [
        [fmean(table[item.id][(i, 3 + j)] is True for item in items) for j in range(3)] for i in range(3)
    ]
    counts = {"n_items": len(items), "n_failed": sum(_failed(table[item.id]) for item in items), "n_missing": 0}
    return rm_bench_domain_result(domain, matrix, counts)


def _rm_bench_report(items: Sequence[BenchmarkItem], table: dict[str, PairOutcomes]) -> RMBenchReport:
    counts = {"n_items": len(items), "n_failed": sum(_failed(table[item.id]) for item in items), "n_missing": 0}
    return rm_bench_report(items, lambda domain, group: _rm_bench_domain(domain, group, table), counts)


def encode_as_scores(item: BenchmarkItem, outcomes: PairOutcomes) -> list[float | None]:
    """Scores on which the benchmark's own rule (chosen strictly above every incorrect response)
    gives exactly the pair outcomes: correct 1.0; incorrect 0.0 if beaten, 2.0 if not, None if the
    verdict failed. Only for one-correct-response items (RMB, RewardBench 2 non-Ties)."""
    scores: list[float | None] = [1.0] + [0.0] * (len(item.responses) - 1)
    for (_, incorrect), won in outcomes.items():
        scores[incorrect] = None if won is None else (0.0 if won else 2.0)
    return scores


def report_from_pair_outcomes(
    benchmark: str, items: Sequence[BenchmarkItem], table: dict[str, PairOutcomes]
) -> BenchmarkReport:
    """The benchmark's report from pair outcomes of supported items (see `unsupported_reason`)."""
    unsupported = [(item.id, reason) for item in items if (reason := unsupported_reason(item))]
    if unsupported:
        item_id, reason = unsupported[0]
        raise ValueError(f"{benchmark}: item {item_id!r} cannot be scored from pair verdicts: {reason}")
    if benchmark == "rm_bench":
        if not items:
            raise ValueError("rm_bench: no items to score")
        return _rm_bench_report(items, table)
    scores = {item.id: encode_as_scores(item, table[item.id]) for item in items}
    return score_benchmark(benchmark, items, scores)


def report_from_verdicts(
    benchmark: str, items: Sequence[BenchmarkItem], verdicts: Sequence[JudgedPair], orders: PairOrders
) -> BenchmarkReport:
    """The benchmark's report from a pairwise judge's verdicts on supported items."""
    if benchmark == "judge_bench":
        if not items:
            raise ValueError("judge_bench: no items to score")
        return judge_bench.report_from_verdicts(items, verdicts, reverse_order=orders == "both")
    return report_from_pair_outcomes(benchmark, items, pair_outcomes(items, verdicts))
