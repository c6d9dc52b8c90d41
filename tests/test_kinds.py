"""The core: reward kinds, compositions, best-of-N and the registry, with small fake rewards."""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading

import numpy as np
import pytest
from pydantic import ValidationError

from rm_rewards.core import registry
from rm_rewards.core.compose import RouterReward, WeightedReward
from rm_rewards.core.kinds import (
    ListwiseReward,
    PairwiseReward,
    PairwiseVerdict,
    PointwiseReward,
    StepwiseReward,
    error_score,
    response_score,
    reward_result,
    score_value,
)
from rm_rewards.core.schema import ChatMessage, DimensionScore, Response, ResponseScore, RewardResult, Sample
from rm_rewards.judging.best_of_n import abest_of_n, best_of_n, select_best


def make_sample(
    *texts: str, sample_id: str = "s1", source: str = "test", reference: str | None = None
) -> Sample:
    return Sample(
        id=sample_id,
        source=source,
        input=[ChatMessage(role="user", content="q")],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in texts],
        reference=reference,
    )


class LengthScore(PointwiseReward):
    """Score = len(text) * scale; raises on a response saying "boom", NaN on "nan"."""

    scale: float = 1.0

    def score_response(self, sample: Sample, index: int) -> float:
        text = sample.responses[index].text
        if text == "boom":
            raise RuntimeError("exploded on purpose")
        if text == "nan":
            return float("nan")
        return len(text) * self.scale


class AsyncLengthScore(PointwiseReward):
    """Async twin of LengthScore; records the loop it ran on and the peak concurrency."""

    def model_post_init(self, context) -> None:
        self._loops: set[int] = set()
        self._running = 0
        self._peak = 0

    async def ascore_response(self, sample: Sample, index: int) -> float:
        self._loops.add(id(asyncio.get_running_loop()))
        self._running += 1
        self._peak = max(self._peak, self._running)
        await asyncio.sleep(0.001)
        self._running -= 1
        if sample.responses[index].text == "boom":
            raise RuntimeError("exploded on purpose")
        return float(len(sample.responses[index].text))


class LongerWins(PairwiseReward):
    """The longer response wins, equal lengths tie; two responses starting with "e" get no verdict."""

    def model_post_init(self, context) -> None:
        self._seen_pairs: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def compare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        with self._lock:
            self._seen_pairs.append((i, j))
        a, b = sample.responses[i].text, sample.responses[j].text
        if a.startswith("e") and b.startswith("e"):
            return PairwiseVerdict(error="judge gave no verdict")
        if len(a) == len(b):
            return PairwiseVerdict(winner="tie")
        return PairwiseVerdict(winner="a" if len(a) > len(b) else "b", reason="longer")


class AsyncLongerWins(LongerWins):
    async def acompare(self, sample: Sample, i: int, j: int) -> PairwiseVerdict:
        await asyncio.sleep(0)
        return self.compare(sample, i, j)


class WrongCountRanker(ListwiseReward):
    def rank(self, sample: Sample) -> list[float]:
        return [1.0]  # one score whatever the number of responses


class StepCounter(StepwiseReward):
    def score_steps(self, sample: Sample, index: int, steps: list[str]) -> list[float]:
        return [float(len(step)) for step in steps]


# --- error isolation ----------------------------------------------------------------------------


def test_one_failing_response_does_not_void_its_siblings() -> None:
    result = LengthScore().evaluate(make_sample("abc", "boom", "nan", "hello"))
    assert result.error is None and not result.ok
    assert result.values() == [3.0, None, None, 5.0]
    assert result.scores[1].error == "RuntimeError: exploded on purpose"
    assert result.scores[2].error == "non-finite score nan"


def test_async_reward_isolates_errors_per_response_too() -> None:
    result = AsyncLengthScore().evaluate(make_sample("abc", "boom"))
    assert result.values() == [3.0, None] and "exploded" in result.scores[1].error


def test_wrong_number_of_scores_is_a_sample_error() -> None:
    result = WrongCountRanker().evaluate(make_sample("a", "b"))
    assert result.scores == [] and result.error == "reward returned 1 scores for 2 responses"


def test_batch_keeps_order_and_goes_on_past_errors() -> None:
    samples = [
        make_sample("aa", sample_id="x"),
        make_sample("boom", sample_id="y"),
        make_sample("a", sample_id="z"),
    ]
    results = LengthScore().evaluate_batch(samples)
    assert [r.sample_id for r in results] == ["x", "y", "z"]
    assert [r.values() for r in results] == [[2.0], [None], [1.0]]
    assert all(
        r.reward_name == "LengthScore" and r.reward_version == results[0].reward_version for r in results
    )


