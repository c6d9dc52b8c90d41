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
    import os
    import signal
    import threading

    from rm_resources.serving import app
    from rm_resources.serving.protocol import API_KEY_ENV
    from rm_resources.serving.scorers import resolve_model
    from rm_resources.store import Store
    from rm_resources.warehouse import default_database

    try:
        settings = settings_from_args(args)
        spec = resolve_model(args.model, Store(default_database()))
    except ValueError as exc:
        print(f"rmforge serve: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    try:
        url = app.start(spec, settings)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # after ray.init, which sets its own
        where = os.environ.get("RMFORGE_RAY_ADDRESS") or "local Ray"
        key = "required (RMFORGE_SERVE_API_KEY)" if os.environ.get(API_KEY_ENV) else "none"
        print(f"serving {spec.model_key} (version {spec.version}) at {url} on {where}; API key: {key}", flush=True)
        print(f"  curl {url}/health    Ctrl-C stops", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
    return 0
