"""LLM judging throughput: the whole rmforge judge path, and rm-gallery 0.1.7 on the same workload.

    .venv/bin/python bench/llm_throughput.py [--levels 1,16,64,256] [--requests N] [--skip-peer]
                                             [--floors] [--profile C] [--gc-threshold0 N]

One run does all of this against the fake OpenAI-compatible server (`tests/support/fake_openai.py`, in
its own process) with a fixed latency (100 ms by default):

1. builds a deterministic workload from GSM8K: one sample per request, a question and one
   worked solution to judge, every (question, answer) pair distinct so that no two requests
   share a cache entry, a disjoint slice per concurrency level;
2. rmforge, per level c: a fresh `LLMClient(max_concurrency=c)` over one on-disk
   `ResponseCache` in a temp dir, `registry.get("helpfulness_pointwise", client=...)`, and a
   timed `evaluate_batch(samples, max_concurrency=c)`: prompt building, request, parsing into
   the judge's output model, cache write, result rows. The server answers valid judge JSON, so
   every sample must come back with the scripted score, and the server must have received
   exactly one request per sample; otherwise the run fails (exit 1) after printing the table;
3. the cached re-run: every sample of every level again, through a new client and a reopened
   cache; the server's request count must not change (asserted and printed);
4. `--floors`: the exact request bodies the judge sent at each level, replayed through the bare
   `AsyncOpenAI` SDK with its aiohttp transport (`chat.completions.create`, and `sdk.post` with a
   raw response, which skips the SDK's request transform) and through plain aiohttp, so the run
   shows what each way of sending costs and how much of the cost is ours;
5. rm-gallery 0.1.7: its registered `base_helpfulness_pointwise` reward, `evaluate_batch` at its
   defaults, through its `OpenaiLLM` pointed at the same server (`bench/rm_gallery_llm_peer.py`
   in `.venvs/rm-gallery`; build it with `bench/setup_rm_gallery_venv.sh`), on the first rows of
   the same workload, answered in its tag format (`--peer-workers` adds other `max_workers`);
6. prints a markdown table (requests/s against the limit concurrency / latency, client and
   server CPU ms per request, the client's one-core ceiling 1000 / CPU ms, the cores the client
   got) and the ratios to rm-gallery; figures land in `bench/out/llm_throughput.json`.

`--profile C` adds one cProfile'd run at concurrency C on fresh rows (not counted in the table)
and prints its top functions; the profile is kept in `bench/out/`. It counts CPU time of the
event loop's thread (`time.thread_time`), not wall time: on shared cores, wall time charges
whatever function happened to be running when the process was descheduled.

`--gc-threshold0 N` sets the cyclic GC's generation-0 threshold (Python's default: 700) for the
whole run, to measure what the collector costs; the conditions lines print the thresholds in force.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib
import io
import json
import math
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from typing_extensions import Self

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, RewardResult, Sample
from rm_rewards.datasets.bundled import bundled_path
from rm_rewards.llm.cache import ResponseCache
from rm_rewards.llm.client import LLMClient
from rm_rewards.llm.config import LLMConfig
from tests.support.fake_openai import ProcessFakeOpenAI, reply

PEER_PYTHON = REPO_ROOT / ".venvs" / "rm-gallery" / "bin" / "python"
PEER_SCRIPT = REPO_ROOT / "bench" / "rm_gallery_llm_peer.py"
OUT_DIR = REPO_ROOT / "bench" / "out"

JUDGE_NAME = "helpfulness_pointwise"
MODEL = "fake-model"
API_KEY = "sk-bench-not-a-real-key"
# The scripted verdicts. Each parses on its side, and the score it implies is checked per sample:
# rmforge's judge reports the JSON score; rm-gallery scores 1 - violations / rubrics = 1 - 1/3.
JUDGE_SCORE = 3
JUDGE_ANSWER = json.dumps(
    {"critique": "Correct and complete, but it never checks the units (principle 2).",
     "violated": [2], "score": JUDGE_SCORE}
)
PEER_ANSWER = (
    "<reason>Correct and complete, but it never checks the units.</reason>\n"
    "<violation>['Inquiring for More Information']</violation>"
)
PEER_SCORE = 1 - 1 / 3

# Targets from the issue: a fraction of the limit at a level, an absolute rate, a ratio.
TARGET_FRACTION = {64: 0.75}
TARGET_RATE = {256: 1000.0}
TARGET_PEER_RATIO = 10.0
# rmforge's own defaults: LLMConfig.max_concurrency (evaluate_batch's is higher and not binding).
RMFORGE_DEFAULT_CONCURRENCY = LLMConfig.model_fields["max_concurrency"].default
# Per level, enough requests for ~5 s at a rate this machine can reach (the bare aiohttp SDK
# topped out near 1,250 req/s at 256 in flight), within [MIN_REQUESTS, MAX_REQUESTS].
SECONDS_PER_LEVEL = 5.0
EXPECTED_CEILING_RPS = 1200.0
MIN_REQUESTS, MAX_REQUESTS = 50, 20_000
DEFAULT_PEER_REQUESTS = 400  # ~5-8 s at the rate rm-gallery's defaults allow
_CALCULATOR_NOTE = re.compile(r"<<[^>]*>>")


# --- the workload ------------------------------------------------------------------------------


def load_gsm8k() -> list[tuple[str, str]]:
    """(question, worked solution ending "The answer is N.") pairs, calculator notes removed."""
    pairs = []
    with bundled_path("gsm8k", "test.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            body, _, final = row["answer"].rpartition("####")
            solution = _CALCULATOR_NOTE.sub("", body).strip()
            pairs.append((row["question"].strip(), f"{solution}\nThe answer is {final.strip()}."))
    return pairs


def workload_rows(pairs: Sequence[tuple[str, str]], start: int, count: int) -> list[dict[str, str]]:
    """Rows k in [start, start + count): question k mod P with the solution of problem
    (k mod P + k div P) mod P, so the first P rows are matched and all P*P rows are distinct."""
    p = len(pairs)
    if start + count > p * p:
        raise ValueError(f"at most {p * p} distinct rows, asked for {start + count}")
    rows = []
    for k in range(start, start + count):
        question = pairs[k % p][0]
        answer = pairs[(k % p + k // p) % p][1]
        rows.append({"id": f"gsm8k-{k}", "question": question, "answer": answer})
    return rows


def to_sample(row: dict[str, str]) -> Sample:
    return Sample(
        id=row["id"],
        source="gsm8k",
        input=[ChatMessage(role="user", content=row["question"])],
        responses=[Response(message=ChatMessage(role="assistant", content=row["answer"]))],
    )


def requests_for(level: int, latency_s: float, requested: int | None) -> int:
    if requested is not None:
        return max(1, min(requested, MAX_REQUESTS))
    expected = min(level / latency_s, EXPECTED_CEILING_RPS)
    return max(MIN_REQUESTS, min(MAX_REQUESTS, math.ceil(SECONDS_PER_LEVEL * expected)))


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed batch of one system at one concurrency."""

    system: str
    concurrency: int
    requests: int
    seconds: float
    judged_ok: int
    server_requests: int
    server_max_in_flight: int
    client_cpu_s: float
    server_cpu_s: float
    load_before: float
    load_after: float
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def client_cpu_ms(self) -> float:
        return 1000 * self.client_cpu_s / self.requests

    @property
    def server_cpu_ms(self) -> float:
        return 1000 * self.server_cpu_s / self.requests

    @property
    def client_cores(self) -> float:
        return self.client_cpu_s / self.seconds


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of a process, all its threads (clock-tick resolution)."""
    times = process.cpu_times()
    return times.user + times.system


class Server:
    """The fake server in its own process, plus its CPU clock."""

    def __init__(self, latency_s: float) -> None:
        self.fake = ProcessFakeOpenAI(latency_s=latency_s)
        self.latency_s = latency_s
        self.process = psutil.Process(self.fake._process.pid)

    def script(self, answer: str) -> None:
        """Forget earlier records (they pile up in the server's memory) and answer `answer`."""
        self.fake.reset()
        self.fake.set_default(reply(answer))

    def state(self) -> tuple[int, int]:
        """(requests received since the last reset, most requests in flight at once)."""
        summary = self.fake._summary()
        return len(summary["requests"]), summary["max_in_flight"]

    def close(self) -> None:
        self.fake.close()


class Clock:
    """Wall time, this process's CPU, the server's CPU and the load average around a batch."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> Self:
        self.load_before = os.getloadavg()[0]
        self.cpu, self.server_cpu = time.process_time(), cpu_seconds(self.server.process)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu = time.process_time() - self.cpu  # this process, all threads
        self.server_cpu = cpu_seconds(self.server.process) - self.server_cpu
        self.load_after = os.getloadavg()[0]

    def run(self, system: str, concurrency: int, requests: int, judged_ok: int, **extra: Any) -> Run:
        server_requests, max_in_flight = self.server.state()
        return Run(system, concurrency, requests, self.seconds, judged_ok, server_requests, max_in_flight,
                   self.cpu, self.server_cpu, self.load_before, self.load_after, **extra)


def new_judge(server: Server, cache: ResponseCache, concurrency: int) -> Any:
    config = LLMConfig(base_url=server.fake.base_url, model=MODEL, api_key=API_KEY,
                       max_concurrency=concurrency, timeout_s=30.0, max_retries=2)
    return registry.get(JUDGE_NAME, client=LLMClient(config, cache))


def failure_of(result: RewardResult) -> str | None:
    """None when the judge gave the scripted score, else what went wrong."""
    if not result.ok:
        return result.error or "sample error"
    if len(result.scores) != 1:
        return f"{len(result.scores)} scores for 1 response"
    score = result.scores[0]
    if score.error is not None:
        return score.error
    return None if score.score == JUDGE_SCORE else f"score {score.score}, scripted {JUDGE_SCORE}"


def judge_batch(server: Server, cache: ResponseCache, samples: Sequence[Sample], concurrency: int,
                system: str = "rmforge", profiler: cProfile.Profile | None = None) -> Run:
    """One timed `evaluate_batch` of the registered judge at this concurrency."""
    judge = new_judge(server, cache, concurrency)
    with Clock(server) as clock:
        if profiler is not None:
            profiler.enable()
        results = judge.evaluate_batch(samples, max_concurrency=concurrency)
        if profiler is not None:
            profiler.disable()
    failures = [reason for r in results if (reason := failure_of(r)) is not None]
    usage = judge.client.stats.snapshot().model_dump()
    return clock.run(system, concurrency, len(samples), len(samples) - len(failures),
                     failures=sorted({f[:200] for f in failures})[:10], extra={"usage": usage})


# --- floors: the same request bodies without rmforge --------------------------------------------


async def _replay(base_url: str, bodies: Sequence[dict], concurrency: int, transport: str) -> list[str]:
    import aiohttp
    import openai

    slots = asyncio.Semaphore(concurrency)
    if transport in ("sdk", "sdk_post"):
        limits_type = type(openai.DEFAULT_CONNECTION_LIMITS)  # httpx.Limits or httpx2.Limits
        http_module = importlib.import_module(limits_type.__module__.split(".")[0])
        limits = limits_type(max_connections=max(100, concurrency), max_keepalive_connections=max(20, concurrency))
        sdk = openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url, max_retries=0,
                                 http_client=openai.DefaultAioHttpClient(limits=limits))

        async def one(body: dict) -> str:
            async with slots:
                if transport == "sdk":
                    completion = await sdk.chat.completions.create(**body)
                    return completion.choices[0].message.content or ""
                raw = await sdk.post("/chat/completions", body=body, cast_to=http_module.Response)
                return json.loads(raw.content)["choices"][0]["message"]["content"] or ""

        try:
            return list(await asyncio.gather(*(one(b) for b in bodies)))
        finally:
            await sdk.close()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(100, concurrency)))
    url, headers = f"{base_url}/chat/completions", {"Authorization": f"Bearer {API_KEY}"}

    async def post(body: dict) -> str:
        async with slots, session.post(url, json=body, headers=headers) as response:
            return (await response.json())["choices"][0]["message"]["content"]

    try:
        return list(await asyncio.gather(*(post(b) for b in bodies)))
    finally:
        await session.close()


FLOOR_NAMES = {
    "sdk": "bare SDK create (aiohttp)",
    "sdk_post": "bare SDK post, raw response",
    "aiohttp": "plain aiohttp",
}


def floor_batch(server: Server, bodies: Sequence[dict], concurrency: int, transport: str) -> Run:
    server.script(JUDGE_ANSWER)
    with Clock(server) as clock:
        answers = asyncio.run(_replay(server.fake.base_url, bodies, concurrency, transport))
    ok = sum(1 for a in answers if a == JUDGE_ANSWER)
    return clock.run(FLOOR_NAMES[transport], concurrency, len(bodies), ok)


# --- rm-gallery --------------------------------------------------------------------------------


def peer_batch(server: Server, rows: Sequence[dict], max_workers: int) -> Run:
    """rm-gallery's evaluate_batch in its own venv; its log/ folder lands in a temp dir."""
    if not PEER_PYTHON.exists():
        raise SystemExit(
            f"no rm-gallery venv at {PEER_PYTHON}: run bench/setup_rm_gallery_venv.sh (or --skip-peer)")
    server.script(PEER_ANSWER)
    tag = max_workers or "default"
    rows_path = OUT_DIR / "llm_throughput_peer_rows.jsonl"
    out_path = OUT_DIR / f"llm_throughput_peer_{tag}.json"
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    command = [str(PEER_PYTHON), str(PEER_SCRIPT), "--input", str(rows_path), "--output", str(out_path),
               "--base-url", server.fake.base_url, "--model", MODEL, "--expected-score", repr(PEER_SCORE),
               "--max-workers", str(max_workers)]
    env = {**os.environ, "OPENAI_API_KEY": API_KEY}
    log_path = OUT_DIR / f"llm_throughput_peer_{tag}.log"
    with tempfile.TemporaryDirectory() as scratch, log_path.open("w") as log, Clock(server) as clock:
        done = subprocess.run(command, cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT,
                              check=False)
    if done.returncode != 0:
        raise SystemExit(f"rm-gallery peer failed (exit {done.returncode}); see {log_path}")
    peer = json.loads(out_path.read_text())
    server_requests, max_in_flight = server.state()
    # The peer timed its own evaluate_batch (its imports take seconds); the server's CPU is for the
    # whole subprocess, i.e. exactly the batch's requests.
    return Run(f"rm-gallery {peer['rm_gallery_version']}", peer["max_workers"], peer["requests"],
               peer["seconds"], peer["judged_ok"], server_requests, max_in_flight, peer["cpu_seconds"],
               clock.server_cpu, clock.load_before, clock.load_after, failures=peer["failure_reasons"],
               extra={"openai_version": peer["openai_version"], "reward": peer["reward"],
                      "log": str(log_path)})


# --- the cached re-run and the profile ---------------------------------------------------------


def cached_rerun(server: Server, cache_path: Path, samples: Sequence[Sample], concurrency: int) -> Run:
    """Every sample again through a new client and a reopened cache: not one request may be sent."""
    before, _ = server.state()
    reopened = ResponseCache(cache_path)
    run = judge_batch(server, reopened, samples, concurrency, system="rmforge, cached re-run")
    after, _ = server.state()
    run.extra.update(server_requests_before=before, server_requests_after=after)
    run.server_requests = after - before
    run.server_max_in_flight = 0  # the server's figure is from the last level: nothing was in flight here
    return run


# Where the judge path's CPU time goes (the event loop's thread), by (file suffix, function name)
# as cProfile records them. Coroutines are charged while they run, not while they wait.
PROFILE_PARTS: tuple[tuple[str, str, str], ...] = (
    ("rm_rewards/llm/client.py", "chat", "LLMClient.chat, all of it"),
    ("rm_rewards/llm/transport.py", "post", "  HTTP: aiohttp post and read (transport.post)"),
    ("rm_rewards/llm/wire.py", "wire_json", "  request body to JSON"),
    ("rm_rewards/llm/wire.py", "read_completion", "  answer JSON to a completion"),
    ("rm_rewards/llm/cache.py", "request_key", "  cache key (canonical JSON + sha256)"),
    ("rm_rewards/llm/cache.py", "aget", "  cache read"),
    ("rm_rewards/llm/cache.py", "aput", "  cache write"),
    ("rm_rewards/llm/structured.py", "parse_model", "  answer parsing into the output model"),
    ("pydantic/main.py", "model_json_schema", "output model JSON schema (0 once memoised)"),
    ("openai/resources/chat/completions/completions.py", "create", "SDK chat.completions.create (0: not used)"),
    ("rm_rewards/judging/templates.py", "render_prompt", "prompt building"),
)


def profile_parts(stats: pstats.Stats, total: float) -> list[str]:
    """Cumulative seconds and share of the batch for each part in PROFILE_PARTS."""
    lines = []
    for suffix, name, label in PROFILE_PARTS:
        seconds = sum(row[3] for (path, _, func), row in stats.stats.items()  # type: ignore[attr-defined]
                      if func == name and path.endswith(suffix))
        lines.append(f"  {label:50s} {seconds:7.2f} s  {seconds / total:5.1%}")
    return lines


def profile_batch(server: Server, cache: ResponseCache, samples: Sequence[Sample], concurrency: int) -> str:
    """Where one cProfile'd batch spends its CPU time (the event loop's thread only), by part of
    the path, then the top functions."""
    profiler = cProfile.Profile(time.thread_time)
    run = judge_batch(server, cache, samples, concurrency, profiler=profiler)
    path = OUT_DIR / f"llm_throughput_c{concurrency}.prof"
    profiler.dump_stats(path)
    stats = pstats.Stats(profiler)
    total = sum(row[3] for (p, _, func), row in stats.stats.items()  # type: ignore[attr-defined]
                if func == "evaluate_batch" and p.endswith("rm_rewards/core/kinds.py"))
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(15)
    head = (f"profile at c={concurrency}: {run.requests} requests, {run.rate:,.0f} req/s under the profiler "
            f"({run.client_cpu_ms:.2f} CPU ms/req); evaluate_batch {total:.2f} CPU s on the loop's thread, "
            f"{1000 * total / run.requests:.3f} ms per request; saved to {path}")
    return "\n".join([head, *profile_parts(pstats.Stats(str(path)), total), text.getvalue()])


# --- the report --------------------------------------------------------------------------------


def limit_of(run: Run, latency_s: float) -> float:
    return run.concurrency / latency_s


def table(runs: Sequence[Run], latency_s: float) -> str:
    lines = [
        ("| system | concurrency | requests | seconds | req/s | limit | % of limit | client CPU ms/req "
         "| 1-core ceiling req/s | client cores | server CPU ms/req | max in flight | judged ok |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        limit = limit_of(run, latency_s)
        ceiling = f"{1000 / run.client_cpu_ms:,.0f}" if run.client_cpu_ms > 0 else "—"
        # A cached re-run sends nothing, so the server's latency does not bound it.
        share = "—" if run.server_requests == 0 else f"{run.rate / limit:.0%}"
        lines.append(
            f"| {run.system} | {run.concurrency} | {run.requests:,} | {run.seconds:.2f} | {run.rate:,.0f} "
            f"| {limit:,.0f} | {share} | {run.client_cpu_ms:.2f} | {ceiling} "
            f"| {run.client_cores:.2f} | {run.server_cpu_ms:.2f} | {run.server_max_in_flight} "
            f"| {run.judged_ok:,}/{run.requests:,} |"
        )
    return "\n".join(lines)


def targets(mine: dict[int, Run], peer: Run | None, latency_s: float) -> list[str]:
    lines = []
    for level, fraction in TARGET_FRACTION.items():
        if level in mine:
            got = mine[level].rate / (level / latency_s)
            lines.append(f"target c={level}: >= {fraction:.0%} of the limit; got {got:.0%} "
                         f"({mine[level].rate:,.0f} req/s): {'met' if got >= fraction else 'MISSED'}")
    for level, rate in TARGET_RATE.items():
        if level in mine:
            got = mine[level].rate
            verdict = "met" if got >= rate else "MISSED"
            lines.append(f"target c={level}: >= {rate:,.0f} req/s; got {got:,.0f}: {verdict}")
    if peer is not None:
        for level, run in sorted(mine.items()):
            ratio = run.rate / peer.rate
            note = " (both systems at their defaults)" if level == RMFORGE_DEFAULT_CONCURRENCY else ""
            verdict = "met" if ratio >= TARGET_PEER_RATIO else "MISSED"
            lines.append(f"rmforge c={level} / {peer.system} (max_workers={peer.concurrency}): "
                         f"{ratio:.1f}x{note}; target >= {TARGET_PEER_RATIO:.0f}x: {verdict}")
    return lines


def problems(runs: Sequence[Run], cached: Run | None) -> list[str]:
    """What makes the run invalid: a wrong or missing verdict, or a request count off."""
    out = []
    for run in runs:
        if run.judged_ok != run.requests:
            out.append(f"{run.system} c={run.concurrency}: {run.requests - run.judged_ok} samples not judged "
                       f"as scripted: {run.failures[:3]}")
        if not run.system.endswith("cached re-run") and run.server_requests != run.requests:
            out.append(f"{run.system} c={run.concurrency}: server saw {run.server_requests} requests "
                       f"for {run.requests} samples")
    if cached is not None and cached.server_requests != 0:
        out.append(f"cached re-run sent {cached.server_requests} requests; expected 0")
    return out


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"
    return (f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}, git {commit}, "
            f"gc thresholds {gc.get_threshold()}")


# --- main --------------------------------------------------------------------------------------


def parse_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"levels must be positive integers, got {text!r}")
    return levels


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=parse_levels, default=[1, 16, 64, 256],
                        help="concurrency levels (default 1,16,64,256)")
    parser.add_argument("--requests", type=int, default=None,
                        help=f"requests per level (default: ~{SECONDS_PER_LEVEL:g} s at the expected rate; "
                             f"at most {MAX_REQUESTS:,})")
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (default 0.1)")
    parser.add_argument("--skip-peer", action="store_true", help="do not run rm-gallery")
    parser.add_argument("--peer-requests", type=int, default=DEFAULT_PEER_REQUESTS)
    parser.add_argument("--peer-workers", default="0",
                        help="rm-gallery max_workers values, 0 = its default (e.g. 0,64)")
    parser.add_argument("--floors", action="store_true",
                        help="also replay each level's request bodies through the bare SDK and plain aiohttp")
    parser.add_argument("--profile", type=int, default=None, metavar="C",
                        help="add a cProfile'd batch at concurrency C and print its top functions")
    parser.add_argument("--gc-threshold0", type=int, default=None, metavar="N",
                        help="set the cyclic GC's generation-0 threshold for the whole run (default 700)")
    return parser.parse_args(argv)


