"""A verl reward function that asks a running `rmforge serve` for the reward (stdlib only).

Point verl at it with `reward.custom_reward_function.path=training/verl_remote_reward.py` (name
`compute_score`); verl calls `compute_score(data_source, solution_str, ground_truth, extra_info)`
once per rollout. The rollout is scored as one response to the prompt in `extra_info["prompt"]`
(chat messages, as verl's dataset rows hold them, or a plain user string) through
`POST /v1/rewards`, so a checkpoint sees exactly its training template.

Environment: RMFORGE_REWARD_URL (default http://127.0.0.1:8000), RMFORGE_SERVE_API_KEY when the
server requires a key. A failed call scores 0.0 and says why in "error" (never the key); the keys
and types of the returned dict are the same for every rollout, as verl stacks them.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

URL_ENV = "RMFORGE_REWARD_URL"
API_KEY_ENV = "RMFORGE_SERVE_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 60.0


def _messages(extra_info: dict[str, Any] | None) -> list[dict[str, str]]:
    prompt = (extra_info or {}).get("prompt") or []
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]


def _result(score: float, error: str = "") -> dict[str, Any]:
    return {"score": score, "error": error, "served_ok": 0.0 if error else 1.0}


def request_reward(messages: list[dict[str, str]], response: str) -> float:
    """The served reward of one response; raises on any failure (HTTP status and server message)."""
    url = os.environ.get(URL_ENV, DEFAULT_URL).rstrip("/") + "/v1/rewards"
    body = json.dumps({"samples": [{"input": messages, "responses": [response]}]}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get(API_KEY_ENV):
        headers["Authorization"] = f"Bearer {os.environ[API_KEY_ENV]}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            payload = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise RuntimeError(f"reward server answered {exc.code}: {detail}") from None
    score = payload["results"][0]["scores"][0]
    if score is None:
        raise RuntimeError(f"no score: {payload['results'][0]['errors'][0]}")
    return float(score)


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **_: Any
) -> dict[str, Any]:
    """verl's reward-function signature; returns {"score", "error", "served_ok"}."""
    try:
        return _result(request_reward(_messages(extra_info), solution_str))
    except Exception as exc:  # a reward failure is a value for this rollout, not a crashed step
        return _result(0.0, f"{type(exc).__name__}: {exc}"[:400])
