"""Score a partition's samples in this process or as Ray tasks, with the same rows either way.

Two entry points, each with an in-process path and a Ray path (`on_ray=None` or a `RayScoring`;
`RayClusterResource.score_rules` / `.judge` choose by the resource's `scoring` mode):

- `score_rules(samples, rewards)`: every applicable rule reward on every sample, the order of
  `rm_rewards.core.apply.apply_rewards`;
- `judge(samples, client, principles)`: the principle judges (pairwise samples by the pairwise
  judge, pointwise ones by the pointwise judge) → `JudgeRun` (results, usage, model, templates).

Ray tasks over consecutive batches, not Ray Data: samples are nested pydantic models (messages,
responses, free-form metadata) that Ray Data would turn into Arrow rows and back, and its
streaming executor adds start-up time and threads of its own; what scoring needs is only "this
slice of samples, these rewards, results back in order", which a task per batch says directly.
Each task runs the same `apply_rewards` on its slice (the rewards travel once, through the object
store) and `merge_batch_results` puts the results back in the in-process order. No reward looks
beyond the sample it scores, so the rows are equal; tests/test_ray_scoring.py checks them row for
row. At most `workers` tasks are in flight (1 CPU each); the rest wait their turn here.

Limits inside Ray workers: a task runs in its worker process's main thread, so math_verify's
SIGALRM time limit works there as in the step process, and its spawned pool starts inside the
worker (once per worker process; later tasks reuse it). code_execution builds its sandboxes
from the worker exactly as from the step process (namespaces, rlimits, wall clock, a scrubbed
environment). Those pools run beside the task's 1 CPU, as they run beside the step process.

LLM judging on Ray: one task per worker, each with its own `LLMClient` on the same endpoint and
the same SQLite response cache file (WAL, safe across processes on one machine; on a multi-node
cluster each node keeps its own file at that path).

- The API key never travels: task arguments carry the client config without it, and a worker
  reads `RMFORGE_LLM_API_KEY` from its own environment. A local Ray started by the step process
  inherits the step process's environment (where `dg.EnvVar` read the key from); a cluster needs
  the variable in its workers' environment (e.g. from a Kubernetes secret). Not Ray's
  `runtime_env={"env_vars": ...}`: Ray's runtime-env agent writes the serialized runtime env, its
  env vars included, into runtime_env_agent.log, and the dashboard shows it. A worker that
  needs a key and finds none fails at once, saying so.
- Rate limits add up to the configured ones: each of the n tasks gets 1/n of
  `requests_per_minute` and `tokens_per_minute`, and ceil(1/n) of `max_concurrency`, and no more
  than n tasks exist, so the sustained rates sum to the limits and at most
  `max_concurrency + n - 1` requests are in flight. Only the initial burst is per worker (each
  bucket starts with one second of its rate, at least one request).
- Usage counters (calls, cache hits, requests, tokens) come back from every task and are summed.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from rm_rewards.core.apply import apply_rewards, contiguous_batches, merge_batch_results
from rm_rewards.core.kinds import Reward, gc_paused
from rm_rewards.core.schema import RewardResult, Sample

API_KEY_ENV = "RMFORGE_LLM_API_KEY"
T = TypeVar("T")


@dataclass(frozen=True)
class RayScoring:
    """Where and how wide: `address=None` starts a small local Ray (unless one is running)."""

    address: str | None = None
    workers: int = 2
    batch_size: int = 500  # samples per rule-scoring task

    def describe(self) -> str:
        return f"Ray ({self.address or 'local'}, {self.workers} worker{'s' if self.workers > 1 else ''})"


@dataclass(frozen=True)
class JudgeRun:
    results: list[RewardResult]
    usage: Any  # rm_rewards.llm.usage.UsageSnapshot: what this run's calls cost
    model: str
    template_version: str


# --- rule rewards -----------------------------------------------------------------------------


def score_rules(
    samples: Sequence[Sample], rewards: Sequence[Reward], on_ray: RayScoring | None = None
) -> list[RewardResult]:
    """`apply_rewards(samples, rewards)`, in this process or over Ray tasks of `batch_size`."""
    if on_ray is None or not samples:
        with gc_paused():  # a large batch of cheap rules: see kinds.gc_paused
            return apply_rewards(samples, rewards)
    scored = score_rules_batches(contiguous_batches(samples, on_ray.batch_size), rewards, on_ray)
    return merge_batch_results(rewards, [results for _batch, results in scored])


def score_rules_batches(
    sample_batches: Iterable[Sequence[Sample]], rewards: Sequence[Reward], on_ray: RayScoring | None = None
) -> Iterator[tuple[list[Sample], list[RewardResult]]]:
    """Each batch of samples with its results (grouped by reward, as `apply_rewards` gives them),
    batch after batch. In process, a batch is read, scored and handed on before the next is read,
    so a caller that keeps only rows (`Store.write_score_batches`) holds one batch of sample and
    result objects at a time, not the partition's (a pydantic sample is ~8 KB, a result ~3 KB).
    On Ray each batch is one task (pickled when it is submitted), at most `on_ray.workers` of them
    running and a few finished ahead of the one handed on next (`run_in_order`), so the Ray path
    holds a few batches too, not the partition.
    Results in `score_rules`' order are the batches' results stably sorted by reward
    (`merge_batch_results`), which `Store.write_score_batches` does as it buckets rows by reward."""
    if on_ray is None:
        for batch in sample_batches:
            batch = list(batch)
            with gc_paused():  # while scoring only: the caller's work on each batch collects as usual
                results = apply_rewards(batch, rewards)
            yield batch, results
        return
    import ray

    batches = (list(batch) for batch in sample_batches)
    first = next(batches, None)
    if first is None:
        return  # nothing to score: no Ray started
    with ray_session(on_ray):
        remote = ray.remote(num_cpus=1)(_score_batch)
        rewards_ref = ray.put(list(rewards))

        def submit(batch: list[Sample]):
            return remote.remote(pickle.dumps(batch, protocol=5), rewards_ref)

        for batch, packed in run_in_order(itertools.chain([first], batches), submit, on_ray.workers):
            with gc_paused():
                results = unpack_results(packed)
            yield batch, results


def _score_batch(blob: bytes, rewards: Sequence[Reward]) -> list[tuple]:
    """In a Ray worker: `apply_rewards` on one pickled batch, the results packed for the trip back."""
    with gc_paused():  # unpickling, scoring (see kinds.gc_paused) and packing: no cycles made
        return pack_results(apply_rewards(pickle.loads(blob), rewards))


# The transport is most of the cost of Ray scoring, so samples travel as one pickled blob per
# batch and results as plain tuples, each loaded with the garbage collector paused: unpickling
# ~100k small objects otherwise triggers full collections over them (the reason kinds.gc_paused
# exists). Measured on a 4,606-sample partition's 36,848 rule results: the pydantic results took
# 1.0 s to dump and 1.6 s to load (more than the scoring); packed, with the collector paused,
# 0.1 s and 0.25 s. A score with dimensions travels as it is.


def pack_results(results: Sequence[RewardResult]) -> list[tuple]:
    return [
        (r.reward_name, r.reward_version, r.sample_id, r.error, r.metadata or None,
         [(s.score, s.reason, s.steps, s.error) if not s.dimensions else s for s in r.scores])
        for r in results
    ]


def unpack_results(packed: Sequence[tuple]) -> list[RewardResult]:
    """The results `pack_results` packed, equal field for field."""
    from rm_rewards.core.kinds import trusted_model
    from rm_rewards.core.schema import ResponseScore

    def score(packed_score) -> ResponseScore:
        if isinstance(packed_score, ResponseScore):
            return packed_score
        value, reason, steps, error = packed_score
        return trusted_model(ResponseScore, {"score": value, "reason": reason, "dimensions": {}, "steps": steps,
                                             "error": error})

    return [
        trusted_model(RewardResult, {"reward_name": name, "reward_version": version, "sample_id": sample_id,
                                     "scores": [score(s) for s in scores], "error": error,
                                     "metadata": metadata or {}})
        for name, version, sample_id, error, metadata, scores in packed
    ]


# --- LLM judges -------------------------------------------------------------------------------


def principle_judges(client, principles: dict) -> tuple[Reward, Reward]:
    """The pairwise and the pointwise principle judge on `client`, with `principles` (scenario and
    principles; empty for the judges' defaults)."""
    from rm_rewards.judging.judges import PairwiseJudge, PointwiseJudge

    return (
        PairwiseJudge(client=client, **principles).named("principle_pairwise_judge"),
        PointwiseJudge(client=client, **principles).named("principle_pointwise_judge"),
    )


def judge_samples(samples: Sequence[Sample], judges: tuple[Reward, Reward]) -> list[RewardResult]:
    """Pairwise samples by the pairwise judge, then pointwise ones by the pointwise judge."""
    pairwise_judge, pointwise_judge = judges
    pointwise = [s for s in samples if s.task == "pointwise"]
    pairwise = [s for s in samples if s.task != "pointwise"]
    return apply_rewards(pairwise, [pairwise_judge]) + apply_rewards(pointwise, [pointwise_judge])


def _template_version(judges: tuple[Reward, Reward]) -> str:
    return "+".join(sorted({judge.template.id for judge in judges}))


def judge(samples: Sequence[Sample], client, principles: dict, on_ray: RayScoring | None = None) -> JudgeRun:
    """The principle judges on every sample, with `client` here, or on Ray with clients of
    `client`'s configuration (its key re-read by each worker; see the module doc)."""
    judges = principle_judges(client, principles)
    if on_ray is None or not samples:
        before = client.stats.snapshot()
        results = judge_samples(samples, judges)
        usage = client.stats.snapshot() - before
    else:
        results, usage = _judge_on_ray(samples, client, principles, judges, on_ray)
    return JudgeRun(results, usage, client.config.model, _template_version(judges))


def worker_llm_settings(config, workers: int) -> dict[str, Any]:
    """The client config a Ray worker gets: no API key, and 1/`workers` of every limit."""
    fields = config.model_dump(mode="json", exclude={"api_key"})
    fields["max_concurrency"] = max(1, math.ceil(config.max_concurrency / workers))
    for name in ("requests_per_minute", "tokens_per_minute"):
        if fields[name] is not None:
            fields[name] = fields[name] / workers
    return fields


def _needs_key(config) -> bool:
    from rm_rewards.llm.config import LLMConfig

    return config.api_key.get_secret_value() != LLMConfig.model_fields["api_key"].default.get_secret_value()


def _judge_on_ray(samples, client, principles, judges, on_ray: RayScoring):
    import ray

    workers = max(1, min(on_ray.workers, len(samples)))
    batches = contiguous_batches(samples, math.ceil(len(samples) / workers))
    settings = worker_llm_settings(client.config, len(batches))
    cache_path = str(client.cache.path) if client.cache is not None else None
    needs_key = _needs_key(client.config)
    with ray_session(on_ray):
        remote = ray.remote(num_cpus=1)(_judge_batch)
        outputs = [output for _batch, output in run_in_order(
            batches, lambda batch: remote.remote(batch, settings, cache_path, needs_key, principles), len(batches)
        )]
    return merge_batch_results(judges, [results for results, _ in outputs]), add_usage(s for _, s in outputs)


def add_usage(snapshots) -> Any:
    """The sum of usage snapshots (counters and failures by reason)."""
    from collections import Counter

    from rm_rewards.llm.usage import UsageSnapshot

    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for snapshot in snapshots:
        totals.update(snapshot.model_dump(exclude={"failures_by_reason"}))
        reasons.update(snapshot.failures_by_reason)
    return UsageSnapshot(**totals, failures_by_reason=dict(reasons))


def _judge_batch(batch, settings: dict, cache_path: str | None, needs_key: bool, principles: dict):
    """In a Ray worker: a client of its own (key from this worker's environment), the judges, the
    batch; returns the results and what the calls cost."""
    from rm_rewards.llm.cache import ResponseCache
    from rm_rewards.llm.client import LLMClient
    from rm_rewards.llm.config import LLMConfig

    key = os.environ.get(API_KEY_ENV) if needs_key else None
    if needs_key and not key:
        raise RuntimeError(
            f"the LLM endpoint needs an API key, and {API_KEY_ENV} is not set in this Ray worker's "
            "environment (a cluster must provide it to its workers; rmforge never sends it)"
        )
    config = LLMConfig(**settings, **({"api_key": key} if key else {}))
    client = LLMClient(config, ResponseCache(cache_path) if cache_path else None)
    results = judge_samples(batch, principle_judges(client, principles))
    return results, client.stats.snapshot()


# --- Ray plumbing -----------------------------------------------------------------------------


def run_in_order(items: Iterable[T], submit: Callable[[T], Any], window: int) -> Iterator[tuple[T, Any]]:
    """(item, the result of its task `submit(item)`) for every item, in the items' order, with at
    most `window` tasks submitted and unfinished and at most 2 × `window` items out (running, or
    finished and waiting for an earlier one): an item is read only when there is room, so a lazy
    `items` is never held whole.

    A failing task raises here, after the unfinished ones are cancelled (also when the consumer
    stops early)."""
    import ray

    items = iter(items)
    window = max(1, window)
    queue: deque[list] = deque()  # [item, ref, finished, result], in submission order
    running: dict[Any, list] = {}
    exhausted = False
    try:
        while True:
            while not exhausted and len(running) < window and len(queue) < 2 * window:
                item = next(items, _END)
                if item is _END:
                    exhausted = True
                    break
                entry = [item, submit(item), False, None]
                queue.append(entry)
                running[entry[1]] = entry
            while queue and queue[0][2]:
                item, _ref, _finished, result = queue.popleft()
                yield item, result
            if not running:
                if exhausted and not queue:
                    return
                continue
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                entry = running.pop(ref)
                with gc_paused():  # deserializing a batch's results: see the transport note above
                    entry[3] = ray.get(ref)
                entry[2] = True
    except BaseException:
        for ref in running:
            ray.cancel(ref)
        raise


_END = object()


@contextmanager
def ray_session(on_ray: RayScoring) -> Iterator[None]:
    """A running Ray: the one already initialised, the cluster at `address`, or a small local one
    (2 CPUs or `workers`; `training.ray_local.init_ray`), shut down again if started here."""
    import ray

    from training.ray_local import init_ray

    if not init_ray(on_ray.address, num_cpus=max(2, on_ray.workers)):
        yield
        return
    try:
        yield
    finally:
        ray.shutdown()
