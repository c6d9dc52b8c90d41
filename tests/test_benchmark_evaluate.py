"""Evaluating rewards, judges and checkpoint scorers on benchmarks (rm_rewards.benchmarks.evaluate).

Expected numbers come from hand-chosen scores (worked out in comments) or from an independent
computation on the bundled items (e.g. the share of pairs whose chosen response is longer).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from statistics import fmean
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from rm_rewards.benchmarks.evaluate import (
    NOT_APPLICABLE,
    aevaluate,
    aevaluate_model,
    evaluate,
    evaluate_model,
)
from rm_rewards.benchmarks.items import BenchmarkItem, item_to_sample
from rm_rewards.benchmarks.loaders import load_benchmark
from rm_rewards.benchmarks.metrics import score_benchmark
from rm_rewards.benchmarks.model_keys import (
    PRINCIPLES_DEFAULT,
    PRINCIPLES_LEARNED,
    CheckpointModel,
    PrinciplesModel,
    RewardModel,
    checkpoint_key,
    model_from_key,
    model_kind,
    parse_evaluated_model,
    parse_model_key,
    principles_key,
)
from rm_rewards.benchmarks.pair_judging import TIES_UNSUPPORTED
from rm_rewards.core import registry
from rm_rewards.core.kinds import PairwiseReward, PairwiseVerdict, PointwiseReward
from rm_rewards.core.schema import Sample
from rm_rewards.llm.client import LLMClient

BENCHMARKS = ("rm_bench", "reward_bench_2", "rmb_pairwise", "rmb_bon")


@pytest.fixture(scope="module")
def bundled() -> dict[str, list[BenchmarkItem]]:
    return {name: load_benchmark(name) for name in BENCHMARKS}


def length_scores(samples: list[Sample]) -> list[list[float]]:
    return [[float(len(r.text)) for r in s.responses] for s in samples]


def length_table(items: list[BenchmarkItem]) -> dict[str, list[float]]:
    return {item.id: [float(len(r)) for r in item.responses] for item in items}


# --- model specs and keys ------------------------------------------------------------------------


def test_model_keys_are_stable_and_name_the_configuration() -> None:
    plain = RewardModel(reward="length_penalty")
    assert plain.key == "reward:length_penalty"
    short = RewardModel(reward="length_penalty", params={"min_length": 5, "max_length": 50})
    reordered = RewardModel(reward="length_penalty", params={"max_length": 50, "min_length": 5})
    other = RewardModel(reward="length_penalty", params={"min_length": 5, "max_length": 51})
    assert re.fullmatch(r"reward:length_penalty@[0-9a-f]{8}", short.key)
    assert short.key == reordered.key != other.key
    assert RewardModel(reward="length_penalty", pair_orders="one").key not in (plain.key, short.key)
    assert CheckpointModel(run_id="bt-0001", path="/x").key == "checkpoint:bt-0001"


def test_parse_model_key_and_back() -> None:
    assert parse_model_key("checkpoint:bt-0001.v2").model_dump() == {
        "prefix": "checkpoint",
        "name": "bt-0001.v2",
        "variant": None,
    }
    assert parse_model_key("judge:helpfulness_pointwise@0a1b2c3d").variant == "0a1b2c3d"
    assert model_from_key("reward:length_penalty") == RewardModel(reward="length_penalty")
    assert model_from_key("checkpoint:bt-7", checkpoint_path="/ck") == CheckpointModel(
        run_id="bt-7", path="/ck"
    )
    for bad in (
        "length_penalty",
        "rule:x",
        "reward:",
        "checkpoint:a b",
        "checkpoint:x@0a1b2c3d",
        "reward:x@zz",
        "checkpoint:a...b",
        "checkpoint:a|b",
    ):
        with pytest.raises(ValueError, match="bad model key"):
            parse_model_key(bad)
    with pytest.raises(ValueError, match="is a rule, so its key is 'reward:length_penalty'"):
        model_from_key("judge:length_penalty")
    with pytest.raises(ValueError, match="parameter variant"):
        model_from_key(RewardModel(reward="length_penalty", params={"max_length": 9}).key)


def test_model_spec_validation_names_the_problem() -> None:
    with pytest.raises(ValidationError, match="no reward named 'no_such_reward'"):
        RewardModel(reward="no_such_reward")
    with pytest.raises(ValidationError, match="plain JSON values"):
        RewardModel(reward="length_penalty", params={"max_length": object()})
    with pytest.raises(ValidationError):
        CheckpointModel(run_id="has space")
    with pytest.raises(ValidationError):
        CheckpointModel(run_id="run..1")  # Dagster rejects "..." in partition keys
    assert parse_evaluated_model({"kind": "checkpoint", "run_id": "bt-1"}) == CheckpointModel(run_id="bt-1")
    assert (
        parse_evaluated_model({"kind": "reward", "reward": "length_penalty"}).key == "reward:length_penalty"
    )
    with pytest.raises(ValueError, match="bad parameters for reward 'length_penalty'"):
        RewardModel(reward="length_penalty", params={"nonsense": 1}).build()


def test_principles_and_checkpoint_keys_come_from_constructors_and_parse_back() -> None:
    assert (
        PrinciplesModel(dataset="helpsteer2").key == principles_key("helpsteer2") == "principles:helpsteer2"
    )
    assert checkpoint_key("bt-0001") == CheckpointModel(run_id="bt-0001").key == "checkpoint:bt-0001"
    assert parse_model_key("principles:hh_rlhf_helpful").model_dump() == {
        "prefix": "principles",
        "name": "hh_rlhf_helpful",
        "variant": None,
    }
    assert model_from_key("principles:helpsteer2") == PrinciplesModel(dataset="helpsteer2")
    assert (
        parse_evaluated_model({"kind": "principles", "dataset": "helpsteer2"}).key == "principles:helpsteer2"
    )
    # every kind's key resolves to the spec whose key it is
    for key in ("reward:length_penalty", "judge:helpfulness_pointwise", "checkpoint:bt-1", "principles:hs2"):
        assert model_from_key(key).key == key


def test_model_kind_routes_every_key_without_prefix_checks() -> None:
    assert [
        model_kind(key)
        for key in (
            "reward:length_penalty",
            "judge:helpfulness_pointwise@0a1b2c3d",
            checkpoint_key("bt-1"),
            principles_key("helpsteer2"),
        )
    ] == ["reward", "judge", "checkpoint", "principles"]
    assert parse_model_key("principles:x").kind == "principles"
    with pytest.raises(ValueError, match="bad model key 'principle:x'"):
        model_kind("principle:x")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("principles:", "bad model key 'principles:'"),
        ("principles:a,b", "bad model key 'principles:a,b'"),
        ("principles:a[0]", r"bad model key 'principles:a\[0\]'"),
        ("principles:a..b", "bad model key 'principles:a..b'"),
        (
            "principles:hs2@0a1b2c3d",
            "bad model key 'principles:hs2@0a1b2c3d': a principles key has no @variant",
        ),
        ("checkpoint:bt@0a1b2c3d", "a checkpoint key has no @variant"),
        ("PRINCIPLES:hs2", "bad model key 'PRINCIPLES:hs2'"),
        ("reward:no_such_reward", "model key 'reward:no_such_reward': no reward named 'no_such_reward'"),
    ],
)
def test_bad_keys_are_errors_that_name_the_key(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_from_key(key)


def test_key_constructors_reject_names_that_cannot_be_partition_keys() -> None:
    for bad in ("a|b", "a,b", "a b", "run..1", "[x]", ""):
        with pytest.raises(ValueError, match="goes into a partition key"):
            checkpoint_key(bad)
        with pytest.raises(ValueError, match="goes into a partition key"):
            principles_key(bad)


def test_a_principles_model_is_evaluated_through_its_built_judge() -> None:
    with pytest.raises(ValueError, match="principles:hs2: its judge needs the dataset's principle set"):
        evaluate_model("rm_bench", load_benchmark("rm_bench")[:1], PrinciplesModel(dataset="hs2"))
    with pytest.raises(ValueError, match="needs an LLMClient"):
        PrinciplesModel(dataset="hs2").build(None, "scenario", ["be brief"])


# --- rule rewards on the bundled benchmarks ------------------------------------------------------


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_rule_reward_on_bundled_benchmark(benchmark: str, bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled[benchmark]
    model = RewardModel(reward="length_penalty", params={"min_length": 200, "max_length": 1500})
    result = evaluate_model(benchmark, items, model)
    reward = model.build()
    # the same reward asked one sample at a time: evaluate must keep ids, order and scores aligned
    one_by_one = {item.id: reward.evaluate(item_to_sample(item)).values() for item in items}
    assert result.report == score_benchmark(benchmark, items, one_by_one)
    assert result.model_key == model.key and result.method == "scores"
    assert (result.n_items, result.n_evaluated, result.n_not_applicable) == (len(items), len(items), 0)
    assert len(result.scores) == sum(len(item.responses) for item in items)
    row = result.scores[1]
    assert (row.item_id, row.response_index, row.score) == (items[0].id, 1, one_by_one[items[0].id][1])
    assert result.timings.items_per_s and result.timings.total_s >= result.timings.scoring_s
    assert result.summary()["coverage"] == 1.0


def test_hand_chosen_scores_give_the_worked_rm_bench_metric(bundled: dict[str, list[BenchmarkItem]]) -> None:
    def scorer(samples: list[Sample]) -> list[list[float]]:
        by_domain = {
            # chosen all above rejected: every comparison right -> chat average 1
            "chat": [3, 3, 3, 0, 0, 0],
            # chosen all below: code average 0
            "code": [0, 0, 0, 3, 3, 3],
            # chosen [1,2,3] vs rejected [2,2,2]: only chosen[2] wins (2 vs 2 is a tie, wrong)
            # M = [[0,0,0],[0,0,0],[1,1,1]]: hard 0, normal 1/3, easy 2/3, average 1/3
            "safety-refuse": [1, 2, 3, 2, 2, 2],
            "safety-response": [1, 2, 3, 2, 2, 2],
        }
        return [by_domain[s.metadata["domain"]] for s in samples]

    result = evaluate("rm_bench", bundled["rm_bench"], scorer, model_key="checkpoint:hand")
    report = result.report
    assert [d.domain for d in report.domains] == ["chat", "code", "safety"]
    assert [d.average for d in report.domains] == pytest.approx([1, 0, 1 / 3])
    # the bundled sample has no math: partial, so no headline, only the mean over present domains
    assert report.total is None and report.total_of_present == pytest.approx(4 / 9)
    assert (report.hard, report.normal, report.easy) == pytest.approx((1 / 3, 4 / 9, 5 / 9))
    assert result.headline is None and result.headline_metric == "total"
    assert result.is_partial and result.partial_headline == pytest.approx(4 / 9)
    assert result.headline_coverage.describe() == "3 of 4 domains (missing: math)"


def test_failed_scores_count_wrong_and_keep_their_error(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rm_bench"]

    def scorer(samples: list[Sample]) -> list[list[Any]]:
        rows = []
        for s in samples:
            if s.metadata["domain"] == "chat":  # chat: the first chosen response gets no score
                rows.append([None, 9, 9, 0, 0, 0])
            elif s.metadata["domain"] == "code":  # code: a NaN is a failure too, not a number
                rows.append([9, 9, math.nan, 0, 0, 0])
            else:
                rows.append([9, 9, 9, 0, 0, 0])
        return rows

    result = evaluate("rm_bench", items, scorer)
    chat, code, safety = result.report.domains
    # a failed chosen response loses all three of its comparisons: row 0 (chat) / row 2 (code) is 0
    assert chat.matrix[0] == [0, 0, 0] and chat.matrix[1] == [1, 1, 1]
    assert code.matrix[2] == [0, 0, 0] and safety.average == 1
    assert result.n_failed == chat.n_items + code.n_items == 65 + 46
    failed = [row for row in result.scores if row.status == "failed"]
    assert len(failed) == 111
    assert {row.error for row in failed} == {"scorer returned no score", "non-finite score nan"}
    assert dict(result.error_counts()) == {"scorer returned no score": 65, "non-finite score nan": 46}


def test_bad_scorer_output_is_an_error_naming_the_item(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rmb_pairwise"][:3]
    with pytest.raises(ValueError, match="2 score lists for 3 samples"):
        evaluate("rmb_pairwise", items, lambda samples: [[1, 0], [1, 0]])
    with pytest.raises(ValueError, match=f"item {items[1].id!r} got 1 scores for 2 responses"):
        evaluate("rmb_pairwise", items, lambda samples: [[1, 0], [1], [1, 0]])
    with pytest.raises(TypeError, match=f"item {items[0].id!r} response 1: score must be a number"):
        evaluate("rmb_pairwise", items, lambda samples: [[1, True]] * 3)
    with pytest.raises(ValueError, match="belong to another benchmark"):
        evaluate("rmb_bon", items, length_scores)
    with pytest.raises(ValueError, match="no items"):
        evaluate("rmb_bon", [], length_scores)


def test_checkpoint_model_uses_the_callers_scorer(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rmb_bon"]
    model = CheckpointModel(run_id="bt-1", path="/nowhere")
    with pytest.raises(ValueError, match="needs checkpoint_scorer="):
        evaluate_model("rmb_bon", items, model)
    result = evaluate_model("rmb_bon", items, model, checkpoint_scorer=length_scores)
    expected = fmean(all(len(item.responses[0]) > len(r) for r in item.responses[1:]) for item in items)
    assert result.model_key == "checkpoint:bt-1"
    assert result.headline == pytest.approx(expected)


# --- not applicable ------------------------------------------------------------------------------


def test_reward_that_applies_to_no_item_reports_no_metric(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rm_bench"]
    result = evaluate_model("rm_bench", items, RewardModel(reward="token_f1"))  # needs a reference
    assert result.report is None and result.headline is None
    assert (result.n_not_applicable, result.n_evaluated, result.coverage) == (len(items), 0, 0.0)
    assert result.summary()["total"] is None and result.summary()["n_not_applicable"] == len(items)
    assert result.not_applicable_reasons == {NOT_APPLICABLE: len(items)}
    assert {row.status for row in result.scores} == {"not_applicable"}


class ChatOnlyLength(PointwiseReward):
    """Applies only to chat items; scores by length."""

    def applies_to(self, sample: Sample) -> bool:
        return sample.metadata["domain"] == "chat"

    def score_response(self, sample: Sample, index: int) -> float:
        return float(len(sample.responses[index].text))


def test_partly_applicable_reward_scores_only_what_applies(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rm_bench"]
    chat = [item for item in items if item.domain == "chat"]
    result = evaluate("rm_bench", items, ChatOnlyLength())
    assert result.model_key == "reward:ChatOnlyLength"
    assert result.report == score_benchmark("rm_bench", chat, length_table(chat))
    assert result.report.missing_domains == ["math", "code", "safety"]
    assert (result.n_evaluated, result.n_not_applicable) == (65, len(items) - 65)
    assert result.coverage == pytest.approx(65 / len(items))
    assert set(result.not_applicable_ids) == {item.id for item in items if item.domain != "chat"}


class BrokenOnCode(ChatOnlyLength):
    """Its applicability check raises on code items: a failure to report, not a reason to skip."""

    def applies_to(self, sample: Sample) -> bool:
        if sample.metadata["domain"] == "code":
            raise KeyError("reference")
        return True


def test_applicability_check_that_raises_is_a_failure(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rm_bench"]
    result = evaluate("rm_bench", items, BrokenOnCode())
    code = next(d for d in result.report.domains if d.domain == "code")
    assert (code.n_failed, code.average) == (code.n_items, 0.0)
    assert result.n_not_applicable == 0 and result.n_failed == code.n_items
    assert result.error_counts() == [("applies_to failed: KeyError: 'reference'", 6 * code.n_items)]


# --- pairwise judges -----------------------------------------------------------------------------


class LengthJudge(PairwiseReward):
    """The longer response wins; equal lengths are a tie."""

    def compare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        a, b = len(sample.responses[i].text), len(sample.responses[j].text)
        return PairwiseVerdict(winner="a" if a > b else "b" if b > a else "tie")


class AlwaysA(PairwiseReward):
    """Pure position bias."""

    def compare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        return PairwiseVerdict(winner="a")


class FailsOnResponse3(LengthJudge):
    """Length judge whose verdicts on any pair with response 3 fail (half as errors, half raising)."""

    def compare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        if 3 in (i, j):
            if i == 3:
                raise RuntimeError("judge crashed")
            return PairwiseVerdict(error="unreadable verdict")
        return super().compare(sample, i, j)


@pytest.mark.parametrize("benchmark", ["rm_bench", "rmb_pairwise", "rmb_bon"])
def test_consistent_pairwise_judge_matches_the_benchmark_rule(
    benchmark: str, bundled: dict[str, list[BenchmarkItem]]
) -> None:
    # The strict rule on length scores and a length judge in both orders must agree exactly,
    # ties included (equal lengths: wrong for both).
    items = bundled[benchmark]
    result = evaluate(benchmark, items, LengthJudge())
    assert result.method == "pair_verdicts" and result.scores == []
    assert result.report == score_benchmark(benchmark, items, length_table(items))
    pairs = 9 * len(items) if benchmark == "rm_bench" else sum(len(i.responses) - 1 for i in items)
    assert len(result.verdicts) == 2 * pairs
    consistency = result.consistency
    assert (consistency.n_complete_pairs, consistency.position_flips) == (pairs, 0)


def test_position_biased_judge_is_caught_by_both_orders(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rm_bench"]
    both = evaluate("rm_bench", items, AlwaysA())
    assert both.partial_headline == 0.0  # every pair flips, and a flipped pair is lost
    c = both.consistency
    assert c.position_flips == c.symmetry_violations == c.first_position_picked_twice == 9 * len(items)
    assert c.position_flip_rate == 1.0 and len(c.flipped_pairs) == 9 * len(items)
    assert both.summary()["consistency_position_flip_rate"] == 1.0
    # asked once, correct response first, the same bias looks perfect: why "both" is the default
    once = evaluate("rm_bench", items, AlwaysA(), pair_orders="one")
    assert once.partial_headline == 1.0 and len(once.verdicts) == 9 * len(items)
    assert once.consistency.n_complete_pairs == 0 and once.consistency.position_flip_rate is None


def test_failed_verdicts_count_wrong(bundled: dict[str, list[BenchmarkItem]]) -> None:
    items = bundled["rm_bench"]
    result = evaluate("rm_bench", items, FailsOnResponse3())
    reference = evaluate("rm_bench", items, LengthJudge())
    for failed, ok in zip(result.report.domains, reference.report.domains):
        # response 3 is rejected[0]: column 0 is all wrong, the other columns are untouched
        assert [row[0] for row in failed.matrix] == [0, 0, 0]
        assert [row[1:] for row in failed.matrix] == [row[1:] for row in ok.matrix]
        assert failed.n_failed == failed.n_items
    assert result.n_failed == len(items)
    assert result.consistency.n_failed_verdicts == 2 * 3 * len(items)
    assert dict(result.error_counts()) == {
        "RuntimeError: judge crashed": 3 * len(items),
        "unreadable verdict": 3 * len(items),
    }


def test_ties_and_losses_are_wrong_for_best_of_n() -> None:
    prompt = load_benchmark("rmb_bon")[0].input
    make = lambda i, responses: BenchmarkItem(
        benchmark="rmb_bon", id=i, domain="Helpfulness/x", input=prompt, responses=responses, n_correct=1
    )
    items = [
        make("wins", ["long answer", "short", "tiny"]),  # beats both losers: right
        make("tie", ["same", "abcd", "x"]),  # ties one loser: wrong
        make("loses", ["mid", "longest one", "x"]),  # loses to one: wrong
    ]
    result = evaluate("rmb_bon", items, LengthJudge())
    assert result.report.n_correct == 1 and result.report.accuracy == pytest.approx(1 / 3)
    assert result.headline is None  # only the Helpfulness goal: RMB's accuracy is partial
    assert result.n_failed == 0


def test_reward_bench_2_ties_are_not_supported_for_pairwise_judges(
    bundled: dict[str, list[BenchmarkItem]],
) -> None:
    items = bundled["reward_bench_2"]
    ties = [item.id for item in items if item.domain == "Ties"]
    result = evaluate("reward_bench_2", items, LengthJudge())
    assert result.not_applicable_reasons == {TIES_UNSUPPORTED: len(ties)}
    assert set(result.not_applicable_ids) == set(ties)
    assert "Ties" in result.report.missing_subsets
    others = [item for item in items if item.domain != "Ties"]
    assert result.report == score_benchmark("reward_bench_2", others, length_table(others))
    # a pointwise scorer does score Ties
    assert evaluate("reward_bench_2", items, length_scores).n_not_applicable == 0


# --- async ---------------------------------------------------------------------------------------


class SlowAsyncLengthJudge(LengthJudge):
    in_flight: ClassVar[int] = 0
    most_in_flight: ClassVar[int] = 0

    async def acompare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        cls = type(self)
        cls.in_flight += 1
        cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        await asyncio.sleep(0.01)
        cls.in_flight -= 1
        return self.compare(sample, i, j)


def test_aevaluate_runs_async_judges_concurrently_within_the_limit(
    bundled: dict[str, list[BenchmarkItem]],
) -> None:
    items = bundled["rmb_pairwise"][:40]
    result = asyncio.run(aevaluate("rmb_pairwise", items, SlowAsyncLengthJudge(), max_concurrency=16))
    assert SlowAsyncLengthJudge.most_in_flight == 16  # 80 questions, 16 at a time
    assert result.report == score_benchmark("rmb_pairwise", items, length_table(items))
    sync = evaluate("rmb_pairwise", items, SlowAsyncLengthJudge())  # sync entry point, async judge
    assert sync.report == result.report and sync.verdicts == result.verdicts


def test_aevaluate_matches_evaluate_for_sync_rewards_and_scorers(
    bundled: dict[str, list[BenchmarkItem]],
) -> None:
    items = bundled["rm_bench"]
    model = RewardModel(reward="length_penalty", params={"min_length": 300})
    assert (
        asyncio.run(aevaluate_model("rm_bench", items, model)).report
        == evaluate_model("rm_bench", items, model).report
    )
    assert (
        asyncio.run(aevaluate("rm_bench", items, length_scores)).report
        == evaluate("rm_bench", items, length_scores).report
    )


# --- an LLM judge through the fake OpenAI server -------------------------------------------------


class LLMLengthJudge(PairwiseReward):
    """A tiny LLM pairwise judge: asks the endpoint, reads "A", "B" or "tie"."""

    is_llm: ClassVar[bool] = True
    client: LLMClient

    async def acompare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        prompt = f"<<A>>{sample.responses[i].text}<<B>>{sample.responses[j].text}<<END>>"
        answer = await self.client.chat([{"role": "user", "content": prompt}])
        if not answer.ok:
            return PairwiseVerdict(error=str(answer.error))
        winner = {"A": "a", "B": "b", "tie": "tie"}.get((answer.content or "").strip())
        return (
            PairwiseVerdict(winner=winner)
            if winner
            else PairwiseVerdict(error=f"unreadable {answer.content!r}")
        )


def longer_side(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    a, b = re.fullmatch(r"<<A>>(.*)<<B>>(.*)<<END>>", text, flags=re.DOTALL).groups()
    return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"


def test_llm_judge_gets_its_client_and_runs_concurrently(
    fake_openai: Any,
    llm_config: Any,
    monkeypatch: pytest.MonkeyPatch,
    bundled: dict[str, list[BenchmarkItem]],
) -> None:
    registry.specs()  # load the built-ins before adding the test judge
    monkeypatch.setitem(
        registry._REGISTRY,
        "test_llm_length_judge",
        registry.RewardSpec("test_llm_length_judge", LLMLengthJudge, ("test",), "test judge", ("client",)),
    )
    fake_openai.set_responder(longer_side)
    fake_openai.set_latency(0.02)
    model = RewardModel(reward="test_llm_length_judge", max_concurrency=8)
    assert model.key == "judge:test_llm_length_judge"
    with pytest.raises(ValueError, match="needs an LLMClient"):
        model.build()
    items = bundled["rmb_pairwise"][:12]
    client = LLMClient(llm_config(fake_openai))
    result = asyncio.run(aevaluate_model("rmb_pairwise", items, model, client=client))
    assert fake_openai.request_count == 24 and 1 < fake_openai.max_in_flight <= 8
    assert result.model_key == "judge:test_llm_length_judge"
    assert result.report == score_benchmark("rmb_pairwise", items, length_table(items))
    assert result.consistency.position_flips == 0 and result.n_failed == 0


def length_grade(body: dict[str, Any]) -> str:
    """A pointwise verdict: longer answers grade higher (0..4), nothing violated."""
    answer = re.search(r'<answer label="[^"]*">\n(.*)\n</answer>', body["messages"][-1]["content"], re.DOTALL)
    return json.dumps({"critique": "", "violated": [], "score": min(4, len(answer.group(1)) // 200)})


@pytest.mark.parametrize(
    ("principles", "source", "prompt_has"),
    [
        (["Answers the question asked."], PRINCIPLES_LEARNED, "1. Answers the question asked."),
        ([], PRINCIPLES_DEFAULT, "No specific principles are given"),
    ],
)
def test_principles_judge_uses_the_learned_set_or_says_it_fell_back_to_the_defaults(
    principles: list[str],
    source: str,
    prompt_has: str,
    fake_openai: Any,
    llm_config: Any,
    bundled: dict[str, list[BenchmarkItem]],
) -> None:
    fake_openai.set_responder(length_grade)
    model = model_from_key(principles_key("helpsteer2"))
    built = model.build(
        LLMClient(llm_config(fake_openai)), "Help the user.", principles, principle_set_id="0123abcd"
    )
    assert built.principles_source == source and built.judge.principles == principles
    assert built.metadata() == {
        "principles_source": source,
        "principle_set_id": "0123abcd",
        "n_principles": len(principles),
    }
    items = bundled["rm_bench"][:2]
    result = evaluate("rm_bench", items, built.judge, model_key=model.key)
    assert result.model_key == "principles:helpsteer2" and result.n_failed == 0
    assert result.n_evaluated == 2 and fake_openai.request_count == sum(len(i.responses) for i in items)
    assert all(prompt_has in r["body"]["messages"][-1]["content"] for r in fake_openai.requests)
