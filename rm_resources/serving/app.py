"""The Ray Serve application: one deployment, FastAPI routes, dynamic batching across callers.

    GET  /health        {"status": "ok", "model", "version", "kind", "stats"}   (no API key needed)
    GET  /v1/models     {"data": [{"id", "version", "kind", "owned_by"}]}
    POST /v1/rewards    rmforge samples → one score per response (see `protocol`)
    POST /get_reward    OpenRLHF's remote reward-model protocol

The scorer loads once per replica. Requests from all callers are queued into `serve.batch`
(max batch size and wait from `ServeSettings`); the batch is scored in a worker thread so the
replica keeps accepting requests meanwhile. Bad input is answered 4xx with the field before it
reaches a batch; a request whose scoring fails gets a 500 of its own and its batch-mates their
scores. The API key (RMFORGE_SERVE_API_KEY) is read from the replica's environment, never from
Serve config, so it appears in no deployment config, log or response.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations as
# objects, and `Request` is imported inside build_app.
import os
from typing import Any

from pydantic import BaseModel, Field

from rm_resources.serving.protocol import API_KEY_ENV
from rm_resources.serving.scorers import ModelSpec

APP_NAME = "rmforge"


class ServeSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_batch_size: int = Field(32, ge=1)  # requests per dynamic batch
    batch_wait_timeout_s: float = Field(0.005, ge=0.0)  # how long a batch waits to fill
    score_batch_size: int = Field(32, ge=1)  # texts per forward pass
    num_replicas: int = Field(1, ge=1)
    min_replicas: int | None = Field(None, ge=0)  # with max_replicas: autoscaling instead of num_replicas
    max_replicas: int | None = Field(None, ge=1)
    target_ongoing_requests: float = Field(16.0, gt=0)
    max_ongoing_requests: int = Field(256, ge=1)
    num_cpus: float = Field(1.0, ge=0)  # Ray CPUs reserved per replica
    # torch intra-op threads per replica (None: as Ray sets OMP_NUM_THREADS, i.e. the replica's
    # num_cpus). More threads than free cores spin: bench/RESULTS.md, "Serving a checkpoint".
    torch_threads: int | None = Field(None, ge=1)
    max_request_bytes: int = Field(4 * 1024 * 1024, ge=1)
    max_samples: int = Field(1024, ge=1)
    access_log: bool = True  # Serve's one log line per request (proxy and replica log files)

    def deployment_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus},
            "logging_config": self.logging_config(),
        }
        if self.max_replicas is not None:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas or 1, "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            options["num_replicas"] = self.num_replicas
        return options

    def logging_config(self) -> dict[str, Any]:
        return {"enable_access_log": self.access_log}


def build_app(spec: ModelSpec, settings: ServeSettings):
    """The Serve application for `spec` (not started)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from ray import serve

    api = FastAPI(title="rmforge rewards")

    @serve.deployment(name="RewardServer", **settings.deployment_options())
    @serve.ingress(api)
    class RewardServer:
        def __init__(self, spec: ModelSpec, settings: ServeSettings):
            from rm_resources.serving.scorers import load_scorer

            self.spec, self.settings = spec, settings
            if settings.torch_threads is not None and spec.kind == "checkpoint":
                import torch

                torch.set_num_threads(settings.torch_threads)
            self.scorer = load_scorer(spec, settings.score_batch_size)
            self._api_key = os.environ.get(API_KEY_ENV) or None
            self.score_batch.set_max_batch_size(settings.max_batch_size)
            self.score_batch.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)
            self.stats = {"requests": 0, "batches": 0, "largest_batch": 0, "failed_requests": 0}

        @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
        async def score_batch(self, jobs: list) -> list:
            import asyncio

            from rm_resources.serving.scorers import isolated

            self.stats["batches"] += 1
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(jobs))
            try:
                return await asyncio.to_thread(isolated, self.scorer, list(jobs))
            except Exception as exc:  # a lone job that failed: its own error, not the replica's
                return [exc]

        async def _score(self, request: Request, parse) -> Any:
            """Authorize, read, validate, score: a RequestError or a scoring failure is a response."""
            from rm_resources.serving.protocol import RequestError, check_api_key, parse_json

            try:
                check_api_key(self._api_key, request.headers)
                length = request.headers.get("content-length")
                if length and length.isdigit() and int(length) > self.settings.max_request_bytes:
                    raise RequestError(413, "body", f"payload of {length} bytes is over the limit of "
                                       f"{self.settings.max_request_bytes}")
                job = parse(parse_json(await request.body(), self.settings.max_request_bytes))
            except RequestError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            self.stats["requests"] += 1
            result = await self.score_batch(job)
            if isinstance(result, Exception):
                self.stats["failed_requests"] += 1
                message = f"scoring failed: {type(result).__name__}: {result}"[:500]
                return JSONResponse({"error": {"field": "samples", "message": message}}, status_code=500)
            return job, result

        @api.get("/health")
        async def health(self) -> dict:
            return {"status": "ok", "model": self.spec.model_key, "version": self.spec.version,
                    "kind": self.spec.kind, "stats": dict(self.stats)}

        @api.get("/v1/models")
        async def models(self, request: Request):
            from rm_resources.serving.protocol import RequestError, check_api_key

            try:
                check_api_key(self._api_key, request.headers)
            except RequestError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            return {"object": "list", "data": [{"id": self.spec.model_key, "object": "model", "owned_by": "rmforge",
                                                "version": self.spec.version, "kind": self.spec.kind}]}

        @api.post("/v1/rewards")
        async def rewards(self, request: Request):
            from rm_resources.serving.protocol import parse_reward_request

            scored = await self._score(request, lambda data: parse_reward_request(
                data, served=self.spec.model_key, max_samples=self.settings.max_samples))
            if not isinstance(scored, tuple):
                return scored
            job, result = scored
            return {"model": self.spec.model_key, "version": self.spec.version, "results": [
                {"id": sample.id, "scores": scores, "errors": errors}
                for sample, scores, errors in zip(job.samples, result.scores, result.errors)]}

        @api.post("/get_reward")
        async def get_reward(self, request: Request):
            from rm_resources.serving.protocol import parse_openrlhf_request

            scored = await self._score(request, lambda data: parse_openrlhf_request(
                data, max_samples=self.settings.max_samples))
            if not isinstance(scored, tuple):
                return scored
            _, result = scored
            rewards = [scores[0] for scores in result.scores]
            return {"rewards": rewards, "scores": rewards, "model": self.spec.model_key,
                    "version": self.spec.version}

    return RewardServer.bind(spec, settings)


