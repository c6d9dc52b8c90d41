"""LLM judges over real HTTP against the fake OpenAI server: every kind's happy path, pairwise in
both orders, per-item failures (never defaults), the response cache, concurrency, best-of-N with a
judge, and the registered alignment set.

The fake server's responder plays the judge: it reads the prompt the judge sent (which answer
holds which marker) and the output schema it asked for, and answers like a model would.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from rm_rewards.benchmarks.consistency import JudgedPair, consistency_report
from rm_rewards.benchmarks.loaders import load_benchmark
from rm_rewards.benchmarks.pair_judging import judge_items
from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample, Step
from rm_rewards.judging.alignment import ALIGNMENT_SPECS, make_judge
from rm_rewards.judging.best_of_n import best_of_n
from rm_rewards.judging.judges import (
    ListwiseJudge,
    PairwiseJudge,
    PointwiseJudge,
    StepwiseJudge,
    presentation_order,
)
from rm_rewards.judging.templates import (
    PAIRWISE_TEMPLATE,
    PairwiseJudgement,
    pointwise_output_model,
    stepwise_output_model,
)
from rm_rewards.llm.cache import ResponseCache
from rm_rewards.llm.client import LLMClient
from rm_rewards.llm.structured import StructuredOutputError, parse_model
from tests.support.fake_openai import reply, status

PRINCIPLES = ["Be correct.", "Be concise.", "Be kind."]
ANSWER_RE = re.compile(r'<answer label="([^"]+)">\n(.*?)\n</answer>', re.DOTALL)


def make_sample(sample_id: str, *texts: str, query: str = "What is 2+2?") -> Sample:
    return Sample(
        id=sample_id,
        source="test",
        input=[ChatMessage(role="user", content=query)],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in texts],
    )


def prompt_of(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"]


def schema_name(body: dict[str, Any]) -> str:
    return body["response_format"]["json_schema"]["name"]


def answers_in(body: dict[str, Any]) -> dict[str, str]:
    return dict(ANSWER_RE.findall(prompt_of(body)))


@pytest.fixture
def client(fake_openai, llm_config) -> LLMClient:
    return LLMClient(llm_config(fake_openai, max_retries=1))


# --- pointwise -----------------------------------------------------------------------------------


def pointwise_responder(body: dict[str, Any]) -> Any:
    """GOOD answers score 4; BAD ones 1 with principle 2 violated; markers inject faults."""
    answer = answers_in(body)["answer"]
    faults = {
        "MALFORMED": reply('{"critique": "cut off", "score": '),
        "EMPTY": reply(""),
        "FAIL500": status(500),
        "OUT_OF_RANGE": reply(json.dumps({"critique": "", "violated": [], "score": 7})),
        "NO_SUCH_PRINCIPLE": reply(json.dumps({"critique": "", "violated": [9], "score": 2})),
    }
    for marker, action in faults.items():
        if marker in answer:
            return action
    if "GOOD" in answer:
        return json.dumps({"critique": "right and short", "violated": [], "score": 4})
    # Prose and a code fence around the JSON, as small models write it.
    return 'Here is my verdict:\n```json\n{"critique": "too long", "violated": [2], "score": 1}\n```'


def test_pointwise_judge_scores_each_response_and_sends_a_structured_request(fake_openai, client) -> None:
    fake_openai.set_responder(pointwise_responder)
    judge = PointwiseJudge(client=client, principles=PRINCIPLES, scenario="Arithmetic help.")
    result = judge.evaluate(make_sample("s1", "GOOD: 4", "BAD: it is four, because ..."))
    assert result.ok, result
    good, bad = result.scores
    assert (good.score, bad.score) == (4.0, 1.0)
    assert bad.dimensions["violations"].score == 1.0 and "Violated principles: 2" in bad.reason
    assert good.dimensions["violations"].score == 0.0 and good.reason == "right and short"
    body = fake_openai.bodies[0]
    assert schema_name(body) == "PointwiseJudgement_3p_4"
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["score"]["maximum"] == 4
    prompt = prompt_of(body)
    assert "# Scenario\nArithmetic help." in prompt
    assert "1. Be correct.\n2. Be concise.\n3. Be kind." in prompt
    assert "# Query\nWhat is 2+2?" in prompt
    assert body["messages"][0]["role"] == "system" and body["temperature"] == 0.0


def test_pointwise_failures_are_errors_of_their_item_only(fake_openai, client) -> None:
    fake_openai.set_responder(pointwise_responder)
    judge = PointwiseJudge(client=client, principles=PRINCIPLES)
    texts = ["GOOD", "MALFORMED", "EMPTY", "FAIL500", "OUT_OF_RANGE", "NO_SUCH_PRINCIPLE", "BAD"]
    [result] = judge.evaluate_batch([make_sample("s1", *texts)])
    assert result.error is None
    by_text = dict(zip(texts, result.scores))
    assert by_text["GOOD"].score == 4.0 and by_text["BAD"].score == 1.0
    expected_reasons = {
        "MALFORMED": "parse_error",
        "EMPTY": "empty_content",
        "FAIL500": "server_error",
        "OUT_OF_RANGE": "parse_error",
        "NO_SUCH_PRINCIPLE": "parse_error",
    }
    for text, reason in expected_reasons.items():
        score = by_text[text]
        assert score.score is None, f"{text} got a default score {score.score}"
        assert score.error is not None and reason in score.error, (text, score.error)
    assert "less than or equal to 4 (got 7)" in by_text["OUT_OF_RANGE"].error
    assert "less than or equal to 3" in by_text["NO_SUCH_PRINCIPLE"].error


def test_a_second_run_is_served_from_the_cache_except_failures(fake_openai, llm_config, tmp_path) -> None:
    fake_openai.set_responder(pointwise_responder)
    samples = [make_sample(f"s{k}", f"GOOD {k}", f"BAD {k}") for k in range(4)]
    samples.append(make_sample("broken", "MALFORMED"))

    def run() -> list:
        client = LLMClient(llm_config(fake_openai, max_retries=0), ResponseCache(tmp_path / "cache.sqlite"))
        return PointwiseJudge(client=client, principles=PRINCIPLES).evaluate_batch(samples)

    first = run()
    assert fake_openai.request_count == 9
    second = run()
    # Only the unparseable answer was not cached, so only it is asked again.
    assert fake_openai.request_count == 10
    assert [r.values() for r in second] == [r.values() for r in first]
    assert second[-1].scores[0].error is not None
    samples.pop()  # without it, a re-run makes no request at all
    assert [r.values() for r in run()] == [r.values() for r in first[:-1]]
    assert fake_openai.request_count == 10


def test_a_batch_runs_concurrently(fake_openai, client) -> None:
    fake_openai.set_responder(pointwise_responder)
    fake_openai.set_latency(0.1)
    samples = [make_sample(f"s{k}", f"GOOD {k}", f"BAD {k}") for k in range(6)]
    results = PointwiseJudge(client=client, principles=PRINCIPLES).evaluate_batch(samples)
    assert all(r.ok for r in results)
    assert fake_openai.max_in_flight >= 6


# --- pairwise ------------------------------------------------------------------------------------


def fair_pairwise(body: dict[str, Any]) -> str:
    """Prefers the answer marked GOOD wherever it is shown; two unmarked answers tie."""
    answers = answers_in(body)
    winner = next((label for label, text in answers.items() if "GOOD" in text), "tie")
    return json.dumps({"critique": f"{winner} is better", "winner": winner})


def first_position_pairwise(body: dict[str, Any]) -> str:
    return json.dumps({"critique": "A reads better", "winner": "A"})


def test_pairwise_asks_both_orders_and_keeps_consistent_verdicts(fake_openai, client) -> None:
    fake_openai.set_responder(fair_pairwise)
    judge = PairwiseJudge(client=client, principles=PRINCIPLES)
    result = judge.evaluate(make_sample("p1", "plain one", "GOOD one", "plain two"))
    assert result.ok, result
    assert result.values() == [0.25, 1.0, 0.25]
    shown = sorted((answers_in(b)["A"], answers_in(b)["B"]) for b in fake_openai.bodies)
    texts = ["plain one", "GOOD one", "plain two"]
    expected = sorted((texts[a], texts[b]) for a in range(3) for b in range(3) if a != b)
    assert shown == expected  # every pair, in both orders, never a response with itself
    meta = result.metadata
    assert (
        meta["pairs"],
        meta["position_consistent"],
        meta["position_inconsistent"],
        meta["failed_pairs"],
    ) == (
        3,
        3,
        0,
        0,
    )
    assert all(s.dimensions["position_inconsistent"].score == 0 for s in result.scores)


def test_position_inconsistent_pairs_are_ties_flagged_and_counted(fake_openai, client) -> None:
    fake_openai.set_responder(first_position_pairwise)
    result = PairwiseJudge(client=client).evaluate(make_sample("p2", "GOOD", "other", "third"))
    assert result.ok
    assert result.values() == [0.5, 0.5, 0.5]
    assert result.metadata["position_inconsistent"] == 3
    assert all("position-inconsistent" in s.reason for s in result.scores)
    assert [s.dimensions["position_inconsistent"].score for s in result.scores] == [2.0, 2.0, 2.0]
    # The recorded single-order verdicts feed the benchmark consistency report directly.
    report = consistency_report(JudgedPair(item_id=result.sample_id, **o) for o in result.metadata["orders"])
    assert report.position_flips == 3 and report.symmetry_violations == 3


def test_position_inconsistency_can_be_an_error_instead(fake_openai, client) -> None:
    fake_openai.set_responder(first_position_pairwise)
    judge = PairwiseJudge(client=client, on_inconsistent="error")
    result = judge.evaluate(make_sample("p3", "GOOD", "other"))
    assert result.values() == [None, None]
    assert all(s.error and "position-inconsistent" in s.error for s in result.scores)
    assert result.metadata["position_inconsistent"] == 1 and result.metadata["failed_pairs"] == 0


def test_a_failed_order_voids_the_pair_instead_of_using_the_other_order(fake_openai, client) -> None:
    def fails_when_good_is_shown_first(body: dict[str, Any]) -> Any:
        return status(500) if "GOOD" in answers_in(body)["A"] else fair_pairwise(body)

    fake_openai.set_responder(fails_when_good_is_shown_first)
    batch = [make_sample("bad-pair", "GOOD", "other"), make_sample("fine-pair", "plain", "also plain")]
    broken, fine = PairwiseJudge(client=client).evaluate_batch(batch)
    assert broken.values() == [None, None]
    assert "server_error" in broken.scores[0].error and "0 as A" in broken.scores[0].error
    assert broken.metadata["failed_pairs"] == 1
    assert fine.ok and fine.values() == [0.5, 0.5]


def test_acompare_is_one_order_for_the_benchmarks_pair_judging(fake_openai, client) -> None:
    fake_openai.set_responder(first_position_pairwise)
    items = load_benchmark("rmb_pairwise")[:3]
    verdicts = judge_items(PairwiseJudge(client=client), items, "both")
    assert fake_openai.request_count == len(verdicts) == 6  # one request per question asked
    assert all(v.winner == "a" for v in verdicts)
    assert consistency_report(verdicts).symmetry_violations == 3


def test_pairwise_needs_two_responses(fake_openai, client) -> None:
    result = PairwiseJudge(client=client).evaluate(make_sample("lonely", "only answer"))
    assert result.error and "at least 2 responses" in result.error and fake_openai.request_count == 0


# --- listwise ------------------------------------------------------------------------------------


def quality_ranking(body: dict[str, Any]) -> str:
    """Ranks answers by the number after "q" in their text (higher is better)."""
    answers = answers_in(body)
    ranked = sorted(answers, key=lambda label: -int(re.search(r"q(\d+)", answers[label]).group(1)))
    return json.dumps({"critique": "by quality", "ranking": [int(label) for label in ranked]})


def test_listwise_maps_the_ranking_back_through_the_shuffle(fake_openai, client) -> None:
    fake_openai.set_responder(quality_ranking)
    samples = [make_sample(f"l{k}", "q2", "q9", "q5", "q1") for k in range(4)]
    assert any(presentation_order(s, True) != [0, 1, 2, 3] for s in samples)
    results = ListwiseJudge(client=client, principles=PRINCIPLES).evaluate_batch(samples)
    for result in results:
        assert result.ok
        assert result.values() == pytest.approx([1 / 3, 1.0, 2 / 3, 0.0])
        assert result.scores[1].reason.startswith("rank 1 of 4")
    assert "there are 4 answers" in prompt_of(fake_openai.bodies[0]).lower()


def test_listwise_rejects_a_ranking_that_is_not_a_permutation(fake_openai, client) -> None:
    fake_openai.set_responder(lambda body: json.dumps({"critique": "", "ranking": [1, 1, 2]}))
    result = ListwiseJudge(client=client).evaluate(make_sample("l-bad", "q1", "q2", "q3"))
    assert result.values() == [None, None, None]
    assert all("not a permutation" in s.error for s in result.scores)


# --- stepwise ------------------------------------------------------------------------------------


def step_checker(body: dict[str, Any]) -> str:
    steps = re.findall(
        r"Step (\d+):\n(.*?)(?=\n\nStep |\n</answer>|\n\n# Output)", prompt_of(body), re.DOTALL
    )
    verdicts = [{"step": int(n), "correct": "WRONG" not in text, "reason": ""} for n, text in steps]
    return json.dumps({"critique": "checked", "steps": verdicts})


def test_stepwise_judges_each_step(fake_openai, client) -> None:
    fake_openai.set_responder(step_checker)
    sample = make_sample("st", "x", "y")
    sample.responses[0].steps = [Step(content="2+2 = 4"), Step(content="so the answer is 4")]
    sample.responses[1].steps = [Step(content="2+2 = 5 WRONG"), Step(content="so the answer is 5")]
    result = StepwiseJudge(client=client, principles=PRINCIPLES).evaluate(sample)
    assert result.ok, result
    assert [s.steps for s in result.scores] == [[1.0, 1.0], [0.0, 1.0]]
    assert result.values() == [1.0, 0.0]  # min over steps


def test_stepwise_with_missing_step_verdicts_is_an_error(fake_openai, client) -> None:
    fake_openai.set_responder(lambda body: json.dumps({"steps": [{"step": 1, "correct": True}]}))
    sample = make_sample("st2", "first part\n\nsecond part")
    [score] = StepwiseJudge(client=client).evaluate(sample).scores
    assert score.score is None and "at least 2 items" in score.error


# --- best-of-N with a judge ----------------------------------------------------------------------


def test_best_of_n_with_an_llm_judge_skips_failed_responses(fake_openai, client) -> None:
    fake_openai.set_responder(pointwise_responder)
    judge = PointwiseJudge(client=client, principles=PRINCIPLES)
    picks = best_of_n(
        judge, [make_sample("b1", "BAD", "FAIL500", "GOOD"), make_sample("b2", "MALFORMED", "BAD")]
    )
    assert picks[0].selected == [2] and picks[0].scores == [1.0, None, 4.0]
    assert picks[1].selected == [1] and picks[1].scores[0] is None


# --- the registered alignment set ----------------------------------------------------------------

SCENARIOS = {
    "brainstorming",
    "chat",
    "classification",
    "closed_qa",
    "code",
    "focus",
    "generation",
    "math",
    "open_qa",
    "precise_if",
    "reasoning",
    "rewrite",
    "role_playing",
    "summarization",
    "translation",
}


def test_alignment_set_is_registered_and_listable_without_a_client() -> None:
    names = {s.name for s in registry.specs(tag="alignment")}
    for aspect in ("helpfulness", "harmlessness", "honesty"):
        assert {f"{aspect}_pointwise", f"{aspect}_listwise"} <= names
    assert {"safety_listwise", "factuality_listwise"} <= names
    assert {f"{s}_listwise" for s in SCENARIOS} <= names
    for scenario in SCENARIOS:
        [spec] = (
            registry.specs(tag=scenario, is_llm=True)
            if scenario != "code"
            else [s for s in registry.specs(tag="code") if s.is_llm]
        )
        assert {"alignment", "helpfulness"} <= set(spec.tags) and spec.required_params == ("client",)
    assert "safety" in registry.spec("safety_listwise").tags
    assert "factuality" in registry.spec("factuality_listwise").tags
    for spec in ALIGNMENT_SPECS:
        assert 1 <= len(spec.principles) <= 4 and spec.scenario
    assert {"llm_pointwise_judge", "llm_pairwise_judge", "llm_listwise_judge", "llm_stepwise_judge"} <= {
        s.name for s in registry.specs(is_llm=True)
    }


def test_registry_gives_a_ready_judge_and_the_version_tracks_prompt_not_client(
    fake_openai, client, llm_config
) -> None:
    with pytest.raises(ValueError, match="client: Field required"):
        registry.get("math_listwise")
    judge = registry.get("math_listwise", client=client)
    assert judge.name == "math_listwise" and judge.scenario.startswith("Math:")
    other_client = LLMClient(llm_config(fake_openai, model="another"))
    assert registry.get("math_listwise", client=other_client).version == judge.version
    assert (
        registry.get("math_listwise", client=client, principles=["Only the result."]).version != judge.version
    )
    assert registry.get("code_listwise", client=client).version != judge.version
    fake_openai.set_responder(quality_ranking)
    result = judge.evaluate(make_sample("reg", "q1", "q3"))
    assert result.reward_name == "math_listwise" and result.values() == [0.0, 1.0]
    assert "Correct result: The final answer is mathematically correct." in prompt_of(fake_openai.bodies[0])


def test_make_judge_builds_any_kind_from_a_spec(client) -> None:
    judge = make_judge("safety", "pairwise", client)
    assert isinstance(judge, PairwiseJudge) and judge.name == "safety_pairwise"
    assert judge.principles[0].startswith("Refusing harmful requests")
    with pytest.raises(KeyError, match="no alignment spec"):
        make_judge("kindness", "pairwise", client)


def test_bad_judge_configuration_is_rejected(client) -> None:
    with pytest.raises(ValueError, match="blank"):
        PointwiseJudge(client=client, principles=["ok", "  "])
    with pytest.raises(ValueError, match="does not fit a pointwise judge"):
        PointwiseJudge(client=client, template=PAIRWISE_TEMPLATE)


def test_output_models_are_tolerant_of_form_but_strict_about_content() -> None:
    text = (
        '<think>maybe A?</think>Verdict: {"critique": "B is right", "winner": "answer b", "confidence": 0.9}'
    )
    assert parse_model(text, PairwiseJudgement).winner == "B"
    assert parse_model('{"winner": "Tie."}', PairwiseJudgement).winner == "tie"
    with pytest.raises(StructuredOutputError):
        parse_model('{"winner": "both"}', PairwiseJudgement)
    pointwise = parse_model('{"violated": [2, 1, 2], "score": "3"}', pointwise_output_model(2))
    assert (pointwise.violated, pointwise.score) == ([1, 2], 3)
    with pytest.raises(StructuredOutputError, match="fractional"):
        parse_model('{"violated": [], "score": 2.5}', pointwise_output_model(2))
    steps = parse_model(
        '{"steps": [{"step": 2, "correct": false}, {"step": 1, "correct": true}]}', stepwise_output_model(2)
    )
    assert [s.step for s in steps.steps] == [1, 2]
