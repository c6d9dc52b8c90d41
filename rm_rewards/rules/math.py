"""Math answer equivalence with math-verify, correct in batch mode and spread over processes.

math-verify parses the final answer of a response (LaTeX, \\boxed{}, plain numbers and
expressions) and checks it against the reference symbolically. Its own timeout uses SIGALRM,
which only works in a process's main thread: the seed system called it from worker threads, so
every sample of a batch came back as an error. Here:

- the time limit is ours (`_time_limit`): SIGALRM in the main thread, restoring any alarm the
  caller had set (pytest-timeout uses one); a `BaseException`, so math-verify's
  `except Exception` cannot swallow it;
- a batch goes to a pool of worker processes (`ProcessPoolExecutor`, spawned), which run each
  chunk in their main thread, so the time limit works there; a chunk whose worker hangs beyond
  its budget (e.g. stuck in C code that no signal interrupts) or crashes is retried item by
  item on a fresh pool, and only the item that fails again is recorded as an error;
- a single `evaluate` in the main thread runs inline; from any other thread it goes through the
  pool, so it keeps its time limit.

Scripts that batch-score must guard their entry point with `if __name__ == "__main__":`, the
usual rule for spawned worker processes.

Bare function: `math_verify(candidate, reference) -> float`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import itertools
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import NamedTuple

from pydantic import Field

from rm_rewards.core.kinds import DEFAULT_MAX_CONCURRENCY, PointwiseReward, describe_error
from rm_rewards.core.registry import register
from rm_rewards.core.schema import ResponseScore, RewardResult, Sample

DEFAULT_TIMEOUT_S = 5.0
# Final answers sit at the end; parsing 1 MB of prose would only burn the time limit.
DEFAULT_MAX_CHARS = 4000
# How long a submitted task may wait for a worker to start it (spawning + importing sympy takes
# seconds; a minute means the pool is wedged).
WORKER_START_LIMIT_S = 60.0
# How often a waiting batch checks its tasks' deadlines.
_POLL_S = 0.2


class Verdict(NamedTuple):
    score: float | None
    reason: str
    error: str | None


class _Deadline(BaseException):
    """Raised by our SIGALRM handler; not an Exception, so library code cannot swallow it."""


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `_Deadline` after `seconds` (main thread only; elsewhere no limit is applied)."""
    if not seconds or seconds <= 0 or not in_main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise _Deadline

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:  # give the caller's alarm back, minus the time we spent
            remaining = previous_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001), previous_interval)


_math_verify_api = None


def _api():
    """math-verify's parse/verify and extraction configs, imported on first use (sympy is slow to import)."""
    global _math_verify_api
    if _math_verify_api is None:
        import math_verify
        import math_verify.grader
        import math_verify.parser

        # We pass no timeout to math-verify (ours wraps the call); silence its one-time warning.
        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        latex = math_verify.LatexExtractionConfig()
        expr = math_verify.ExprExtractionConfig()
        _math_verify_api = (math_verify.parse, math_verify.verify, (latex,), (latex, expr))
    return _math_verify_api


def gsm8k_final_answer(text: str) -> str:
    """The final answer of a GSM8K solution: what follows the last '####', without commas."""
    if "####" not in text:
        raise ValueError("no '####' final answer in the text")
    return text.rsplit("####", 1)[1].strip().replace(",", "")


# A word of three or more letters that is not a LaTeX command: the reference is prose.
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def _parse_reference(reference: str) -> list:
    parse, _, latex_only, latex_and_expr = _api()
    text = reference.strip()
    if "####" in text:
        text = gsm8k_final_answer(text)
    if "\\boxed" not in text and "$" not in text and not _PROSE_RE.search(text):
        # A bare reference ("18", "\frac{1}{2}", "x^2+1") is the answer itself: box it so the
        # LaTeX extractor takes all of it rather than hunting for a sub-expression. Prose
        # ("The answer is 42") is left to the extractors, which find its final answer.
        boxed = parse("\\boxed{" + text + "}", latex_only, parsing_timeout=None)
        if boxed:
            return boxed
    return parse(text, latex_and_expr, parsing_timeout=None)