def test_version_changes_with_parameters() -> None:
    assert LengthScore(scale=1).version != LengthScore(scale=2).version
    assert LengthScore(scale=2).version == LengthScore(scale=2).version


# --- pairwise -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reward_cls", [LongerWins, AsyncLongerWins])
def test_pairwise_tally_judges_each_unordered_pair_once_and_never_a_response_with_itself(reward_cls) -> None:
    reward = reward_cls()
    result = reward.evaluate(make_sample("aaaa", "a", "aa", "aa"))
    assert sorted(reward._seen_pairs) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert all(i != j for i, j in reward._seen_pairs)
    # wins / (n - 1): 3 wins; 0 wins; 1 win + a tie; 1 win + a tie
    assert result.values() == [1.0, 0.0, 0.5, 0.5]


def test_pairwise_pair_without_verdict_is_an_error_never_a_tie() -> None:
    result = LongerWins().evaluate(make_sample("eaa", "eb", "c"))
    # (0,1) has no verdict; (0,2) and (1,2) are won by 0 and 1, so 2 scores 0 of 2
    assert result.values() == [None, None, 0.0]
    assert result.scores[0].error == "pair (0,1): judge gave no verdict"
    assert result.scores[1].error == "pair (0,1): judge gave no verdict"


def test_pairwise_needs_two_responses() -> None:
    assert not LongerWins().applies_to(make_sample("only one"))


# --- event loops --------------------------------------------------------------------------------


def test_evaluate_batch_inside_a_running_loop_uses_a_private_loop() -> None:
    reward = AsyncLengthScore()
    samples = [make_sample("a" * k, sample_id=str(k)) for k in range(1, 6)]

    async def caller() -> tuple[list[RewardResult], RewardResult, int]:
        # Sync API called from async code: must not call asyncio.run on this running loop.
        return reward.evaluate_batch(samples), reward.evaluate(samples[0]), id(asyncio.get_running_loop())

    results, single, caller_loop = asyncio.run(caller())
    assert [r.values() for r in results] == [[float(k)] for k in range(1, 6)]
    assert single.values() == [1.0]
    assert caller_loop not in reward._loops


def test_aevaluate_batch_respects_max_concurrency() -> None:
    reward = AsyncLengthScore()
    samples = [make_sample("ab", sample_id=str(k)) for k in range(20)]
    results = asyncio.run(reward.aevaluate_batch(samples, max_concurrency=3))
    assert len(results) == 20 and all(r.ok for r in results)
    assert reward._peak <= 3


def test_sync_reward_through_the_async_api() -> None:
    results = asyncio.run(LengthScore().aevaluate_batch([make_sample("abc"), make_sample("boom")]))
    assert [r.values() for r in results] == [[3.0], [None]]


# --- stepwise -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("aggregate", "expected"), [("min", 1.0), ("mean", 2.0), ("last", 3.0)])
def test_stepwise_aggregates_paragraph_steps(aggregate: str, expected: float) -> None:
    result = StepCounter(aggregate=aggregate).evaluate(make_sample("a\n\nbb\n\nccc"))
    assert result.values() == [expected] and result.scores[0].steps == [1.0, 2.0, 3.0]


# --- compositions -------------------------------------------------------------------------------


def test_weighted_reward_averages_children_with_weights_and_keeps_dimensions() -> None:
    short = LengthScore().named("short")
    double = LengthScore(scale=2).named("double")
    reward = WeightedReward(rewards=[short, double], weights=[1, 3])
    result = reward.evaluate(make_sample("abcd", "boom"))
    assert result.scores[0].score == pytest.approx((4 + 3 * 8) / 4)
    assert {k: d.score for k, d in result.scores[0].dimensions.items()} == {"short": 4.0, "double": 8.0}
    assert result.scores[1].score is None
    assert "short: RuntimeError: exploded on purpose" in result.scores[1].error


def test_weighted_reward_mixes_sync_and_async_children() -> None:
    reward = WeightedReward(rewards=[LengthScore().named("sync"), AsyncLengthScore().named("async")])
    assert reward.is_async
    assert reward.evaluate(make_sample("abc")).values() == [3.0]