def measure_rmforge(args: argparse.Namespace, server: Server, pairs: list, cache_dir: Path) -> dict[str, Any]:
    cache_path = cache_dir / "responses.sqlite"
    cache = ResponseCache(cache_path)
    runs, floors, mine, all_samples, start = [], [], {}, [], 0
    for level in args.levels:
        count = requests_for(level, args.latency, args.requests)
        samples = [to_sample(row) for row in workload_rows(pairs, start, count)]
        start += count
        all_samples += samples
        server.script(JUDGE_ANSWER)
        mine[level] = run = judge_batch(server, cache, samples, level)
        runs.append(run)
        print(f"  rmforge c={level}: {run.rate:,.0f} req/s, {run.client_cpu_ms:.2f} CPU ms/req, "
              f"load {run.load_after:.1f}", flush=True)
        if args.floors:
            bodies = server.fake.bodies
            for transport in FLOOR_NAMES:
                floors.append(floor_batch(server, bodies, level, transport))
                print(f"    {floors[-1].system}: {floors[-1].rate:,.0f} req/s, "
                      f"{floors[-1].client_cpu_ms:.2f} CPU ms/req", flush=True)
    # No reset here: the count the server holds now must be the count it holds afterwards.
    cached = cached_rerun(server, cache_path, all_samples, max(args.levels))
    print(f"  cached re-run of {cached.requests:,} samples at c={cached.concurrency}: "
          f"{cached.rate:,.0f} samples/s, server requests {cached.extra['server_requests_before']} before, "
          f"{cached.extra['server_requests_after']} after", flush=True)
    profile = None
    if args.profile:
        server.script(JUDGE_ANSWER)
        count = requests_for(args.profile, args.latency, args.requests)
        samples = [to_sample(row) for row in workload_rows(pairs, start, count)]
        profile = profile_batch(server, cache, samples, args.profile)
    return {"mine": mine, "runs": runs, "floors": floors, "cached": cached, "profile": profile,
            "cache_rows": len(cache)}