def _shown(parsed: list) -> str:
    """The matched text of a parse result (never str() of a sympy object, which can hang)."""
    text = next((item for item in parsed if isinstance(item, str)), "?")
    return text if len(text) <= 60 else text[:57] + "..."


def answer_region(text: str) -> str:
    """Where a response states its final answer: the last `<answer>` block, else the line after
    the last GSM8K-style '####', else the whole text. Numbers written after the answer (a phone
    number in a signature, say) would otherwise be taken as the answer."""
    start = text.rfind("<answer>")
    if start >= 0:
        end = text.find("</answer>", start)
        inner = text[start + len("<answer>") : end if end >= 0 else len(text)]
        if inner.strip():
            return inner
    marker = text.rfind("####")
    if marker >= 0:
        line = text[marker + 4 :].strip().split("\n", 1)[0]
        if line.strip():
            return line
    return text


def _judge_parsed(gold: list, candidate: str, max_chars: int) -> Verdict:
    parse, verify, _, latex_and_expr = _api()
    predicted = parse(answer_region(candidate[-max_chars:]), latex_and_expr, parsing_timeout=None)
    if not predicted:
        return Verdict(0.0, "no math answer found in the response", None)
    same = verify(gold, predicted, timeout_seconds=None)
    verdict = "matches" if same else "does not match"
    return Verdict(1.0 if same else 0.0, f"answer {_shown(predicted)!r} {verdict} {_shown(gold)!r}", None)


def judge_sample(
    reference: str, candidates: Sequence[str], timeout_s: float, max_chars: int
) -> list[Verdict]:
    """Verdicts for every candidate against one reference (parsed once). Never raises.

    Each parse + verify runs under its own time limit when called from a main thread.
    """
    try:
        with _time_limit(timeout_s):
            gold = _parse_reference(reference)
    except _Deadline:
        return [Verdict(None, "", f"parsing the reference timed out after {timeout_s}s")] * len(candidates)
    except Exception as exc:  # noqa: BLE001 - any failure becomes this sample's error
        return [Verdict(None, "", f"reference: {describe_error(exc)}")] * len(candidates)
    if not gold:
        return [Verdict(None, "", "the reference has no math answer math-verify can parse")] * len(candidates)
    out = []
    for candidate in candidates:
        try:
            with _time_limit(timeout_s):
                out.append(_judge_parsed(gold, candidate, max_chars))
        except _Deadline:
            out.append(Verdict(None, "", f"math-verify timed out after {timeout_s}s"))
        except Exception as exc:  # noqa: BLE001 - any failure becomes this response's error
            out.append(Verdict(None, "", describe_error(exc)))
    return out