def test_weighted_reward_validates_weights() -> None:
    with pytest.raises(ValueError, match="2 weights for 1 rewards"):
        WeightedReward(rewards=[LengthScore()], weights=[1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        WeightedReward(rewards=[LengthScore()], weights=[-1])


def test_composite_versions_depend_on_their_children() -> None:
    one = WeightedReward(rewards=[LengthScore(scale=1).named("len")])
    two = WeightedReward(rewards=[LengthScore(scale=2).named("len")])
    assert one.version != two.version
    assert one.version == WeightedReward(rewards=[LengthScore(scale=1).named("len")]).version


def test_weighted_reward_applies_only_where_every_child_does() -> None:
    needs_two = WeightedReward(rewards=[LengthScore(), LongerWins()])
    assert not needs_two.applies_to(make_sample("one"))
    assert needs_two.applies_to(make_sample("one", "two"))


def test_router_sends_each_sample_to_its_route() -> None:
    router = RouterReward(
        routes={"math": LengthScore(scale=10), "chat": LengthScore()},
        route=lambda sample: sample.source,
    )
    assert router.evaluate(make_sample("ab", source="math")).values() == [20.0]
    assert router.evaluate(make_sample("ab", source="chat")).values() == [2.0]
    lost = router.evaluate(make_sample("ab", source="poetry", sample_id="p1"))
    assert lost.scores == [] and "no route 'poetry' for sample p1" in lost.error
    with_default = RouterReward(routes=router.routes, route=router.route, default="chat")
    assert with_default.evaluate(make_sample("ab", source="poetry")).values() == [2.0]


def test_router_forwards_a_childs_sample_error() -> None:
    router = RouterReward(routes={"x": WrongCountRanker().named("ranker")}, route=lambda s: "x")
    result = router.evaluate(make_sample("a", "b"))
    assert result.error and "ranker: reward returned 1 scores for 2 responses" in result.error


# --- best-of-N ----------------------------------------------------------------------------------


def test_best_of_n_never_selects_an_errored_response() -> None:
    samples = [make_sample("aaa", "boom", "aaaaa", "a", sample_id="x")]
    (choice,) = best_of_n(LengthScore(), samples, n=2)
    assert choice.selected == [2, 0] and choice.scores == [3.0, None, 5.0, 1.0] and choice.error is None
    (async_choice,) = asyncio.run(abest_of_n(AsyncLengthScore(), samples, n=3))
    assert async_choice.selected == [2, 0, 3]


def test_best_of_n_ties_keep_the_earlier_response_and_all_errors_select_nothing() -> None:
    assert select_best(LengthScore().evaluate(make_sample("ab", "cd", "a")), n=1).selected == [0]
    nothing = select_best(LengthScore().evaluate(make_sample("boom", "nan")), n=1)
    assert nothing.selected == [] and "no response scored" in nothing.error
    failed = select_best(WrongCountRanker().evaluate(make_sample("a", "b")))
    assert failed.selected == [] and "returned 1 scores" in failed.error
    with pytest.raises(ValueError, match="n must be >= 1"):
        select_best(LengthScore().evaluate(make_sample("a")), n=0)


# --- registry -----------------------------------------------------------------------------------


def test_registry_get_with_bad_params_names_the_reward_and_the_parameter() -> None:
    with pytest.raises(ValueError) as caught:
        registry.get("length_penalty", min_lenght=5)
    message = str(caught.value)
    assert "bad parameters for reward 'length_penalty'" in message
    assert "min_lenght: Extra inputs are not permitted" in message
    assert "min_length" in message  # the accepted parameters are listed
    with pytest.raises(ValueError, match="max_length: Input should be a valid integer"):
        registry.get("length_penalty", max_length="lots")


def test_registry_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no reward named 'nope'; known rewards: .*token_f1"):
        registry.get("nope")


def test_registry_get_returns_a_fresh_named_instance() -> None:
    first, second = registry.get("token_f1"), registry.get("token_f1")
    assert first is not second and first.name == "token_f1"
    assert first.evaluate(make_sample("x", reference="x")).reward_name == "token_f1"


def test_register_refuses_duplicates_and_multi_line_descriptions() -> None:
    name = "test_kinds_only_reward"
    try:
        registry.register(name, tags=("test",), description="A test reward.")(LengthScore)
        with pytest.raises(ValueError, match="registered twice"):
            registry.register(name, tags=("test",), description="Another.")(AsyncLengthScore)
        with pytest.raises(ValueError, match="one-line description"):
            registry.register(name + "_2", tags=("test",), description="two\nlines")(LengthScore)
        assert registry.spec(name).source == "rule"
        assert name in [s.name for s in registry.specs(tag="test")]
    finally:
        registry._REGISTRY.pop(name, None)


def test_sync_batches_leave_the_collector_alone_and_gc_paused_pauses_it():
    import gc

    from rm_rewards.core.kinds import PointwiseReward, gc_paused

    seen = []

    class Probe(PointwiseReward):
        def score_response(self, sample, index):
            seen.append(gc.isenabled())
            return 1.0

    sample = Sample(id="s", source="t", input=[ChatMessage(role="user", content="q")],
                    responses=[Response(message=ChatMessage(role="assistant", content="a"))])
    assert gc.isenabled()
    Probe().evaluate_batch([sample, sample])
    assert seen == [True, True] and gc.isenabled()  # no process-wide side effect
    with gc_paused():
        Probe().evaluate_batch([sample])
        assert not gc.isenabled()
    assert seen == [True, True, False] and gc.isenabled()  # the caller's pause, then restored
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a failing batch")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()


# --- fast result builders: indistinguishable from pydantic's own construction --------------------


def assert_indistinguishable(fast, normal) -> None:
    """Everything a caller can observe of a model, short of object identity, is the same."""
    assert type(fast) is type(normal)
    assert fast == normal and normal == fast
    assert list(fast.__dict__.items()) == list(normal.__dict__.items())  # same values, same order
    assert list(fast.__dict__) == list(type(fast).model_fields)  # no field missed by a builder
    assert fast.model_fields_set == normal.model_fields_set
    assert fast.__pydantic_extra__ == normal.__pydantic_extra__
    assert fast.__pydantic_private__ == normal.__pydantic_private__
    assert repr(fast) == repr(normal)
    assert fast.model_dump() == normal.model_dump()
    assert fast.model_dump(exclude_unset=True) == normal.model_dump(exclude_unset=True)
    assert fast.model_dump_json() == normal.model_dump_json()
    for copied, copied_normal in [
        (fast.model_copy(), normal.model_copy()),
        (fast.model_copy(deep=True), normal.model_copy(deep=True)),
        (fast.model_copy(update={"error": "x"}), normal.model_copy(update={"error": "x"})),
        (copy.deepcopy(fast), copy.deepcopy(normal)),
        (pickle.loads(pickle.dumps(fast)), pickle.loads(pickle.dumps(normal))),
    ]:
        assert copied == copied_normal and copied.model_fields_set == copied_normal.model_fields_set
    assert type(fast).model_validate_json(fast.model_dump_json()) == normal


def every_score_field(**values) -> dict:
    return {"score": None, "reason": "", "dimensions": {}, "steps": None, "error": None} | values


@pytest.mark.parametrize("value", [0.25, -3.0, 0.0, 1e308, 3, True, np.float64(0.5), np.int64(7)])
def test_score_value_builds_what_model_construct_builds(value) -> None:
    fast = score_value(value)
    assert type(fast.score) is float
    assert_indistinguishable(fast, ResponseScore.model_construct(**every_score_field(score=float(value))))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), np.float64("nan")])
