"""LLM faults: a judging materialization over 2,000 items while a fifth of the requests fail.

The real `llm_scores` asset (through Dagster, the `llm` resource, its retries and its SQLite
response cache) judges a generated partition of 1,200 pairwise and 800 pointwise samples against
the fake OpenAI-compatible server over loopback, whose seeded fault injector fails 20% of the
requests: 429 with and without Retry-After, 500, 503, timeouts (the server sleeps past the
client's timeout), connections dropped mid-body, garbage and truncated JSON, and valid JSON of the
wrong shape. Every request names its item (the prompt carries the sample id), so the server's
records say which item each request was for and what it met.

What must hold: every item ends with exactly one row, either scored or carrying its error (no
item lost, none scored twice, no score invented for a failed call); the table's errors are
exactly the calls whose every attempt met a fault; and re-materializing sends one request per
failed call and none for what was scored (the cache makes those free). The figures are printed
(pytest -s) and recorded in bench/RESULTS.md, "Reliability: LLM faults".
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter, defaultdict
from typing import Any

import dagster as dg
import pytest

from rm_assets.judging.assets import llm_scores
from rm_resources.llm import LLMClientResource
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.store import Store
from rm_resources.warehouse import WarehouseResource
from rm_rewards.core.schema import ChatMessage, Response, Sample
from tests.conftest import CANARY_API_KEY
from tests.support.fake_openai import FAULT_KINDS, FaultInjector, reply

PAIRWISE, POINTWISE = 1_200, 800
PARTITION = "helpsteer2"  # a dataset partition; its samples here are generated, not HelpSteer2's
FAULT_RATE, SEED = 0.20, 20261202
TIMEOUT_S = 2.0  # the client's per-attempt deadline; a "timeout" fault sleeps past it
MAX_RETRIES = 2
# What the client retries (a wrong-shape 200 is the server's API, not retried).
RETRYABLE_FAULTS = {"429_retry_after", "429", "500", "503", "timeout", "drop", "garbage", "truncated"}
ITEM = re.compile(r"\[item (rel-\d{5})\]")


def generated_samples() -> list[Sample]:
    """Pairwise samples (two answers, judged in both orders) then pointwise ones (one answer)."""
    samples = []
    for i in range(PAIRWISE + POINTWISE):
        item = f"rel-{i:05d}"
        question = ChatMessage(role="user", content=f"[item {item}] How many legs has animal number {i}?")
        if i < PAIRWISE:
            answers = [f"Animal {i} has four legs.", f"I think animal {i} might have some legs, probably."]
            samples.append(Sample(id=item, source="reliability", task="pairwise", input=[question], preference=0,
                                  responses=[Response(message=ChatMessage(role="assistant", content=a)) for a in answers]))
        else:
            answer = ChatMessage(role="assistant", content=f"Animal {i} has {i % 9} legs.")
            samples.append(Sample(id=item, source="reliability", task="pointwise", input=[question],
                                  responses=[Response(message=answer)]))
    return samples


ANSWER = re.compile(r'<answer label="([^"]+)">\n(.*?)\n</answer>', re.DOTALL)


def judge_responder(body: dict[str, Any]) -> Any:
    """The model: answers the output schema the request asks for (shorter answer wins a pair)."""
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema") or {}
    if "winner" in schema.get("properties", {}):
        answers = dict(ANSWER.findall(body["messages"][-1]["content"]))
        winner = "A" if len(answers["A"]) <= len(answers["B"]) else "B"
        return reply(json.dumps({"critique": "The shorter answer is to the point.", "winner": winner}))
    return reply(json.dumps({"critique": "Plausible.", "violated": [], "score": 3}))


def item_of(body: dict[str, Any]) -> str:
    return ITEM.search(json.dumps(body["messages"])).group(1).replace("\\", "")


def call_of(body: dict[str, Any]) -> str:
    """One judge call's identity: its whole request (a retry sends the same body again)."""
    return json.dumps(body, sort_keys=True)


@pytest.fixture
def resources(tmp_path, fake_openai):
    return {
        "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
        "llm": LLMClientResource(
            base_url=fake_openai.base_url, model="fake-model", api_key=CANARY_API_KEY, timeout_s=TIMEOUT_S,
            max_retries=MAX_RETRIES, cache_path=str(tmp_path / "cache.sqlite"), budget="full",  # every sample
        ),
        "ray": RayClusterResource(),  # in process (no address)
    }


def _materialize(resources) -> tuple[dg.ExecuteInProcessResult, float]:
    began = time.perf_counter()
    result = dg.materialize([llm_scores], resources=resources, partition_key=PARTITION)
    assert result.success
    return result, time.perf_counter() - began


def _metadata(result) -> dict[str, Any]:
    metadata = result.asset_materializations_for_node("llm_scores")[0].metadata
    return {k: v.value for k, v in metadata.items() if k.startswith("llm_")}