def math_verify(candidate: str, reference: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> float:
    """1.0 if the candidate's final answer equals the reference mathematically, else 0.0.

    Raises ValueError for an unparseable reference and TimeoutError past `timeout_s` (enforced
    only in a main thread; elsewhere math-verify runs without a limit).
    """
    verdict = judge_sample(reference, [candidate], timeout_s, DEFAULT_MAX_CHARS)[0]
    if verdict.error is None:
        return verdict.score
    raise (TimeoutError if "timed out" in verdict.error else ValueError)(verdict.error)


# --- the worker pool --------------------------------------------------------------------------

# One job: (reference, candidates) of one sample. A chunk is a list of jobs for one worker call.
Job = tuple[str, tuple[str, ...]]


def _judge_chunk(chunk: list[Job], timeout_s: float, max_chars: int) -> list[list[Verdict]]:
    """Scores a chunk; runs in a worker process's main thread, where SIGALRM works."""
    return [judge_sample(reference, candidates, timeout_s, max_chars) for reference, candidates in chunk]


# Set in each worker by `_init_worker`: where a worker says "I started task k".
_started_queue = None


def _init_worker(started_queue) -> None:
    global _started_queue
    _started_queue = started_queue
    _api()  # import sympy and math-verify before the first task, not inside its time budget


def _run_task(
    task_id: int, worker_fn, chunk: list[Job], timeout_s: float, max_chars: int
) -> list[list[Verdict]]:
    if _started_queue is not None:
        _started_queue.put(task_id)
    return worker_fn(chunk, timeout_s, max_chars)


class _Pool:
    """The process pool shared by all math_verify rewards, replaced when a worker hangs or dies.

    Workers report when they start a task, so a task's deadline counts from its start, not from
    its submission (spawning a worker and importing sympy takes seconds).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: cf.ProcessPoolExecutor | None = None
        self._started_queue = None
        self._workers = 0
        self.generation = 0
        self._task_ids = itertools.count()
        self.started: dict[int, float] = {}  # task id -> when a worker started it
        # Generations we killed ourselves to stop a hung task: their other tasks are innocent.
        self.killed_for_hang: set[int] = set()

    def submit(self, workers: int, worker_fn, chunk: list[Job], timeout_s: float, max_chars: int):
        """(future, task id, generation) of a chunk on the current pool (created if needed)."""
        with self._lock:
            if self._executor is None or self._workers != workers:
                self._discard()
                context = get_context("spawn")
                self._started_queue = context.Queue()
                self._executor = cf.ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=context,
                    initializer=_init_worker,
                    initargs=(self._started_queue,),
                )
                self._workers = workers
                self.generation += 1
            task_id = next(self._task_ids)
            future = self._executor.submit(_run_task, task_id, worker_fn, chunk, timeout_s, max_chars)
            return future, task_id, self.generation

    def started_at(self, task_id: int) -> float | None:
        with self._lock:
            while self._started_queue is not None:
                try:
                    self.started[self._started_queue.get_nowait()] = time.monotonic()
                except (queue.Empty, OSError, ValueError):
                    break
            return self.started.get(task_id)

    def forget(self, task_id: int) -> None:
        with self._lock:
            self.started.pop(task_id, None)

    def reset(self, generation: int, *, hung: bool = False) -> None:
        """Kill the workers of `generation` (if still current): the only way to stop a hung one."""
        with self._lock:
            if hung:
                self.killed_for_hang.add(generation)
            if generation == self.generation:
                self._discard()

    def _discard(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # ProcessPoolExecutor has no public way to stop a running task; killing its processes
        # breaks the pool, which fails the pending futures (the caller retries them).
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        if self._started_queue is not None:
            self._started_queue.close()
            self._started_queue = None


_POOL = _Pool()


class _Task(NamedTuple):
    indices: tuple[int, ...]  # positions of its jobs in the batch
    # A suspect ran when a worker hung or died; it runs alone so the culprit is known for sure.
    suspect: bool = False


class _Running(NamedTuple):
    task: _Task
    task_id: int
    submitted: float
    budget: float  # seconds from its start
    generation: int


def _chunks(jobs: Sequence[Job], workers: int, chunk_size: int) -> list[_Task]:
    """Split jobs into tasks of about `chunk_size` candidates, at least a few per worker."""
    total = sum(len(candidates) for _, candidates in jobs)
    target = max(1, min(chunk_size, -(-total // (workers * 4))))
    tasks, current, size = [], [], 0
    for index, (_, candidates) in enumerate(jobs):
        current.append(index)
        size += len(candidates)
        if size >= target:
            tasks.append(_Task(tuple(current)))
            current, size = [], 0
    if current:
        tasks.append(_Task(tuple(current)))
    return tasks


class _BatchRun:
    """One batch through the pool, at most `workers` tasks in flight. A task may run
    (timeout + 1 s) per candidate from its start, and may wait `WORKER_START_LIMIT_S` to start."""

    def __init__(
        self, jobs: Sequence[Job], timeout_s: float, max_chars: int, workers: int, chunk_size: int, worker_fn
    ):
        self.jobs, self.timeout_s, self.max_chars, self.workers = jobs, timeout_s, max_chars, workers
        self.worker_fn = worker_fn
        self.results: list[list[Verdict] | None] = [None] * len(jobs)
        self.queue = _chunks(jobs, workers, chunk_size)
        self.in_flight: dict[cf.Future, _Running] = {}
        self.submit_failures = 0

    def run(self) -> list[list[Verdict]]:
        while self.queue or self.in_flight:
            self._fill()
            if not self.in_flight:
                continue
            done, _ = cf.wait(self.in_flight, timeout=_POLL_S, return_when=cf.FIRST_COMPLETED)
            for future in done:
                running = self.in_flight.pop(future)
                _POOL.forget(running.task_id)
                self._collect(future, running)
            self._stop_hung()
        return [r if r is not None else [] for r in self.results]

    def _fill(self) -> None:
        while self.queue and len(self.in_flight) < self.workers:
            if any(r.task.suspect for r in self.in_flight.values()):
                return  # a suspect runs alone
            if self.queue[0].suspect and self.in_flight:
                return  # and waits until it can
            task = self.queue.pop(0)
            chunk = [self.jobs[i] for i in task.indices]
            budget = sum(len(candidates) for _, candidates in chunk) * (self.timeout_s + 1.0)
            try:
                future, task_id, generation = _POOL.submit(
                    self.workers, self.worker_fn, chunk, self.timeout_s, self.max_chars
                )
            except Exception as exc:  # noqa: BLE001 - the pool broke meanwhile or cannot start
                _POOL.reset(_POOL.generation)
                self.submit_failures += 1
                if self.submit_failures >= 3:
                    self._fail(
                        [task, *self.queue], f"cannot start math-verify workers: {describe_error(exc)}"
                    )
                    self.queue = []
                    return
                self.queue.insert(0, task)
                continue
            self.in_flight[future] = _Running(task, task_id, time.monotonic(), budget, generation)

    def _collect(self, future: cf.Future, running: _Running) -> None:
        try:
            verdicts = future.result()
        except Exception as exc:  # noqa: BLE001 - the worker died (BrokenProcessPool) or the call failed
            _POOL.reset(running.generation)
            if isinstance(exc, BrokenProcessPool) and running.generation in _POOL.killed_for_hang:
                self.queue.insert(0, running.task)  # collateral of a kill: innocent, run again
            else:
                self._suspect(running.task, f"math-verify worker failed: {describe_error(exc)}")
            return
        for index, job_verdicts in zip(running.task.indices, verdicts):
            self.results[index] = job_verdicts

    def _stop_hung(self) -> None:
        now = time.monotonic()
        for future, running in list(self.in_flight.items()):
            started = _POOL.started_at(running.task_id)
            if future.done():
                continue
            if started is None and now - running.submitted < WORKER_START_LIMIT_S:
                continue
            if started is not None and now - started < running.budget:
                continue
            del self.in_flight[future]
            _POOL.forget(running.task_id)
            _POOL.reset(running.generation, hung=True)  # other in-flight tasks break, are rerun
            why = "never started" if started is None else f"hung past its {running.budget:.0f}s budget"
            self._suspect(running.task, f"math-verify worker {why}")

    def _suspect(self, task: _Task, why: str) -> None:
        if task.suspect:  # it failed running alone: it is the culprit
            self._fail([task], why)
        else:
            self.queue.extend(_Task((index,), suspect=True) for index in task.indices)

    def _fail(self, tasks: list[_Task], why: str) -> None:
        for task in tasks:
            for index in task.indices:
                self.results[index] = [Verdict(None, "", why)] * len(self.jobs[index][1])


def judge_batch(
    jobs: Sequence[Job],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_chars: int = DEFAULT_MAX_CHARS,
    workers: int = 2,
    chunk_size: int = 32,
    worker_fn: Callable[[list[Job], float, int], list[list[Verdict]]] = _judge_chunk,
) -> list[list[Verdict]]:
    """Verdicts for every job, computed in worker processes; never raises, never loses a job.

    A task whose worker hangs past its budget or dies is split into single jobs that each run
    alone; a job that fails alone gets an error verdict for each of its candidates.
    `worker_fn` (a picklable module-level function) replaces the scoring, e.g. in tests that
    make a worker hang or crash.
    """
    if not jobs:
        return []
    return _BatchRun(jobs, timeout_s, max_chars, max(1, workers), chunk_size, worker_fn).run()


# --- the reward -------------------------------------------------------------------------------


def _to_score(verdict: Verdict) -> ResponseScore:
    if verdict.error is not None:
        return ResponseScore(score=None, error=verdict.error)
    return ResponseScore(score=verdict.score, reason=verdict.reason)


@register(
    "math_verify",
    tags=("math",),
    description="1 if the response's final answer equals the reference mathematically (math-verify), else 0.",
)
class MathVerify(PointwiseReward):
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    max_chars: int = Field(default=DEFAULT_MAX_CHARS, ge=1)
    # Worker processes for batches; 0 scores inline in this process (time limit in the main
    # thread only).
    workers: int = Field(default_factory=lambda: min(2, os.cpu_count() or 1), ge=0)
    chunk_size: int = Field(default=32, ge=1)
    # Batches up to this many samples, called from the main thread, skip the pool.
    inline_batch_max: int = Field(default=4, ge=0)

    def _unversioned_fields(self) -> set[str]:
        return {"workers", "chunk_size", "inline_batch_max"}

    def applies_to(self, sample: Sample) -> bool:
        return sample.reference is not None

    def _job(self, sample: Sample) -> Job:
        if sample.reference is None:
            raise ValueError(f"sample {sample.id} has no reference answer")
        # Cut before pickling: only the tail is parsed anyway.
        return sample.reference, tuple(r.text[-self.max_chars :] for r in sample.responses)

    def _score(self, sample: Sample) -> list[ResponseScore]:
        reference, candidates = self._job(sample)
        if in_main_thread() or self.workers == 0:
            verdicts = judge_sample(reference, candidates, self.timeout_s, self.max_chars)
        else:  # SIGALRM is unavailable here: keep the time limit by going through the pool
            verdicts = self._judge([(reference, candidates)])[0]
        return [_to_score(v) for v in verdicts]

    def _judge(self, jobs: Sequence[Job]) -> list[list[Verdict]]:
        return judge_batch(
            jobs,
            timeout_s=self.timeout_s,
            max_chars=self.max_chars,
            workers=self.workers,
            chunk_size=self.chunk_size,
        )

    def evaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        label = (self.name, self.version)
        if self.workers == 0 or (in_main_thread() and len(samples) <= self.inline_batch_max):
            return [self._evaluate_sync(sample, label) for sample in samples]
        results: list[RewardResult | None] = [None] * len(samples)
        jobs, positions = [], []
        for position, sample in enumerate(samples):
            try:
                jobs.append(self._job(sample))
                positions.append(position)
            except Exception as exc:  # noqa: BLE001 - a bad sample is its own error; the batch goes on
                results[position] = self._result(sample, None, describe_error(exc), label)
        for position, verdicts in zip(positions, self._judge(jobs)):
            sample = samples[position]
            results[position] = self._checked(sample, [_to_score(v) for v in verdicts], label)
        return results

    async def aevaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        # The pool does the work; a thread keeps the event loop free while it waits.
        return await asyncio.to_thread(self.evaluate_batch, samples)