def test_score_value_turns_non_finite_scores_into_errors(value) -> None:
    assert_indistinguishable(
        score_value(value), ResponseScore.model_construct(**every_score_field(error=f"non-finite score {value}"))
    )


def test_score_value_passes_a_response_score_through() -> None:
    score = ResponseScore(score=1.0, reason="given")
    assert score_value(score) is score


@pytest.mark.parametrize(("score", "reason"), [(0.5, "why"), (-1.0, ""), (0.0, "ok"), (2, "int"), (True, "bool")])
def test_response_score_is_the_validated_constructor(score, reason) -> None:
    fast = response_score(score, reason)
    normal = ResponseScore(score=score, reason=reason)
    assert_indistinguishable(fast, normal)
    assert fast.model_fields_set == {"score", "reason"}


@pytest.mark.parametrize(("score", "reason"), [(float("inf"), "x"), (float("nan"), "x"), ("high", "x"), (1.0, 5)])
def test_response_score_rejects_what_the_constructor_rejects(score, reason) -> None:
    with pytest.raises(ValidationError) as normal:
        ResponseScore(score=score, reason=reason)
    with pytest.raises(ValidationError) as fast:
        response_score(score, reason)
    assert str(fast.value) == str(normal.value)  # same fields, messages and inputs


def test_reward_result_builds_what_model_construct_builds() -> None:
    scores = [score_value(1.0), error_score("bad")]
    values = {"reward_name": "r", "reward_version": "1-ab", "sample_id": "s", "scores": scores, "error": None}
    assert_indistinguishable(
        reward_result("r", "1-ab", "s", scores, None), RewardResult.model_construct(**values, metadata={})
    )
    assert_indistinguishable(
        reward_result("r", "1-ab", "s", [], "boom"),
        RewardResult.model_construct(**values | {"scores": [], "error": "boom"}, metadata={}),
    )