def _outcomes(store: Store) -> tuple[dict[str, str], Counter]:
    """item -> "scored" / "errored" from the table (one row per item asserted), and the reasons."""
    frame = store.read_partition("llm_scores", PARTITION)
    assert not frame["sample_id"].duplicated().any(), "an item has two rows"
    outcome, reasons = {}, Counter()
    for row in frame.to_dict(orient="records"):
        errors = [e for e in [row["error"], *row["response_errors"]] if e]
        finite = [v for v in row["scores"] if v is not None and not math.isnan(v)]
        if errors:
            assert not finite, f"{row['sample_id']}: a score was invented for a failed call: {row}"
            reasons.update({re.search(r"judge call failed: (\w+)", e).group(1) for e in errors})
            outcome[row["sample_id"]] = "errored"
        else:
            assert len(finite) == len(row["scores"]) > 0, row
            outcome[row["sample_id"]] = "scored"
    return outcome, reasons


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_judging_2000_items_under_20_percent_faults_loses_nothing_and_reruns_only_failures(
    resources, fake_openai, tmp_path
):
    samples = generated_samples()
    ids = {s.id for s in samples}
    store = Store(str(tmp_path / "w.duckdb"))
    store.write_converted(PARTITION, samples, [], run_id="generated")
    fake_openai.set_responder(judge_responder)
    fake_openai.set_faults(FaultInjector(FAULT_RATE, SEED, hang_s=TIMEOUT_S + 1.0, retry_after_s=0.05))

    # --- run 1: under faults -------------------------------------------------------------------
    first, first_s = _materialize(resources)
    sent = fake_openai.requests
    outcome, reasons = _outcomes(store)
    assert set(outcome) == ids, f"lost items: {sorted(ids - set(outcome))[:5]}"  # zero lost

    faults = Counter(r["fault"] for r in sent if r["fault"])
    assert set(faults) == set(FAULT_KINDS), faults  # every kind of fault was really met
    assert 0.17 < sum(faults.values()) / len(sent) < 0.23, faults
    assert _metadata(first)["llm_requests"] == len(sent)  # the client counted what the server saw

    # Per call (one request body, sent again on each retry): what each attempt met, in order.
    met, items_of_call = defaultdict(list), {}
    for record in sent:
        call = call_of(record["body"])
        items_of_call[call] = item_of(record["body"])
        met[call].append(record["fault"])
    answered = {call: sum(fault is None for fault in faults_met) for call, faults_met in met.items()}
    assert max(answered.values()) == 1, "a call was answered twice: something was scored twice"
    failed_calls = {call for call, n in answered.items() if n == 0}
    # The retry policy, attempt by attempt: retry the retryable faults until the answer or the last
    # allowed attempt; stop at once at a wrong-shape answer.
    for call, faults_met in met.items():
        *before, last = faults_met
        assert all(fault in RETRYABLE_FAULTS for fault in before), faults_met
        assert len(faults_met) <= MAX_RETRIES + 1, faults_met
        if call in failed_calls:
            assert last not in RETRYABLE_FAULTS or len(faults_met) == MAX_RETRIES + 1, faults_met
    # The table's errors are exactly the items with a call that never got an answer.
    errored = {item for item, state in outcome.items() if state == "errored"}
    assert errored == {items_of_call[call] for call in failed_calls}
    assert errored and len(errored) < len(ids) / 4
    # Wrong-shape answers are not retried; the rest are, until they run out.
    assert "bad_response" in reasons and reasons.keys() <= {"bad_response", "timeout", "rate_limited",
                                                            "server_error", "connection"}, reasons

    # --- run 2: the same asset, faults off -----------------------------------------------------
    fake_openai.set_faults(None)
    second, second_s = _materialize(resources)
    resent = fake_openai.requests[len(sent):]
    assert len(resent) == len(failed_calls)  # failed calls x 1 attempt each; scored ones are free
    assert Counter(call_of(r["body"]) for r in resent) == Counter({call: 1 for call in failed_calls})
    assert {item_of(r["body"]) for r in resent} == errored
    after, _ = _outcomes(store)
    assert set(after) == ids and set(after.values()) == {"scored"}
    second_meta = _metadata(second)
    assert second_meta["llm_requests"] == len(resent)

    # --- run 3: nothing left to ask --------------------------------------------------------------
    _third, third_s = _materialize(resources)
    assert fake_openai.request_count == len(sent) + len(resent)

    first_meta = _metadata(first)
    figures = {
        "items": len(ids), "pairwise_items": PAIRWISE, "pointwise_items": POINTWISE,
        "calls": len(items_of_call), "run1_requests": len(sent), "run1_retries": first_meta["llm_retries"],
        "faults_injected": sum(faults.values()), "faults_by_kind": dict(sorted(faults.items())),
        "items_scored": len(ids) - len(errored), "items_errored": len(errored), "items_lost": 0,
        "failed_calls": len(failed_calls), "failed_calls_by_reason": dict(sorted(
            (k.removeprefix("llm_failures_"), v) for k, v in first_meta.items() if k.startswith("llm_failures_"))),
        "run2_requests": len(resent), "run2_items_scored": len(ids), "run3_requests": 0,
        "seconds": {"run1": round(first_s, 1), "run2": round(second_s, 1), "run3": round(third_s, 1)},
    }
    print("\nReliability: LLM faults\n" + json.dumps(figures, indent=2))


def test_the_fault_injector_is_seeded_by_request_and_attempt():
    bodies = [{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(2_000)]
    first, second = FaultInjector(0.2, seed=7), FaultInjector(0.2, seed=7)
    draws = [(first.pick(b) or {}).get("fault") for b in bodies]
    assert draws == [(second.pick(b) or {}).get("fault") for b in reversed(bodies)][::-1]  # order-free
    assert 300 < sum(d is not None for d in draws) < 500 and set(draws) - {None} == set(FAULT_KINDS)
    retries = [(first.pick(b) or {}).get("fault") for b in bodies]  # the second sight of each body
    assert retries != draws  # a retry draws afresh
    with pytest.raises(ValueError, match="fault kinds"):
        FaultInjector(0.2, kinds=["teapot"])
