"""`rmforge serve`: the promoted model (or `--model KEY`) behind an HTTP API on Ray Serve.

    rmforge serve                               # the model served_model promoted
    rmforge serve --model checkpoint:<run>      # a trained checkpoint
    rmforge serve --model reward:<rule>         # a registry rule reward

Local Ray by default; the cluster at RMFORGE_RAY_ADDRESS when set. RMFORGE_SERVE_API_KEY, when
set, is required on every request but /health. Stops on Ctrl-C (or SIGTERM). Exit 2: nothing to
serve (nothing promoted, an unknown checkpoint, an unsupported key).
"""

from __future__ import annotations

import argparse
import sys


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="serve the promoted reward model (or --model) over HTTP on Ray Serve",
        description="POST /v1/rewards (rmforge samples), POST /get_reward (OpenRLHF's remote RM protocol), "
        "GET /health, GET /v1/models.",
    )
    parser.add_argument("--model", help="checkpoint:<run> or reward:<rule> (default: what served_model promoted)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch-size", type=int, default=32, help="requests per dynamic batch")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="how long a batch waits to fill")
    parser.add_argument("--score-batch-size", type=int, default=32, help="texts per forward pass")
    parser.add_argument("--replicas", type=int, default=1, help="fixed number of replicas")
    parser.add_argument("--min-replicas", type=int, help="autoscaling lower bound (with --max-replicas)")
    parser.add_argument("--max-replicas", type=int, help="autoscale between --min-replicas and this")
    parser.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024)
    parser.set_defaults(handler=run_serve)
    return parser


def settings_from_args(args: argparse.Namespace):
    from rm_resources.serving.app import ServeSettings

    return ServeSettings(
        host=args.host, port=args.port, max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_ms / 1000, score_batch_size=args.score_batch_size,
        num_replicas=args.replicas, min_replicas=args.min_replicas, max_replicas=args.max_replicas,
        max_request_bytes=args.max_request_bytes,
    )


def run_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from dagster_project.cli import SIGNAL_POLL_S
    from dagster_project.settings import load_settings
    from rm_resources.serving import app
    from rm_resources.serving.scorers import resolve_model
    from rm_resources.store import Store

    try:
        project = load_settings()
        settings = settings_from_args(args)
        spec = resolve_model(args.model, Store(project.effective_database()))
    except ValueError as exc:
        print(f"rmforge serve: {exc}", file=sys.stderr)
        return 2
    stop, why = threading.Event(), None
    try:
        # The replicas read RMFORGE_SERVE_API_KEY from their own environment (never an argument).
        # A SIGTERM or Ctrl-C while it starts raises KeyboardInterrupt (the CLI's handlers, which
        # Ray's start-up keeps: training.ray_local); once it serves, SIGTERM sets `stop`.
        url = app.start(spec, settings, address=project.ray_address)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        where = project.ray_address or "local Ray"
        key = "required (RMFORGE_SERVE_API_KEY)" if project.serve_api_key is not None else "none"
        print(f"serving {spec.model_key} (version {spec.version}) at {url} on {where}; API key: {key}", flush=True)
        print(f"  curl {url}/health    Ctrl-C stops", flush=True)
        # A timed wait: a signal the kernel hands to one of Ray's threads runs its Python handler
        # only when the main thread next runs Python code; an untimed wait never would.
        while not stop.wait(SIGNAL_POLL_S):
            pass
        why = "stopped by SIGTERM"
    except KeyboardInterrupt as interrupt:
        why = str(interrupt) or "interrupted"
    finally:
        if why:  # a stop asked for (another exception speaks for itself)
            print(f"rmforge serve: {why}; shutting down Serve and Ray ...", file=sys.stderr, flush=True)
        app.stop()
    return 0
