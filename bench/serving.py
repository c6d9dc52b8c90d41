"""Serving a reward checkpoint: rmforge's Ray Serve app vs a naive FastAPI server, same checkpoint.

    .venv/bin/python bench/serving.py [--quick] [--levels 1,8,64] [--requests 1:200,8:800,64:2000]
                                      [--max-batch-size 32] [--batch-wait-ms 5] [--replicas 1]
                                      [--num-cpus 1] [--torch-threads N] [--rule length_penalty]
                                      [--rule-requests 6000] [--checkpoint DIR]

Servers, each in its own process (started and stopped by this script, one at a time):

- rmforge: `rm_resources.serving.app.start` (what `rmforge serve --model checkpoint:...` runs):
  local Ray, the Serve HTTP proxy, one deployment with `serve.batch` dynamic batching; the knobs
  above are `ServeSettings` fields.
- baseline: the shape of OpenRLHF's `openrlhf/cli/serve_rm.py`: one FastAPI app under uvicorn
  (one worker), `POST /get_reward` scores the request's queries as it arrives with transformers
  (`AutoModelForSequenceClassification`, tokenizer padding/truncation as OpenRLHF's tokenize_fn),
  synchronously inside the async handler, so requests are scored one at a time, never batched
  across callers. Its access log and per-request result log are off (OpenRLHF logs every result
  at INFO): the baseline is not slowed by logging.
- rule (after the two): the rmforge app serving `reward:<rule>` at c=64.

Load: this process drives each server with closed-loop aiohttp clients, `c` of them, each sending
its next request as soon as its last one is answered, a fixed number of requests per level (after
a warm-up of 2*c untimed requests). Every request is one (prompt, response) through OpenRLHF's
protocol `{"query": [text]}` (the text rendered with the training template), the same bytes to
both servers, taken in turn from the bundled HH-RLHF helpful samples. Every answer is checked
against the offline score of its text (`training.bt_scoring.score_texts`, abs 1e-4): both servers
do the same, correct work. CPU per request is the server's whole process tree (uvicorn; or Ray's
GCS, raylet, Serve controller, proxy and replica workers) between the level's start and end, from
psutil; the client's own CPU is reported apart.

Checkpoint: `--checkpoint DIR`, else the newest `data/checkpoints/*/final` (what `make run`
trains), else the bundled all-MiniLM-L6-v2 backbone with a fresh seeded one-output head, set up
as the trainer starts (`training.bt_trainer.load_model_and_tokenizer`, max length 128), saved to
bench/out/serving-checkpoint. Scores are noise then; the speed is the point.
"""

# No `from __future__ import annotations`: FastAPI reads the baseline route's annotations as objects.

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.measure import process_tree_cpu_s  # noqa: E402

OUT = REPO_ROOT / "bench" / "out"
MAX_LENGTH = 128  # the trainer's default max length (and make run's)


# --- the checkpoint and the workload --------------------------------------------------------------


def find_or_make_checkpoint(explicit: str | None) -> tuple[str, str]:
    """(path, where it came from)."""
    if explicit:
        return explicit, "given with --checkpoint"
    trained = sorted((REPO_ROOT / "data" / "checkpoints").glob("*/final/config.json"), key=lambda p: p.stat().st_mtime)
    if trained:
        return str(trained[-1].parent), "newest trained checkpoint under data/"
    target = OUT / "serving-checkpoint"
    if not (target / "config.json").exists():
        import torch

        from training.bt_trainer import load_model_and_tokenizer
        from training.config import default_backbone_path

        torch.manual_seed(0)  # the fresh score head
        model, tokenizer = load_model_and_tokenizer(default_backbone_path(), MAX_LENGTH)
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
    return str(target), "all-MiniLM-L6-v2 + seeded fresh head (no trained checkpoint under data/)"


def workload_texts(n: int) -> list[str]:
    """Distinct rendered (prompt, response) texts from the bundled HH-RLHF helpful samples."""
    from rm_resources.datasets import DatasetSourceResource
    from rm_rewards.datasets.convert import convert_rows
    from training.data import render_text

    source = DatasetSourceResource(mode="bundled")
    samples = convert_rows("hh_rlhf_helpful", source.load_rows("hh_rlhf_helpful")).samples
    texts = list(dict.fromkeys(render_text(s.input, r.text) for s in samples for r in s.responses))
    return texts[:n]


# --- the servers (each runs in a child process: `--serve KIND`) -----------------------------------


