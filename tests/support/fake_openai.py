"""A fake OpenAI-compatible server for tests and benchmarks (no model, scripted answers, faults).

Serves `POST /v1/chat/completions` and `GET /v1/models` on 127.0.0.1 on a free port, either in a
background thread of the test process (`ThreadedFakeOpenAI`: cheap, and it accepts a Python
`responder` callable) or in a subprocess (`ProcessFakeOpenAI`: realistic, needed for throughput
measurements, scripted over a small control API). Both handles share one interface:

    with ThreadedFakeOpenAI(latency_s=0.01) as server:
        server.enqueue(status(429, retry_after=0.2), reply('{"score": 3}'))
        ... LLMConfig(base_url=server.base_url, ...) ...
        assert server.request_count == 2

Which action answers a request, first match wins: a 401 when the server requires an API key
(`require_api_key`) and the request lacks it, then the fault injector (`set_faults`: a seeded
share of requests fails, see `FaultInjector`), then the `responder` (threaded only), then the
queue (`enqueue`, FIFO), then rules (`add_rule(contains, action, times)`: the action answers
requests whose message text contains the substring), then the default action (`set_default`;
initially an echo of the last message). Actions are plain JSON dicts made by `reply`, `status`,
`hang`, `drop`, `trickle`, `garbage`, `truncated`, `wrong_shape` and `echo_auth`; each may carry
its own `delay_s`, else the server's `latency_s` applies.

The server records every chat request (body, headers, arrival time, the fault injected if any)
and the most requests it ever had in flight at once, so tests can assert exact call counts and
concurrency limits.

Run as a script (`python tests/support/fake_openai.py --latency 0.1`) it prints `FAKE_OPENAI_PORT=<port>`
and serves until killed or until its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from typing_extensions import Self

Action = dict[str, Any]
Responder = Callable[[dict[str, Any]], "Action | str | None"]

# --- actions -----------------------------------------------------------------------------------


def reply(
    content: str | None,
    *,
    delay_s: float | None = None,
    finish_reason: str = "stop",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> Action:
    """A 200 chat completion with this content (None: a null content field)."""
    return {
        "kind": "reply",
        "content": content,
        "delay_s": delay_s,
        "finish_reason": finish_reason,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }


def status(code: int, *, retry_after: float | None = None, delay_s: float | None = None) -> Action:
    """An error response with an OpenAI-style error body and optional Retry-After header."""
    return {"kind": "status", "code": code, "retry_after": retry_after, "delay_s": delay_s}


def hang(seconds: float, content: str = "too late") -> Action:
    """Answer only after `seconds` (sleep past the client's timeout)."""
    return {"kind": "reply", "content": content, "delay_s": seconds, "finish_reason": "stop"}


def drop(*, delay_s: float | None = None) -> Action:
    """Send headers and part of the body, then close the socket."""
    return {"kind": "drop", "delay_s": delay_s}


def trickle(seconds: float, *, interval_s: float = 0.05, content: str = "slow") -> Action:
    """Send a byte of whitespace every `interval_s` for `seconds`, then a valid completion.

    No single gap is long enough for a read timeout: only a whole-request deadline stops it.
    """
    return {"kind": "trickle", "seconds": seconds, "interval_s": interval_s, "content": content, "delay_s": 0}


def garbage(*, delay_s: float | None = None) -> Action:
    """A 200 whose body is not JSON at all."""
    return {"kind": "garbage", "delay_s": delay_s}


def truncated(*, delay_s: float | None = None) -> Action:
    """A 200 whose body is the first half of a valid chat completion (complete as HTTP, cut as JSON)."""
    return {"kind": "truncated", "delay_s": delay_s}


# Valid JSON that is not a chat completion: what a misrouted proxy or a legacy endpoint answers.
WRONG_SHAPES: tuple[Any, ...] = (
    {"object": "list", "data": []},
    {"id": "chatcmpl-x", "object": "chat.completion", "choices": []},
    {"id": "cmpl-x", "object": "text_completion", "choices": [{"index": 0, "text": "{\"score\": 3}"}]},
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": {"score": 3}}}]},
    ["not", "an", "object"],
)


def wrong_shape(shape: int = 0, *, delay_s: float | None = None) -> Action:
    """A 200 whose body is valid JSON of the wrong shape (`WRONG_SHAPES[shape]`)."""
    return {"kind": "wrong_shape", "shape": shape % len(WRONG_SHAPES), "delay_s": delay_s}


def echo_auth(code: int = 401) -> Action:
    """A hostile error response that echoes the request's Authorization header in its body."""
    return {"kind": "echo_auth", "code": code, "delay_s": 0}


def echo_default() -> Action:
    """Reply "echo: <last message text>" (the initial default)."""
    return {"kind": "echo", "delay_s": None}


# --- fault injection ---------------------------------------------------------------------------

# Every kind the injector knows. Retried by the client: the 429s, 5xx, timeouts, drops, and 200s
# whose body is not JSON (garbage, truncated); a wrong-shape 200 is a bad response, not retried.
FAULT_KINDS: tuple[str, ...] = (
    "429_retry_after", "429", "500", "503", "timeout", "drop", "garbage", "truncated", "wrong_shape",
)


class FaultInjector:
    """Fails a seeded share (`rate`) of chat requests with faults drawn evenly from `kinds`.

    The draw hashes (seed, the request body, how many times that body was seen before), so the
    same requests meet the same faults whatever order concurrency delivers them in, and a retry
    of a request draws afresh. `hang_s` is how long a "timeout" fault sleeps before answering:
    set it past the client's timeout. `retry_after_s` is the Retry-After of "429_retry_after".
    """

    def __init__(
        self,
        rate: float,
        seed: int = 0,
        kinds: tuple[str, ...] | list[str] = FAULT_KINDS,
        hang_s: float = 5.0,
        retry_after_s: float = 0.05,
    ) -> None:
        unknown = sorted(set(kinds) - set(FAULT_KINDS))
        if unknown or not kinds:
            raise ValueError(f"fault kinds {unknown or kinds!r}: expected some of {FAULT_KINDS}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate {rate}: expected 0..1")
        self.rate, self.seed, self.kinds = rate, seed, tuple(kinds)
        self.hang_s, self.retry_after_s = hang_s, retry_after_s
        self._seen: Counter[str] = Counter()

    def spec(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed, "kinds": list(self.kinds), "hang_s": self.hang_s,
                "retry_after_s": self.retry_after_s}

    def pick(self, body: dict[str, Any]) -> Action | None:
        """The fault for this request (an action tagged with its kind), or None: answer normally."""
        content = json.dumps(body, sort_keys=True)
        nth = self._seen[content]
        self._seen[content] += 1
        digest = hashlib.sha256(f"{self.seed}\0{nth}\0{content}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= self.rate:
            return None
        kind = self.kinds[int.from_bytes(digest[8:12], "big") % len(self.kinds)]
        return {**self._action(kind, digest[12]), "fault": kind}

    def _action(self, kind: str, byte: int) -> Action:
        if kind == "429_retry_after":
            return status(429, retry_after=self.retry_after_s)
        if kind in ("429", "500", "503"):
            return status(int(kind))
        if kind == "timeout":
            return hang(self.hang_s)
        if kind == "drop":
            return drop()
        if kind == "garbage":
            return garbage()
        if kind == "truncated":
            return truncated()
        return wrong_shape(byte)


# --- server state ------------------------------------------------------------------------------


def _message_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


class ServerState:
    """Script and records of one server; every access holds the lock (test thread vs server loop)."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.latency_s = latency_s
        self.responder: Responder | None = None
        self.queue: deque[Action] = deque()
        self.rules: list[dict[str, Any]] = []
        self.default: Action = echo_default()
        self.faults: FaultInjector | None = None
        self.required_key: str | None = None
        self.requests: list[dict[str, Any]] = []
        self.models_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        with self.lock:
            self.responder = None
            self.queue.clear()
            self.rules.clear()
            self.default = echo_default()
            self.faults = None
            self.required_key = None
            self.requests.clear()
            self.models_requests = 0
            self.max_in_flight = self.in_flight

    def configure(self, spec: dict[str, Any]) -> None:
        with self.lock:
            if "latency_s" in spec:
                self.latency_s = float(spec["latency_s"])
            self.queue.extend(spec.get("enqueue", []))
            self.rules.extend(spec.get("rules", []))
            if spec.get("default") is not None:
                self.default = spec["default"]
            if "faults" in spec:
                self.faults = None if spec["faults"] is None else FaultInjector(**spec["faults"])
            if "require_api_key" in spec:
                self.required_key = spec["require_api_key"]

    def record(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """Record a request; the returned record is where `fault` is noted once it is chosen."""
        entry = {"body": body, "headers": headers, "at": time.time(), "fault": None}
        with self.lock:
            self.requests.append(entry)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return entry

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def next_action(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Action:
        with self.lock:
            if self.required_key is not None and (headers or {}).get("Authorization") != f"Bearer {self.required_key}":
                return {"kind": "status", "code": 401, "retry_after": None, "delay_s": 0, "fault": "auth"}
            fault = self.faults.pick(body) if self.faults is not None else None
            if fault is not None:
                return fault
            responder = self.responder
        if responder is not None:
            answer = responder(body)
            if answer is not None:
                return reply(answer) if isinstance(answer, str) else answer
        with self.lock:
            if self.queue:
                return self.queue.popleft()
            text = _message_text(body)
            for rule in self.rules:
                if rule["contains"] in text and rule.get("times") != 0:
                    if rule.get("times") is not None:
                        rule["times"] -= 1
                    return rule["action"]
            return self.default

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": list(self.requests),
                "models_requests": self.models_requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "faults": None if self.faults is None else self.faults.spec(),
            }


# --- HTTP handlers -----------------------------------------------------------------------------


def completion_json(body: dict[str, Any], action: Action, counter: int) -> dict[str, Any]:
    content = action.get("content")
    prompt_tokens = action.get("prompt_tokens")
    completion_tokens = action.get("completion_tokens")
    return {
        "id": f"chatcmpl-fake-{counter}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": action.get("finish_reason", "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens
            if prompt_tokens is not None
            else 1 + len(_message_text(body)) // 4,
            "completion_tokens": completion_tokens
            if completion_tokens is not None
            else 1 + len(content or "") // 4,
            "total_tokens": 0,  # filled below
        },
    }


def _error_body(code: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "fake_error", "code": code}}


async def _perform(
    request: web.Request, body: dict[str, Any], action: Action, counter: int
) -> web.StreamResponse:
    kind = action["kind"]
    if kind == "echo":
        action = reply(f"echo: {_last_message(body)}")
        kind = "reply"
    if kind == "reply":
        payload = completion_json(body, action, counter)
        usage = payload["usage"]
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return web.json_response(payload)
    if kind == "status":
        headers = {} if action.get("retry_after") is None else {"Retry-After": f"{action['retry_after']:g}"}
        return web.json_response(
            _error_body(action["code"], f"fake status {action['code']}"),
            status=action["code"],
            headers=headers,
        )
    if kind == "echo_auth":
        message = f"invalid key; you sent {request.headers.get('Authorization', '')}"
        return web.json_response(_error_body(action["code"], message), status=action["code"])
    if kind == "garbage":
        return web.Response(text="<html>this is not JSON", content_type="application/json")
    if kind == "truncated":
        whole = json.dumps(completion_json(body, reply('{"score": 3}'), counter)).encode()
        return web.Response(body=whole[: len(whole) // 2], content_type="application/json")
    if kind == "wrong_shape":
        return web.json_response(WRONG_SHAPES[action["shape"]])
    if kind == "drop":
        return await _drop(request)
    if kind == "trickle":
        return await _trickle(request, body, action, counter)
    raise ValueError(f"unknown fake action kind {kind!r}")


def _last_message(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    return str(messages[-1].get("content", ""))


async def _drop(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "4096"})
    await response.prepare(request)
    await response.write(b'{"id": "chatcmpl-dropped", "choices": [')
    await asyncio.sleep(0.01)
    assert request.transport is not None
    request.transport.close()
    return response


async def _trickle(
    request: web.Request, body: dict[str, Any], action: Action, counter: int
) -> web.StreamResponse:
    payload = completion_json(body, reply(action["content"]), counter)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    deadline = time.monotonic() + action["seconds"]
    try:
        while time.monotonic() < deadline:
            await response.write(b" ")
            await asyncio.sleep(action["interval_s"])
        await response.write(json.dumps(payload).encode())
        await response.write_eof()
    except ConnectionResetError:  # the client gave up, as it should
        pass
    return response


def build_app(state: ServerState) -> web.Application:
    counter = iter(range(1, 1 << 62))

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(_error_body(400, "request body is not JSON"), status=400)
        headers = dict(request.headers)
        entry = state.record(body, headers)
        try:
            action = state.next_action(body, headers)
            entry["fault"] = action.get("fault")
            delay = action.get("delay_s")
            await asyncio.sleep(state.latency_s if delay is None else delay)
            return await _perform(request, body, action, next(counter))
        finally:
            state.done()

    async def models(request: web.Request) -> web.Response:
        with state.lock:
            state.models_requests += 1
        return web.json_response(
            {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "fake"}]}
        )

    async def control_configure(request: web.Request) -> web.Response:
        spec = await request.json()
        if spec.get("reset"):
            state.reset()
        state.configure(spec)
        return web.json_response({"ok": True})

    async def control_state(request: web.Request) -> web.Response:
        return web.json_response(state.summary())

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/_fake/configure", control_configure)
    app.router.add_get("/_fake/state", control_state)
    return app


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _start(state: ServerState, sock: socket.socket) -> web.AppRunner:
    # handler_cancellation: a request whose client went away (timed out) stops counting as in
    # flight at once, instead of sleeping out its scripted delay in the background.
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False, handler_cancellation=True)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=4096).start()
    return runner


# --- handles -----------------------------------------------------------------------------------


class FakeOpenAI:
    """What tests use, whichever way the server runs."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _configure(self, spec: dict[str, Any]) -> None:
        raise NotImplementedError

    def _summary(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def enqueue(self, *actions: Action) -> None:
        self._configure({"enqueue": list(actions)})

    def add_rule(self, contains: str, action: Action, *, times: int | None = None) -> None:
        """Answer requests whose message text contains `contains` with `action` (`times` at most)."""
        self._configure({"rules": [{"contains": contains, "action": action, "times": times}]})

    def set_default(self, action: Action) -> None:
        self._configure({"default": action})

    def set_latency(self, seconds: float) -> None:
        self._configure({"latency_s": seconds})

    def set_faults(self, injector: FaultInjector | None) -> None:
        """Inject faults into chat requests from now on (None: stop). See `FaultInjector`."""
        self._configure({"faults": None if injector is None else injector.spec()})

    def require_api_key(self, key: str | None) -> None:
        """Answer 401 to every chat request whose Authorization is not `Bearer <key>` (None: any)."""
        self._configure({"require_api_key": key})

    @property
    def faults_injected(self) -> Counter[str]:
        """How many requests met each fault kind (and "auth" for refused keys)."""
        return Counter(r["fault"] for r in self.requests if r["fault"] is not None)

    def reset(self) -> None:
        """Forget the script and the records (latency stays)."""
        self._configure({"reset": True})

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat request received: {"body", "headers", "at"} in arrival order."""
        return self._summary()["requests"]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def max_in_flight(self) -> int:
        return self._summary()["max_in_flight"]

    @property
    def models_requests(self) -> int:
        return self._summary()["models_requests"]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ThreadedFakeOpenAI(FakeOpenAI):
    """The server on its own event loop in a daemon thread of this process."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.state = ServerState(latency_s)
        sock = _bound_socket()
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(sock, started), daemon=True, name="fake-openai"
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake OpenAI server did not start within 10 s")

    def _serve(self, sock: socket.socket, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = self._loop.run_until_complete(_start(self.state, sock))
        started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def set_responder(self, responder: Responder | None) -> None:
        """A function body -> action, reply text, or None (fall through to queue/rules/default)."""
        with self.state.lock:
            self.state.responder = responder

    def _configure(self, spec: dict[str, Any]) -> None:
        if spec.get("reset"):
            self.state.reset()
        self.state.configure(spec)

    def _summary(self) -> dict[str, Any]:
        return self.state.summary()

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


class ProcessFakeOpenAI(FakeOpenAI):
    """The server in a subprocess (this file run as a script), scripted over its control API."""

    def __init__(self, latency_s: float = 0.0) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--latency", str(latency_s)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("FAKE_OPENAI_PORT="):
            self._process.kill()
            raise RuntimeError(f"fake OpenAI server did not start: {line!r}")
        self.port = int(line.split("=", 1)[1])

    def _control(self, path: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if spec is None else json.dumps(spec).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_fake/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def _configure(self, spec: dict[str, Any]) -> None:
        self._control("configure", spec)

    def _summary(self) -> dict[str, Any]:
        return self._control("state")

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


# --- script entry point ------------------------------------------------------------------------


async def _serve_until_stdin_closes(latency_s: float) -> None:
    sock = _bound_socket()
    runner = await _start(ServerState(latency_s), sock)
    print(f"FAKE_OPENAI_PORT={sock.getsockname()[1]}", flush=True)
    # The parent holds our stdin: when it exits, even by a crash, EOF arrives and we stop.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    asyncio.run(_serve_until_stdin_closes(args.latency))


if __name__ == "__main__":
    main()
