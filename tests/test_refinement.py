"""Refinement against the fake OpenAI server: critique fed back, early stop when the score stops
improving, target score, bounded rounds, failures recorded per round, and the refined sample.

The responder plays both roles. As the judge it scores an answer by its number of "+" marks
(0..4) and asks for more; as the rewriter it follows `rewrite`, a function of the current answer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from rm_rewards.core.kinds import PointwiseReward
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.judging.judges import PointwiseJudge
from rm_rewards.judging.refinement import RefinementSettings, arefine_sample, refine_batch, refined_sample
from rm_rewards.llm.client import LLMClient
from tests.support.fake_openai import status


def make_sample(sample_id: str, text: str, *others: str) -> Sample:
    return Sample(
        id=sample_id,
        source="test",
        task="pairwise" if others else "pointwise",
        input=[ChatMessage(role="user", content="Write something positive.")],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in (text, *others)],
        preference=0 if others else None,
    )


def current_answer(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"].split("# Current answer\n", 1)[1].split("\n\n# Critique", 1)[0]


def plays_judge_and_rewriter(rewrite: Callable[[str], Any]) -> Callable[[dict[str, Any]], Any]:
    def respond(body: dict[str, Any]) -> Any:
        if "response_format" in body:  # the judge asks for structured output; the rewriter does not
            answer = re.search(
                r'<answer label="answer">\n(.*?)\n</answer>', body["messages"][-1]["content"], re.DOTALL
            )
            pluses = min(4, answer.group(1).count("+"))
            return json.dumps({"critique": f"{pluses} plus signs; add more", "violated": [], "score": pluses})
        return rewrite(current_answer(body))

    return respond


def add_plus_up_to(limit: int) -> Callable[[str], str]:
    return lambda text: text + "+" if text.count("+") < limit else text.replace("+", "+ ", 1)


@pytest.fixture
def client(fake_openai, llm_config) -> LLMClient:
    return LLMClient(llm_config(fake_openai, max_retries=0))


@pytest.fixture
def judge(client) -> PointwiseJudge:
    return PointwiseJudge(client=client, principles=["Use plus signs."])


def test_rounds_improve_until_the_score_stops_rising(fake_openai, client, judge) -> None:
    fake_openai.set_responder(plays_judge_and_rewriter(add_plus_up_to(2)))
    [result] = refine_batch([make_sample("s", "nice")], judge, client, RefinementSettings(max_rounds=5))
    assert [r.score for r in result.rounds] == [0.0, 1.0, 2.0, 2.0]
    assert result.stop_reason == "no_improvement" and result.best_round == 2
    assert result.best_response == "nice++" and result.improved
    assert result.rounds[0].critique == "0 plus signs; add more"
    rewrites = [b for b in fake_openai.bodies if "response_format" not in b]
    assert len(rewrites) == 3 and len(fake_openai.bodies) == 7  # 4 judgements, 3 rewrites
    assert "# Critique (score 1)\n1 plus signs; add more" in rewrites[1]["messages"][-1]["content"]
    assert result.judge.startswith("PointwiseJudge@")


def test_max_rounds_and_target_score_bound_the_loop(fake_openai, client, judge) -> None:
    fake_openai.set_responder(plays_judge_and_rewriter(add_plus_up_to(10)))
    [capped] = refine_batch([make_sample("a", "x")], judge, client, RefinementSettings(max_rounds=2))
    assert [r.score for r in capped.rounds] == [0.0, 1.0, 2.0] and capped.stop_reason == "max_rounds"
    fake_openai.reset()
    fake_openai.set_responder(plays_judge_and_rewriter(add_plus_up_to(10)))
    settings = RefinementSettings(max_rounds=10, target_score=3)
    [targeted] = refine_batch([make_sample("b", "y+")], judge, client, settings)
    assert [r.score for r in targeted.rounds] == [1.0, 2.0, 3.0] and targeted.stop_reason == "target_reached"
    assert fake_openai.request_count == 5  # no rewrite after the target was reached


def test_a_failed_rewrite_is_recorded_and_the_best_so_far_kept(fake_openai, client, judge) -> None:
    def fail_after_one(text: str) -> Any:
        return status(500) if "+" in text else text + "+"

    fake_openai.set_responder(plays_judge_and_rewriter(fail_after_one))
    [result] = refine_batch([make_sample("s", "plain")], judge, client, RefinementSettings(max_rounds=5))
    assert [(r.round, r.score) for r in result.rounds] == [(0, 0.0), (1, 1.0), (2, None)]
    failed = result.rounds[2]
    assert failed.response is None and "rewrite: server_error" in failed.error
    assert result.stop_reason == "failed" and result.best_round == 1 and result.best_response == "plain+"


def test_an_unjudgeable_original_stops_before_any_rewrite(fake_openai, client, judge) -> None:
    fake_openai.set_responder(lambda body: "not json")
    result = refine_batch([make_sample("s", "text")], judge, client)[0]
    assert result.stop_reason == "failed" and result.best_round is None and result.best_response is None
    assert "judge: judge call failed: parse_error" in result.rounds[0].error
    assert fake_openai.request_count == 1


def test_a_bad_sample_fails_alone_in_a_batch(fake_openai, client, judge) -> None:
    fake_openai.set_responder(plays_judge_and_rewriter(add_plus_up_to(1)))
    settings = RefinementSettings(response_index=1)
    results = refine_batch(
        [make_sample("short", "only one"), make_sample("ok", "a", "b")], judge, client, settings
    )
    assert results[0].stop_reason == "failed" and "response_index 1" in results[0].rounds[0].error
    assert results[1].best_response == "b+" and results[1].response_index == 1


class CountPluses(PointwiseReward):
    """A rule judge: refinement works with any pointwise reward, its reason being the critique."""

    def score_response(self, sample: Sample, index: int) -> float:
        return float(sample.responses[index].text.count("+"))


def test_refined_sample_replaces_the_response_and_drops_stale_labels(fake_openai, client) -> None:
    fake_openai.set_responder(plays_judge_and_rewriter(add_plus_up_to(1)))
    sample = make_sample("pair", "first", "second")
    result = asyncio.run(arefine_sample(sample, CountPluses(), client, RefinementSettings(max_rounds=3)))
    assert result.best_response == "first+" and result.stop_reason == "no_improvement"
    assert all("response_format" not in b for b in fake_openai.bodies)  # only rewrites went out
    refined = refined_sample(sample, result)
    assert [r.text for r in refined.responses] == ["first+", "second"]
    assert refined.preference is None and refined.metadata["refinement"]["scores"] == [0.0, 1.0, 1.0]
    unchanged = result.model_copy(update={"best_round": 0})
    assert refined_sample(sample, unchanged).responses == sample.responses
    with pytest.raises(ValueError, match="not 'other'"):
        refined_sample(sample.model_copy(update={"id": "other"}), result)
