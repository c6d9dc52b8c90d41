"""The LLM assets through Dagster, against the fake OpenAI-compatible server over real HTTP.

The responder plays the model: it answers whatever output schema the request asks for, so every
asset (principles, pairwise and pointwise judging, refinement) runs its real parsing path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import dagster as dg
import pytest

from rm_assets.data.assets import converted_samples, raw_rows
from rm_assets.judging.assets import auto_principles, llm_scores, refined_samples
from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.store import Store
from rm_resources.warehouse import WarehouseResource
from rm_rewards.judging.refinement import refinement_candidates
from tests.support.fake_openai import reply, status


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema") or {}
    return schema.get("properties", {})


ANSWER_RE = re.compile(r'<answer label="([^"]+)">\n(.*?)\n</answer>', re.DOTALL)


def model_responder(body: dict[str, Any]) -> Any:
    """A position-consistent model: in a pair the shorter answer wins, whichever slot it is in."""
    properties = _properties(body)
    if "principles" in properties:
        return reply(json.dumps({"principles": ["Answer the question that was asked.", "State facts accurately."]}))
    if "winner" in properties:
        answers = dict(ANSWER_RE.findall(body["messages"][-1]["content"]))
        winner = "A" if len(answers["A"]) <= len(answers["B"]) else "B"
        return reply(json.dumps({"critique": "The shorter answer is to the point.", "winner": winner}))
    if "score" in properties:
        return reply(json.dumps({"critique": "Mostly right.", "violated": [], "score": 3}))
    return reply("A clearer, more accurate answer.")  # a refinement rewrite (free text)


def position_biased_responder(body: dict[str, Any]) -> Any:
    if "winner" in _properties(body):
        return reply(json.dumps({"critique": "The first one.", "winner": "A"}))
    return model_responder(body)


def failing_pairwise_responder(body: dict[str, Any]) -> Any:
    if "winner" in _properties(body):
        return status(500)
    return model_responder(body)


@pytest.fixture
def resources(tmp_path, fake_openai):
    return {
        "datasets": DatasetSourceResource(mode="bundled"),
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
        "llm": LLMClientResource(
            base_url=fake_openai.base_url, model="fake-model", api_key="sk-test-SECRET-canary-123456",
            timeout_s=5.0, max_retries=1, cache_path=str(tmp_path / "cache.sqlite"),
        ),
        "ray": RayClusterResource(),  # llm_scores judges in process (no address)
    }


ASSETS = [raw_rows, converted_samples, auto_principles, llm_scores, refined_samples]


def _materialize(resources, instance=None):
    return dg.materialize(ASSETS, resources=resources, partition_key="helpsteer2", instance=instance)


def test_llm_assets_score_everything_and_a_rerun_is_served_from_cache(resources, fake_openai, tmp_path):
    fake_openai.set_responder(model_responder)
    first = _materialize(resources)
    assert first.success
    requests_after_first = fake_openai.request_count
    assert requests_after_first > 0

    store = Store(str(tmp_path / "w.duckdb"))
    principles = store.read_partition("principle_sets", "helpsteer2")
    assert len(principles) == 1
    # The bundled pairs prefer the shorter answer in 2 of 3 cases, so principles survive.
    assert json.loads(principles["principles_json"][0])
    provenance = json.loads(principles["provenance_json"][0])
    assert provenance["model"] == "fake-model" and provenance["pairs_used"]

    scores = store.read_partition("llm_scores", "helpsteer2")
    assert len(scores) == 6  # the budget: the first 6 samples, each scored once
    assert scores["error"].isna().all()
    assert all(e is None for errors in scores["response_errors"] for e in errors)
    assert set(scores["principle_set_id"]) == {principles["principle_set_id"][0]}
    pairwise = scores[scores["reward_name"] == "principle_pairwise_judge"]
    assert len(pairwise) > 0
    samples = Store(str(tmp_path / "w.duckdb")).read_partition("converted_samples", "helpsteer2")
    lengths = {sid: [len(r["message"]["content"]) for r in json.loads(cell)]
               for sid, cell in zip(samples["sample_id"], samples["responses_json"])}
    for sample_id, values in zip(pairwise["sample_id"], pairwise["scores"]):
        shorter = 0 if lengths[sample_id][0] <= lengths[sample_id][1] else 1
        assert list(values) == [1.0 if i == shorter else 0.0 for i in range(2)]

    refined = store.read_partition("refined_samples", "helpsteer2")
    assert set(refined["round"]) >= {0, 1}
    assert refined.groupby("sample_id")["is_best"].sum().eq(1).all()

    metadata = first.asset_materializations_for_node("llm_scores")[0].metadata
    assert metadata["llm_requests"].value > 0
    assert metadata["position_inconsistent_pairs"].value == 0

    # Unchanged inputs: zero LLM calls, same rows, no duplicates.
    second = _materialize(resources)
    assert second.success
    assert fake_openai.request_count == requests_after_first
    assert second.asset_materializations_for_node("llm_scores")[0].metadata["llm_requests"].value == 0
    assert len(store.read_partition("llm_scores", "helpsteer2")) == 6


def test_position_bias_is_reported_as_inconsistent_ties(resources, fake_openai, tmp_path):
    fake_openai.set_responder(position_biased_responder)
    result = _materialize(resources)
    assert result.success
    scores = Store(str(tmp_path / "w.duckdb")).read_partition("llm_scores", "helpsteer2")
    pairwise = scores[scores["reward_name"] == "principle_pairwise_judge"]
    # Both orders say "A": a tie flagged as position-inconsistent, never a default win for slot A.
    assert len(pairwise) > 0 and all(list(values) == [0.5, 0.5] for values in pairwise["scores"])
    assert all("position-inconsistent" in reasons[0] for reasons in pairwise["reasons"])
    metadata = result.asset_materializations_for_node("llm_scores")[0].metadata
    assert metadata["position_inconsistent_pairs"].value == len(pairwise)


def test_failed_judgements_are_recorded_per_item_never_defaulted(resources, fake_openai, tmp_path):
    fake_openai.set_responder(failing_pairwise_responder)
    result = _materialize(resources)
    assert result.success
    scores = Store(str(tmp_path / "w.duckdb")).read_partition("llm_scores", "helpsteer2")
    pairwise = scores[scores["reward_name"] == "principle_pairwise_judge"]
    pointwise = scores[scores["reward_name"] == "principle_pointwise_judge"]
    assert len(pairwise) > 0 and len(pointwise) > 0
    for values, errors in zip(pairwise["scores"], pairwise["response_errors"]):
        assert all(v is None or v != v for v in values), values  # no score was invented
        assert all("server_error" in e for e in errors)
    assert all(e is None for errors in pointwise["response_errors"] for e in errors)
    assert not scores.duplicated(["sample_id", "reward_name"]).any()


def test_the_api_key_never_reaches_metadata_or_tables(resources, fake_openai, tmp_path):
    fake_openai.set_responder(failing_pairwise_responder)
    with dg.instance_for_test() as instance:
        result = _materialize(resources, instance=instance)
        records = [
            record
            for asset in ASSETS
            for record in instance.fetch_materializations(asset.key, limit=100).records
        ]
        assert records
        text = " ".join(str(r.event_log_entry) for r in records)
        logs = " ".join(str(e) for e in instance.all_logs(result.run_id))
    assert "SECRET-canary" not in text and "SECRET-canary" not in logs
    store = Store(str(tmp_path / "w.duckdb"))
    for table in ("llm_scores", "principle_sets", "refined_samples"):
        assert "SECRET-canary" not in store.read_partition(table, "helpsteer2").to_json()


def test_refinement_candidates_take_rejected_answers_once_per_pair():
    from rm_rewards.core.schema import ChatMessage, Response, Sample

    def sample(id_: str, swapped: bool) -> Sample:
        return Sample(
            id=id_, source="x", task="pairwise", preference=0, input=[ChatMessage(role="user", content="q")],
            responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in ("good", "bad")],
            metadata={"swapped": swapped},
        )

    candidates = refinement_candidates([sample("p", False), sample("p_swapped", True)])
    assert [(c.id, c.responses[0].text, c.task) for c in candidates] == [("p-rejected", "bad", "pointwise")]