def test_fast_built_models_share_no_mutable_parts() -> None:
    first, second = score_value(1.0), score_value(1.0)
    first.dimensions["x"] = DimensionScore(score=1.0)
    first.model_fields_set.discard("steps")
    assert second.dimensions == {} and second.model_fields_set == set(ResponseScore.model_fields)
    one, two = response_score(1.0, "r"), response_score(1.0, "r")
    one.steps = [1.0]  # assignment marks the field set, on that object only
    assert one.model_fields_set == {"score", "reason", "steps"} and two.model_fields_set == {"score", "reason"}
    a, b = reward_result("r", "1", "s", [], None), reward_result("r", "1", "s", [], None)
    a.metadata["k"] = 1
    assert b.metadata == {} and a.model_fields_set is not b.model_fields_set


# --- the fused pointwise batch gives what the steps give -----------------------------------------


class StepByStepLengthScore(LengthScore):
    """LengthScore through the unfused steps: overriding `_score` opts a class out of the fused loop."""

    def _score(self, sample: Sample) -> list[ResponseScore]:
        return super()._score(sample)


class ReasonedLengthScore(LengthScore):
    """Returns ResponseScores built by `response_score`, and an int score for an empty response."""

    def score_response(self, sample: Sample, index: int) -> ResponseScore:
        text = sample.responses[index].text
        return response_score(float(super().score_response(sample, index)) if text else 0, f"length of {text}")


class ShrinkingSample(LengthScore):
    """A rule that removes a response while scoring: the count check must still catch it."""

    def score_response(self, sample: Sample, index: int) -> float:
        if sample.responses[index].text == "shrink":
            sample.responses.pop()
        return 1.0


def batch_of_every_case() -> list[Sample]:
    broken = Sample.model_construct(id="broken", source="t", input=[], responses=None)  # len() raises
    return [
        make_sample("abc", "boom", "nan", "hello", sample_id="mixed"),
        make_sample("", "x", sample_id="empty text"),
        make_sample("boom", sample_id="all bad"),
        broken,
        make_sample("a" * 50, sample_id="long"),
    ]


def described(result: RewardResult) -> tuple:
    return (result.model_dump_json(), result.model_fields_set,
            [(s.model_fields_set, s.__pydantic_private__, s.__pydantic_extra__) for s in result.scores])


@pytest.mark.parametrize("reward_cls", [LengthScore, ReasonedLengthScore])
def test_fused_batch_matches_the_step_by_step_path(reward_cls) -> None:
    reward = reward_cls(scale=0.5).named("length")
    unfused = type("Unfused", (reward_cls,), {"_score": lambda self, s: PointwiseReward._score(self, s)})
    reference = unfused(scale=0.5).named("length")
    samples = batch_of_every_case()
    fused = reward.evaluate_batch(samples)
    assert [described(r) for r in fused] == [described(r) for r in reference.evaluate_batch(samples)]
    assert [described(r) for r in fused] == [described(reward.evaluate(s)) for s in samples]
    assert fused[0].values() == [1.5, None, None, 2.5] and fused[0].scores[1].error.startswith("RuntimeError")
    assert fused[3].scores == [] and fused[3].error.startswith("TypeError")


def test_fused_batch_keeps_the_count_check() -> None:
    def fresh() -> Sample:
        return make_sample("shrink", "b", "c", sample_id="shrinking")

    batch = ShrinkingSample().evaluate_batch([fresh()])[0]
    assert batch.scores == [] and batch.error == "reward returned 3 scores for 2 responses"
    assert described(batch) == described(ShrinkingSample().evaluate(fresh()))


def test_a_class_that_overrides_a_step_keeps_it_in_batches() -> None:
    class FlagsEveryResult(LengthScore):
        def _checked(self, sample, scores, label=None):
            result = super()._checked(sample, scores, label)
            result.metadata["checked"] = True
            return result

    results = FlagsEveryResult().evaluate_batch([make_sample("a"), make_sample("bb")])
    assert [r.metadata for r in results] == [{"checked": True}] * 2 and [r.values() for r in results] == [[1.0], [2.0]]
    assert StepByStepLengthScore().evaluate_batch([make_sample("abc")])[0].values() == [3.0]