def run_peers(
    args: argparse.Namespace, server: Server, pairs: list
) -> tuple[list[Run], Run | None]:
    """rm-gallery at each `--peer-workers` value; returns every run and the one at its default."""
    peers, default_peer = [], None
    rows = workload_rows(pairs, 0, args.peer_requests)
    for workers in (int(w) for w in args.peer_workers.split(",") if w.strip()):
        peers.append(peer_batch(server, rows, workers))
        if workers == 0:
            default_peer = peers[-1]
        print(f"  {peers[-1].system} max_workers={peers[-1].concurrency}: {peers[-1].rate:,.0f} req/s",
              flush=True)
    return peers, default_peer


def report(
    args: argparse.Namespace, measured: dict[str, Any], peers: list[Run], default_peer: Run | None
) -> str:
    cached: Run = measured["cached"]
    usage = cached.extra["usage"]
    legend = (
        f"latency {args.latency * 1000:g} ms; limit = concurrency / latency; 1-core ceiling = 1000 / client "
        "CPU ms per request; client cores = client CPU s / wall s (near 1 while the rate is short of the "
        "limit: the client is CPU-bound on its one event-loop thread)"
    )
    cache_line = (
        f"cached re-run: server request count {cached.extra['server_requests_before']:,} before, "
        f"{cached.extra['server_requests_after']:,} after ({cached.server_requests} sent); "
        f"{usage['cache_hits']:,} cache hits of {usage['calls']:,} calls; "
        f"{measured['cache_rows']:,} cache rows"
    )
    lines = [
        legend,
        "",
        table(measured["runs"] + measured["floors"] + [cached] + peers, args.latency),
        "",
        *targets(measured["mine"], default_peer, args.latency),
        cache_line,
    ]
    if measured["profile"]:
        lines += ["", measured["profile"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.gc_threshold0 is not None:
        gc.set_threshold(args.gc_threshold0, *gc.get_threshold()[1:])
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"conditions at start: {conditions()}", flush=True)
    pairs = load_gsm8k()
    server = Server(args.latency)
    peers, default_peer = [], None
    try:
        with tempfile.TemporaryDirectory(prefix="llm_throughput_cache_") as cache_dir:
            measured = measure_rmforge(args, server, pairs, Path(cache_dir))
        if not args.skip_peer:
            peers, default_peer = run_peers(args, server, pairs)
    finally:
        server.close()
    end_conditions = conditions()
    print(f"conditions at end: {end_conditions}\n")
    print(report(args, measured, peers, default_peer))
    cached = measured["cached"]
    trouble = problems(measured["runs"] + measured["floors"] + peers, cached)
    for line in trouble:
        print(f"INVALID: {line}")
    runs = measured["runs"] + measured["floors"] + [cached] + peers
    dump = {"args": vars(args), "conditions_end": end_conditions,
            "runs": [asdict(r) | {"rate": r.rate} for r in runs], "problems": trouble}
    (OUT_DIR / "llm_throughput.json").write_text(json.dumps(dump, indent=2))
    return 1 if trouble else 0


if __name__ == "__main__":
    sys.exit(main())