def serve_rmforge(args: argparse.Namespace) -> None:
    from rm_resources.serving import app
    from rm_resources.serving.scorers import ModelSpec, resolve_model

    if args.serve == "rule":
        spec = resolve_model(f"reward:{args.rule}", store=None)
    else:
        spec = ModelSpec("checkpoint:bench", "checkpoint", version="bench", path=args.checkpoint)
    settings = app.ServeSettings(
        port=args.port, max_batch_size=args.max_batch_size, batch_wait_timeout_s=args.batch_wait_ms / 1000,
        num_replicas=args.replicas, num_cpus=args.num_cpus, torch_threads=args.torch_threads,
        max_ongoing_requests=max(256, 2 * max(args.level_list)), access_log=not args.no_access_log,
    )
    stop = threading.Event()
    try:
        app.start(spec, settings)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # after ray.init, which sets its own
        print("READY", flush=True)
        stop.wait()
    finally:
        app.stop()


def serve_baseline(args: argparse.Namespace) -> None:
    import torch
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    model = AutoModelForSequenceClassification.from_pretrained(args.checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    limit = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    api = FastAPI()

    def get_rewards(queries: list[str]) -> list[float]:
        with torch.no_grad():
            batch = tokenizer(queries, return_tensors="pt", max_length=limit, padding=True, truncation=True)
            return model(**batch).logits[:, 0].float().tolist()

    @api.post("/get_reward")
    async def get_reward(request: Request):
        data = await request.json()
        return JSONResponse({"rewards": get_rewards(data.get("query"))})  # blocks the loop, as OpenRLHF's

    @api.get("/health")
    async def health():
        return {"status": "ok", "threads": torch.get_num_threads()}

    uvicorn.run(api, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, workers=1)


# --- the load ---------------------------------------------------------------------------------------


async def closed_loop(url: str, bodies: list[bytes], expected: list[float] | None, concurrency: int,
                      n_requests: int, offset: int) -> tuple[float, list[float], int]:
    """(wall s, latencies s, wrong answers): `concurrency` clients, `n_requests` requests in all."""
    import aiohttp

    latencies: list[float] = []
    wrong = 0
    next_index = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, wrong
        while next_index < n_requests:
            i = (offset + next_index) % len(bodies)
            next_index += 1
            started = time.perf_counter()
            async with session.post(url, data=bodies[i], headers={"Content-Type": "application/json"}) as answer:
                payload = await answer.read()
                status = answer.status
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"{url} answered {status}: {payload[:300]!r}")
            if expected is not None:
                reward = json.loads(payload)["rewards"][0]
                wrong += abs(reward - expected[i]) > 1e-4

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, wrong


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Server:
    """A server child process: `--serve KIND` of this script, ready once /health answers."""

    def __init__(self, kind: str, args: argparse.Namespace, port: int):
        self.kind, self.port = kind, port
        command = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--checkpoint", args.checkpoint,
                   "--max-batch-size", str(args.max_batch_size), "--batch-wait-ms", str(args.batch_wait_ms),
                   "--replicas", str(args.replicas), "--num-cpus", str(args.num_cpus), "--rule", args.rule,
                   "--levels", args.levels]
        if args.torch_threads:
            command += ["--torch-threads", str(args.torch_threads)]
        if args.no_access_log:
            command.append("--no-access-log")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
        self.log = open(OUT / f"serving-{kind}.log", "w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        self._wait_ready()
        self.start_s = time.perf_counter() - self.started

    def _wait_ready(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.kind} server not ready after {timeout_s:.0f} s; see {self.log.name}")

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/health", timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(server: Server, bodies: list[bytes], expected: list[float] | None, levels: list[int],
            requests: dict[int, int]) -> list[dict]:
    rows, offset = [], 0
    for c in levels:
        asyncio.run(closed_loop(f"{server.url}/get_reward", bodies, expected, c, 2 * c, offset))  # warm-up
        offset += 2 * c
        n = requests[c]
        server_cpu, client_cpu = process_tree_cpu_s(server.process.pid), time.process_time()
        load = os.getloadavg()[0]
        wall, latencies, wrong = asyncio.run(closed_loop(f"{server.url}/get_reward", bodies, expected, c, n, offset))
        server_cpu, client_cpu = process_tree_cpu_s(server.process.pid) - server_cpu, time.process_time() - client_cpu
        offset += n
        if wrong:
            raise RuntimeError(f"{server.kind} c={c}: {wrong} of {n} rewards differ from the offline scores")
        row = {"server": server.kind, "c": c, "requests": n, "wall_s": wall, "rps": n / wall,
               "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * percentile(latencies, 0.99),
               "server_cpu_ms": 1000 * server_cpu / n, "client_cpu_ms": 1000 * client_cpu / n,
               "server_cores": server_cpu / wall, "load": load}
        rows.append(row)
        print(f"  {server.kind:>8} c={c:<3} {row['rps']:8.1f} req/s  p50 {row['p50_ms']:7.1f} ms  "
              f"p99 {row['p99_ms']:7.1f} ms  server CPU {row['server_cpu_ms']:6.2f} ms/req "
              f"({row['server_cores']:.2f} cores)  client {row['client_cpu_ms']:.2f} ms/req  load {load:.2f}",
              flush=True)
    return rows