def start(spec: ModelSpec, settings: ServeSettings, *, address: str | None = None) -> str:
    """Start Ray (`address`: that cluster, from the RMFORGE_RAY_ADDRESS setting; else a small local
    Ray), Serve on host:port, and the application; returns its base URL once the replicas are up."""
    import logging

    from ray import serve

    from training.ray_local import init_ray

    # Importing ray.serve gives the driver's "ray.serve" logger an INFO console handler; its start-up
    # lines ("Started Serve", "is ready at") would repeat what `rmforge serve` prints itself.
    logging.getLogger("ray.serve").setLevel(logging.ERROR)
    # Ray's own notices ("Started Serve", "is ready at") are not the user's console. A SIGTERM from
    # here on still reaches `rmforge serve`'s handler: init_ray keeps it (see training.ray_local).
    init_ray(address, num_cpus=2, logging_level=logging.ERROR)
    serve.start(http_options={"host": settings.host, "port": settings.port},
                logging_config=settings.logging_config())
    serve.run(build_app(spec, settings), name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{settings.host}:{settings.port}"


# Seconds `stop` waits for Serve to shut its deployments down before shutting Ray down anyway.
SHUTDOWN_TIMEOUT_S = 15.0


def stop() -> None:
    """Shut Serve and Ray down (what `start` started)."""
    import ray
    from ray import serve

    if ray.is_initialized():
        import threading

        # A signal to the whole process group reaches Serve's controller too; serve.shutdown() then
        # waits on an actor that is gone. Give it a bounded time, then take Ray down regardless.
        stopping = threading.Thread(target=serve.shutdown, name="serve-shutdown", daemon=True)
        stopping.start()
        stopping.join(SHUTDOWN_TIMEOUT_S)
        ray.shutdown()
