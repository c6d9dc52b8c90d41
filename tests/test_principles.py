"""Auto-generated principles against the fake OpenAI server: the propose-judge-revise loop, its
bounds when the judge never agrees and when the LLM always fails, diverse selection with real
MiniLM embeddings, the merge and its fallback, and the agreement before and after.

The responder plays three roles: the pairwise judge (told apart by the output schema it asks
for, `PairwiseJudgement`), the merger and the proposer/reviser (told apart by their task text). The judge is position-biased (always "A") unless its
principles contain the word STRONG; then it picks the answer marked GOOD.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.curation.pairs import fold_pairs
from rm_rewards.judging.embeddings import EmbeddingError
from rm_rewards.judging.principles import (
    PrincipleSettings,
    generate_principles,
    principle_set_id,
)
from rm_rewards.llm.client import LLMClient
from tests.support.fake_openai import reply, status

ANSWER_RE = re.compile(r'<answer label="([^"]+)">\n(.*?)\n</answer>', re.DOTALL)


def pair(sample_id: str, topic: str, good_first: bool) -> Sample:
    texts = [f"GOOD answer about {topic}", f"poor answer about {topic}"]
    if not good_first:
        texts.reverse()
    return Sample(
        id=sample_id,
        source="test",
        task="pairwise",
        input=[ChatMessage(role="user", content=f"Tell me about {topic}.")],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in texts],
        preference=0 if good_first else 1,
    )


def schema_name(body: dict[str, Any]) -> str:
    return body["response_format"]["json_schema"]["name"]


def principles_in_prompt(body: dict[str, Any]) -> str:
    prompt = body["messages"][-1]["content"]
    return prompt.split("# Principles\n", 1)[1].split("\n\n# ", 1)[0]


def judge(body: dict[str, Any]) -> str:
    if "STRONG" not in principles_in_prompt(body):
        return json.dumps({"critique": "A looks fine", "winner": "A"})
    answers = dict(ANSWER_RE.findall(body["messages"][-1]["content"]))
    winner = next(label for label, text in answers.items() if "GOOD" in text)
    return json.dumps({"critique": "the GOOD one follows the principle", "winner": winner})


def topic_of(body: dict[str, Any]) -> str:
    return re.search(r"Tell me about (\w+)", body["messages"][-1]["content"]).group(1)


def scripted(proposals: dict[str, Any], merged: Any) -> Any:
    """A responder: `proposals(body, revising)` for proposer calls, `merged` for the merge call."""

    def respond(body: dict[str, Any]) -> Any:
        name = schema_name(body)
        if name == "PairwiseJudgement":
            return judge(body)
        task = body["messages"][0]["content"]
        if task.startswith("You consolidate"):
            return merged
        return proposals(body, "previous principles" in task)

    return respond


def weak_then_strong(body: dict[str, Any], revising: bool) -> str:
    topic = topic_of(body)
    text = f"STRONG: answers about {topic} must be correct." if revising else "Be polite."
    return json.dumps({"principles": [text]})


@pytest.fixture
def client(fake_openai, llm_config) -> LLMClient:
    return LLMClient(llm_config(fake_openai, max_retries=0))


def test_the_loop_revises_until_the_judge_agrees_then_merges(fake_openai, client) -> None:
    merged = json.dumps({"principles": ["STRONG: correctness first.", "Be direct."]})
    fake_openai.set_responder(scripted(weak_then_strong, merged))
    samples = [pair("p1", "cats", True), pair("p2", "dogs", False), pair("p3", "owls", True)]
    samples.append(pair("p1-swapped", "cats", False))  # the same pair with A and B swapped
    tie = pair("tie", "fish", True).model_copy(update={"preference": None})
    result = generate_principles([*samples, tie], client, PrincipleSettings(max_rounds=3, max_themes=4))

    assert result.principles == ["STRONG: correctness first.", "Be direct."]
    assert result.id == principle_set_id("", result.principles)
    prov = result.provenance
    assert prov.pairs_used == ["p1", "p2", "p3"]
    assert {s.sample_id: s.reason for s in prov.skipped} == {
        "p1-swapped": "same pair as p1 (swapped copy)",
        "tie": "preference: none (a tie or unlabelled)",
    }
    assert [(o.rounds, o.agreed) for o in prov.pair_outcomes] == [(2, True)] * 3
    assert [c.text for c in prov.candidates] == [
        f"STRONG: answers about {t} must be correct." for t in ("cats", "dogs", "owls")
    ]
    assert prov.selection_method == "all" and prov.merged and prov.rounds == 6
    assert prov.agreement_before.rate == 0.0 and prov.agreement_before.position_inconsistent == 3
    assert prov.agreement_after.rate == 1.0 and prov.agreement_after.principles == result.principles
    assert prov.failures == [] and not prov.stopped_early
    assert prov.model == "fake-model" and "principle_propose-v1" in prov.template_version
    # Per pair: propose, judge x2, revise, judge x2; one merge; agreement before and after x2 each.
    assert fake_openai.request_count == 3 * 6 + 1 + 3 * 2 * 2
    judge = result.judge(client, "listwise")
    assert judge.principles == result.principles and judge.name == f"principles_{result.id}_listwise"


def test_the_loop_is_bounded_when_the_judge_never_agrees(fake_openai, client) -> None:
    never_strong = lambda body, revising: json.dumps({"principles": [f"Be nice round {int(revising)}."]})
    fake_openai.set_responder(scripted(never_strong, reply("unused")))
    samples = [pair(f"p{k}", t, k % 2 == 0) for k, t in enumerate(["cats", "dogs"])]
    result = generate_principles(samples, client, PrincipleSettings(max_rounds=2))
    assert result.principles == []
    prov = result.provenance
    assert [(o.rounds, o.agreed, o.stopped) for o in prov.pair_outcomes] == [
        (2, False, "no agreement within max_rounds")
    ] * 2
    assert prov.selection_method == "none" and not prov.merged and prov.agreement_after is None
    assert fake_openai.request_count == 2 * 2 * 3 + 2 * 2  # rounds x (proposal + 2 orders) + before


def test_a_dead_llm_stops_the_run_cleanly_and_records_why(fake_openai, client) -> None:
    fake_openai.set_responder(lambda body: status(500))
    samples = [pair(f"p{k}", f"topic{k}", True) for k in range(20)]
    settings = PrincipleSettings(max_llm_failures=3, max_concurrent_pairs=2)
    result = generate_principles(samples, client, settings)
    prov = result.provenance
    assert result.principles == [] and prov.stopped_early
    assert fake_openai.request_count <= settings.max_llm_failures + settings.max_concurrent_pairs - 1
    proposal_failures = [f for f in prov.failures if f.stage == "propose"]
    assert proposal_failures and all("server_error" in f.error and f.round == 1 for f in proposal_failures)
    assert sum(o.stopped == "failure budget spent" and o.rounds == 0 for o in prov.pair_outcomes) >= 16
    assert prov.agreement_before is None and prov.agreement_after is None


def test_selection_keeps_diverse_principles_with_real_embeddings(fake_openai, client) -> None:
    variants = {
        "cats": "STRONG: Keep answers short and to the point.",
        "dogs": "STRONG: Answers should be brief and concise.",
        "owls": "STRONG: Refuse to help with weapons or violence.",
        "bees": "STRONG: Decline requests for help with violence or weapons.",
        "ants": "STRONG: Code must compile and handle edge cases.",
        "elks": "STRONG: Code should handle edge cases and compile without errors.",
    }
    proposals = lambda body, revising: json.dumps({"principles": [variants[topic_of(body)]]})
    fake_openai.set_responder(scripted(proposals, reply("not JSON at all")))  # the merge fails
    samples = [pair(f"p-{t}", t, True) for t in variants]
    settings = PrincipleSettings(n_selected=3, max_themes=3, measure_agreement=False)
    result = generate_principles(samples, client, settings)
    prov = result.provenance
    assert prov.selection_method == "farthest_point" and len(prov.candidates) == 6
    themes = {"short": "brevity", "brief": "brevity", "weapons": "safety", "edge cases": "code"}
    found = {next(theme for word, theme in themes.items() if word in p) for p in result.principles}
    assert found == {"brevity", "safety", "code"}
    # The failed merge falls back to the selection, recorded.
    assert not prov.merged and result.principles == prov.selected
    [merge_failure] = [f for f in prov.failures if f.stage == "merge"]
    assert "parse_error" in merge_failure.error


class FailingEmbedder:
    def embed(self, texts: list[str]) -> np.ndarray:
        raise EmbeddingError("model unavailable")


def test_an_embedding_failure_is_recorded_and_selection_falls_back_to_support(fake_openai, client) -> None:
    proposals = lambda body, revising: json.dumps({"principles": [f"STRONG rule for {topic_of(body)}."]})
    merged = json.dumps({"principles": ["STRONG merged."]})
    fake_openai.set_responder(scripted(proposals, merged))
    samples = [pair(f"p{k}", t, True) for k, t in enumerate(["cats", "dogs", "owls"])]
    settings = PrincipleSettings(n_selected=2, measure_agreement=False)
    result = generate_principles(samples, client, settings, embedder=FailingEmbedder())
    prov = result.provenance
    assert prov.selection_method == "support" and prov.selected == [
        "STRONG rule for cats.",
        "STRONG rule for dogs.",
    ]
    [failure] = prov.failures
    assert failure.stage == "select" and "model unavailable" in failure.error
    assert result.principles == ["STRONG merged."] and not prov.stopped_early


def test_folded_pairs_name_what_is_wrong_with_each_skipped_sample() -> None:
    three = pair("three", "cats", True)
    three = three.model_copy(update={"responses": [*three.responses, three.responses[0]]})
    odd = pair("odd", "dogs", True).model_copy(update={"preference": 2})
    pairs, skipped = fold_pairs([three, odd, pair("fine", "owls", False)])
    assert [p.pair_id for p in pairs] == ["fine"] and pairs[0].chosen_index == 1
    assert [(s.sample_id, s.reason) for s in skipped] == [
        ("three", "responses: needs 2, has 3"),
        ("odd", "preference: 2 is not 0 or 1"),
    ]
