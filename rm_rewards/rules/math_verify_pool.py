"""Where math_verify's judging runs: a per-call time limit, and a process pool for batches.

math-verify's own timeout uses SIGALRM, which only works in a process's main thread: the seed
system called it from worker threads, so every sample of a batch came back as an error. Here:

- the time limit is ours (`time_limit`): SIGALRM in the main thread, restoring any alarm the
  caller had set (pytest-timeout uses one); it raises `Deadline`, a `BaseException`, so
  math-verify's `except Exception` cannot swallow it;
- a batch goes to a pool of worker processes (`ProcessPoolExecutor`, spawned), which run each
  chunk in their main thread, so the time limit works there; a chunk whose worker hangs beyond
  its budget (e.g. stuck in C code that no signal interrupts) or crashes is retried item by
  item on a fresh pool, and only the item that fails again is recorded as an error.

This module knows nothing of parsing answers: `judge_batch` is given the function that judges
a chunk in a worker and the warm-up each worker runs first (both from `rm_rewards.rules.math`).
Scripts that batch-score must guard their entry point with `if __name__ == "__main__":`, the
usual rule for spawned worker processes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import NamedTuple

from rm_rewards.core.kinds import describe_error

# How long a submitted task may wait for a worker to start it (spawning + importing sympy takes
# seconds; a minute means the pool is wedged).
WORKER_START_LIMIT_S = 60.0
# How often a waiting batch checks its tasks' deadlines.
_POLL_S = 0.2


class Verdict(NamedTuple):
    score: float | None
    reason: str
    error: str | None


# One job: (reference, candidates) of one sample. A chunk is a list of jobs for one worker call.
Job = tuple[str, tuple[str, ...]]
# Judges a chunk (jobs, timeout_s, max_chars) in a worker's main thread: one verdict per candidate.
ChunkJudge = Callable[[list[Job], float, int], list[list[Verdict]]]


class Deadline(BaseException):
    """Raised by our SIGALRM handler; not an Exception, so library code cannot swallow it."""


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `Deadline` after `seconds` (main thread only; elsewhere no limit is applied)."""
    if not seconds or seconds <= 0 or not in_main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise Deadline

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


# --- the worker pool --------------------------------------------------------------------------

# Set in each worker by `_init_worker`: where a worker says "I started task k".
_started_queue = None


def _init_worker(started_queue, warm_up: Callable[[], object] | None) -> None:
    global _started_queue
    _started_queue = started_queue
    if warm_up is not None:
        warm_up()  # import sympy and math-verify before the first task, not inside its time budget


def _run_task(
    task_id: int, worker_fn: ChunkJudge, chunk: list[Job], timeout_s: float, max_chars: int
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
        self._warm_up: Callable[[], object] | None = None
        self.generation = 0
        self._task_ids = itertools.count()
        self.started: dict[int, float] = {}  # task id -> when a worker started it
        # Generations we killed ourselves to stop a hung task: their other tasks are innocent.
        self.killed_for_hang: set[int] = set()

    def submit(
        self,
        workers: int,
        warm_up: Callable[[], object] | None,
        worker_fn: ChunkJudge,
        chunk: list[Job],
        timeout_s: float,
        max_chars: int,
    ):
        """(future, task id, generation) of a chunk on the current pool (created if needed)."""
        with self._lock:
            if self._executor is None or self._workers != workers or self._warm_up is not warm_up:
                self._discard()
                context = get_context("spawn")
                self._started_queue = context.Queue()
                self._executor = cf.ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=context,
                    initializer=_init_worker,
                    initargs=(self._started_queue, warm_up),
                )
                self._workers = workers
                self._warm_up = warm_up
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
        self,
        jobs: Sequence[Job],
        timeout_s: float,
        max_chars: int,
        workers: int,
        chunk_size: int,
        worker_fn: ChunkJudge,
        warm_up: Callable[[], object] | None,
    ):
        self.jobs, self.timeout_s, self.max_chars, self.workers = jobs, timeout_s, max_chars, workers
        self.worker_fn, self.warm_up = worker_fn, warm_up
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
                    self.workers, self.warm_up, self.worker_fn, chunk, self.timeout_s, self.max_chars
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
    worker_fn: ChunkJudge,
    warm_up: Callable[[], object] | None,
    timeout_s: float,
    max_chars: int,
    workers: int,
    chunk_size: int,
) -> list[list[Verdict]]:
    """Verdicts for every job, computed by `worker_fn` in worker processes that each ran
    `warm_up` first; never raises, never loses a job.

    A task whose worker hangs past its budget or dies is split into single jobs that each run
    alone; a job that fails alone gets an error verdict for each of its candidates. Both
    functions must be picklable (module-level) and are looked up by name in the workers.
    """
    if not jobs:
        return []
    return _BatchRun(jobs, timeout_s, max_chars, max(1, workers), chunk_size, worker_fn, warm_up).run()