def table(rows: list[dict], baseline: dict[int, dict]) -> str:
    lines = ["| server | c | requests | req/s | p50 ms | p99 ms | server CPU ms/req | server cores | "
             "client CPU ms/req | req/s vs baseline | p99 vs baseline | CPU/req vs baseline |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        base = baseline.get(r["c"]) if r["server"] != "baseline" else None
        ratios = ["—"] * 3 if base is None else [f"{r['rps'] / base['rps']:.2f}x", f"{r['p99_ms'] / base['p99_ms']:.2f}x",
                                                 f"{r['server_cpu_ms'] / base['server_cpu_ms']:.2f}x"]
        lines.append(f"| {r['server']} | {r['c']} | {r['requests']:,} | {r['rps']:,.1f} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['server_cpu_ms']:.2f} | {r['server_cores']:.2f} | "
                     f"{r['client_cpu_ms']:.2f} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests per level")
    parser.add_argument("--levels", default="1,8,64")
    parser.add_argument("--requests", default="1:200,8:800,64:2000", help="requests per level, c:n pairs")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--num-cpus", type=float, default=1.0, help="Ray CPUs per replica")
    parser.add_argument("--torch-threads", type=int, help="torch threads, both servers (default: each one's own)")
    parser.add_argument("--no-access-log", action="store_true", help="Serve's per-request log lines off")
    parser.add_argument("--rule", default="length_penalty", help="the rule reward served at c=64 (empty: skip)")
    parser.add_argument("--rule-requests", type=int, default=6000)
    parser.add_argument("--skip", default="", help="servers to leave out, e.g. baseline")
    parser.add_argument("--checkpoint")
    parser.add_argument("--serve", choices=["rmforge", "baseline", "rule"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.level_list = [int(c) for c in args.levels.split(",")]

    if args.serve == "baseline":
        return serve_baseline(args)
    if args.serve:
        return serve_rmforge(args)

    requests = {int(c): int(n) for c, n in (pair.split(":") for pair in args.requests.split(","))}
    if args.quick:
        requests = {c: max(4 * c, 20) for c in args.level_list}
        args.rule_requests = min(args.rule_requests, 512)
    missing = [c for c in args.level_list if c not in requests]
    if missing:
        sys.exit(f"--requests has no count for levels {missing}")
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_before = os.getloadavg()
    args.checkpoint, origin = find_or_make_checkpoint(args.checkpoint)

    from training.bt_scoring import score_texts

    texts = workload_texts(512)
    expected = score_texts(args.checkpoint, texts, batch_size=32)
    bodies = [json.dumps({"query": [t]}).encode() for t in texts]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(f"checkpoint: {args.checkpoint} ({origin}); {len(texts)} distinct texts, "
          f"mean {statistics.mean(len(t) for t in texts):.0f} chars; {os.cpu_count()} CPUs; HEAD {commit}; "
          f"load average {' '.join(f'{v:.2f}' for v in load_before)}", flush=True)
    print(f"rmforge settings: max_batch_size={args.max_batch_size} batch_wait_ms={args.batch_wait_ms} "
          f"replicas={args.replicas} num_cpus={args.num_cpus} torch_threads={args.torch_threads} "
          f"access_log={not args.no_access_log}", flush=True)

    rows: list[dict] = []
    skip = set(filter(None, args.skip.split(",")))
    for kind in [k for k in ("baseline", "rmforge") if k not in skip]:
        server = Server(kind, args, free_port())
        try:
            print(f"{kind}: ready in {server.start_s:.1f} s", flush=True)
            rows += measure(server, bodies, expected, args.level_list, requests)
            if kind == "rmforge":
                stats = server.health()["stats"]
                print(f"  rmforge stats: {stats['requests']} requests in {stats['batches']} batches "
                      f"(mean {stats['requests'] / max(1, stats['batches']):.1f}), largest {stats['largest_batch']}")
        finally:
            server.stop()
    if args.rule and "rule" not in skip:
        server = Server("rule", args, free_port())
        try:
            print(f"rule reward:{args.rule}: ready in {server.start_s:.1f} s", flush=True)
            rule_bodies = [json.dumps({"query": [t.rsplit("Assistant: ", 1)[-1]]}).encode() for t in texts]
            rows += measure(server, rule_bodies, None, [64], {64: args.rule_requests})
        finally:
            server.stop()
    load_after = os.getloadavg()

    baseline = {r["c"]: r for r in rows if r["server"] == "baseline"}
    print()
    print(table(rows, baseline))
    print(f"\nload average at the start {' '.join(f'{v:.2f}' for v in load_before)}, "
          f"at the end {' '.join(f'{v:.2f}' for v in load_after)}")
    (OUT / "serving.json").write_text(json.dumps({"rows": rows, "commit": commit, "checkpoint": args.checkpoint,
                                                  "load_before": load_before, "load_after": load_after,
                                                  "argv": sys.argv[1:]}, indent=1))


if __name__ == "__main__":
    main()
