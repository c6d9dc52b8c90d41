"""`rmforge serve`'s application over real HTTP on a local Ray Serve: served scores equal offline
scores, both protocols, the verl reward function, dynamic batching, bad input, the API key."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from rm_resources.serving.protocol import API_KEY_ENV, RequestError, ScoreJob, parse_openrlhf_request
from rm_resources.serving.scorers import JobScores, ModelSpec, isolated
from rm_rewards.core.schema import ChatMessage, Response, Sample

API_KEY = "canary-serve-key-7f3a"  # must never show up in a response or a log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _samples() -> list[Sample]:
    long_prompt = "tell me everything about bread " * 80  # past the tiny model's 128 positions
    texts = [("how do I bake bread?", ["mix flour and water", "no"]),
             ("hi", ["hello! how can I help?"]),
             (long_prompt, ["a long answer " * 40, "short"])]
    return [
        Sample(id=f"s{i}", source="t", input=[ChatMessage(role="user", content=q)],
               responses=[Response(message=ChatMessage(role="assistant", content=r)) for r in rs])
        for i, (q, rs) in enumerate(texts)
    ]


def _body(samples: list[Sample], **extra) -> dict:
    return {**extra, "samples": [{"id": s.id, "input": [m.model_dump(exclude_none=True) for m in s.input],
                                  "responses": [r.text for r in s.responses]} for s in samples]}


def _post(url: str, payload, *, key: str | None = API_KEY, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str, key: str | None = API_KEY) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from rm_resources.serving import app
    from tests.support.tiny import make_tiny_backbone

    path = str(make_tiny_backbone(tmp_path_factory.mktemp("ckpt") / "tiny", seed=3))
    spec = ModelSpec("checkpoint:tiny-serve", "checkpoint", version="v-test", path=path)
    settings = app.ServeSettings(port=_free_port(), max_batch_size=16, batch_wait_timeout_s=0.05,
                                 max_request_bytes=20_000, max_samples=8)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(API_KEY_ENV, API_KEY)
        try:
            url = app.start(spec, settings)
            yield url, path
        finally:
            app.stop()


@pytest.mark.timeout(300)
def test_served_scores_equal_offline_scores(server):
    from training.bt_scoring import score_with_checkpoint

    url, path = server
    status, body = _post(f"{url}/v1/rewards", _body(_samples(), model="checkpoint:tiny-serve"))
    assert status == 200, body
    offline = score_with_checkpoint(path, _samples())
    assert (body["model"], body["version"]) == ("checkpoint:tiny-serve", "v-test")
    assert [r["id"] for r in body["results"]] == ["s0", "s1", "s2"]
    for served, expected in zip(body["results"], offline):
        assert served["scores"] == pytest.approx(expected, abs=1e-5)
        assert served["errors"] == [None] * len(expected)


@pytest.mark.timeout(300)
def test_concurrent_callers_are_batched_and_each_gets_its_own_scores(server):
    from training.bt_scoring import score_with_checkpoint

    url, path = server
    samples = _samples()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda i: _post(f"{url}/v1/rewards", _body([samples[i % 3]])), range(24)))
    offline = score_with_checkpoint(path, samples)
    for i, (status, body) in enumerate(answers):
        assert status == 200 and body["results"][0]["scores"] == pytest.approx(offline[i % 3], abs=1e-5)
    assert _get(f"{url}/health", key=None)[1]["stats"]["largest_batch"] > 1


@pytest.mark.timeout(300)
def test_openrlhf_protocol_and_verl_reward_function(server, monkeypatch):
    from training import verl_remote_reward
    from training.bt_scoring import score_texts
    from training.data import render_text

    url, path = server
    queries = ["User: hi\nAssistant: hello", "User: 2+2?\nAssistant: 4"]
    status, body = _post(f"{url}/get_reward", {"query": queries, "prompts": ["User: hi\n", "User: 2+2?\n"],
                                                "labels": ["", "4"]})
    assert status == 200, body
    assert body["rewards"] == pytest.approx(score_texts(path, queries), abs=1e-5)

    monkeypatch.setenv(verl_remote_reward.URL_ENV, url)
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    result = verl_remote_reward.compute_score("rmforge/pairwise/x", "hello there", None,
                                              extra_info={"prompt": [{"role": "user", "content": "hi"}]})
    expected = score_texts(path, [render_text([ChatMessage(role="user", content="hi")], "hello there")])[0]
    assert result["score"] == pytest.approx(expected, abs=1e-5) and result["error"] == ""
    monkeypatch.setenv(API_KEY_ENV, "wrong")
    failed = verl_remote_reward.compute_score("d", "x", None, extra_info={"prompt": "hi"})
    assert failed["score"] == 0.0 and "401" in failed["error"] and API_KEY not in failed["error"]


@pytest.mark.timeout(300)
def test_bad_input_is_a_4xx_naming_the_field_and_the_replica_survives(server):
    url, _ = server
    good = _body(_samples()[:1])
    cases = [
        ({}, b"{not json", 400, "body"),
        ({}, None, 422, "samples"),
        ({"samples": [{"input": "hi", "responses": ["a"]}]}, None, 422, "samples.0.input"),
        ({"samples": [{"input": [], "responses": [3]}]}, None, 422, "samples.0.responses.0"),
        ({"samples": []}, None, 422, "samples"),
        ({"samples": good["samples"] * 9}, None, 413, "samples"),
        ({"samples": [{"input": [], "responses": ["x" * 30_000]}]}, None, 413, "body"),
        ({**good, "model": "checkpoint:other"}, None, 404, "model"),
    ]
    for payload, raw, status, field in cases:
        got, body = _post(f"{url}/v1/rewards", payload, raw=raw)
        assert (got, body["error"]["field"]) == (status, field), (payload, body)
    assert _post(f"{url}/get_reward", {"query": []})[1]["error"]["field"] == "query"
    assert _post(f"{url}/get_reward", {"query": ["a"], "prompts": []})[1]["error"]["field"] == "prompts"

    # bad and good requests in flight together: the good ones are scored
    payloads = [good if i % 2 else {"samples": "nope"} for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda p: _post(f"{url}/v1/rewards", p), payloads))
    assert [s for s, _ in answers] == [422 if i % 2 == 0 else 200 for i in range(10)]
    assert _get(f"{url}/health", key=None)[1]["status"] == "ok"


@pytest.mark.timeout(300)
def test_api_key_is_required_and_never_echoed(server):
    url, _ = server
    for key in (None, "wrong"):
        status, body = _post(f"{url}/v1/rewards", _body(_samples()[:1]), key=key)
        assert status == 401 and body["error"]["field"] == "authorization"
        assert API_KEY not in json.dumps(body)
    assert _get(f"{url}/v1/models", key=None)[0] == 401
    status, models = _get(f"{url}/v1/models")
    assert status == 200 and models["data"][0]["id"] == "checkpoint:tiny-serve"


# --- without Ray ---------------------------------------------------------------------------------


def test_a_failing_job_fails_alone():
    def score(jobs):
        if any(j.meta.get("bad") for j in jobs):
            raise RuntimeError("boom")
        return [JobScores(scores=[[1.0]], errors=[[None]]) for _ in jobs]

    jobs = [ScoreJob(samples=[], meta={"bad": i == 1}) for i in range(3)]
    results = isolated(score, jobs)
    assert isinstance(results[1], RuntimeError)
    assert [r.scores for i, r in enumerate(results) if i != 1] == [[[1.0]], [[1.0]]]


def test_openrlhf_prompt_split_and_rule_scorer():
    from rm_resources.serving.scorers import RuleScorer, resolve_model

    job = parse_openrlhf_request({"query": ["Q: hi A: hello"], "prompts": ["Q: hi A: "], "labels": ["hello"]},
                                 max_samples=4)
    assert job.samples[0].responses[0].text == "hello" and job.samples[0].reference == "hello"
    spec = resolve_model("reward:length_penalty", store=None)
    (scores,) = RuleScorer(spec)([job])
    assert isinstance(scores.scores[0][0], float)
    with pytest.raises(RequestError, match="2 labels for 1 queries"):
        parse_openrlhf_request({"query": ["a"], "labels": [1, 2]}, max_samples=4)


def test_the_key_is_in_no_ray_log(server):
    from pathlib import Path

    import ray

    url, _ = server
    _post(f"{url}/v1/rewards", {"samples": []}, key="wrong")
    _post(f"{url}/v1/rewards", _body(_samples()[:1]))
    session = Path(ray._private.worker.global_worker.node.get_session_dir_path())  # this test's Ray only
    logs = [p for p in (session / "logs").rglob("*") if p.is_file()]
    assert logs and not [p for p in logs if API_KEY.encode() in p.read_bytes()]


def test_rmforge_serve_says_when_nothing_is_promoted(tmp_path, monkeypatch, capsys):
    from dagster_project.cli import main

    monkeypatch.setenv("RMFORGE_DATA_DIR", str(tmp_path))
    assert main(["serve"]) == 2
    assert "nothing is promoted yet: materialize served_model, or pass --model" in capsys.readouterr().err
    assert main(["serve", "--model", "checkpoint:nope"]) == 2
    assert "no trained checkpoint 'nope'" in capsys.readouterr().err
    assert main(["serve", "--model", "judge:helpfulness_pointwise"]) == 2
    assert "serving judge models is not supported" in capsys.readouterr().err
