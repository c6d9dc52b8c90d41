"""The sandbox's public API: run untrusted Python (model-written code) and get a result.

`run_python(code, ...)` returns a `SandboxResult` whose `status` is one of ok / error / timeout /
memory / killed / sandbox_error; it never raises for anything the program does.
`run_tests(solution, test_code, entry_point)` runs a HumanEval-style check; `run_many` and
`arun_many` run many programs, at most `max_workers` (default 2) at a time. `SandboxLimits` holds
every limit of one run, `SandboxJob` one program with its stdin and limits.

What each limit defends against, and how a run is isolated (namespaces, mounts, uid, resource
limits), is in `rm_rewards.sandbox.supervisor`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

SandboxStatus = Literal["ok", "error", "timeout", "memory", "killed", "sandbox_error"]

DEFAULT_MAX_WORKERS = 2


@dataclass(frozen=True)
class SandboxLimits:
    """Every limit of one run; `rm_rewards.sandbox.supervisor` says what each defends against."""

    timeout_s: float = 5.0
    cpu_s: float | None = None  # None: the wall-clock timeout, rounded up to whole seconds
    memory_mb: int = 512
    max_processes: int = 16
    file_size_mb: int = 16
    disk_mb: int = 64
    max_open_files: int = 256
    max_output_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        for name in ("memory_mb", "max_processes", "file_size_mb", "disk_mb", "max_open_files"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def cpu_seconds(self) -> int:
        return max(1, int(-(-(self.cpu_s or self.timeout_s) // 1)))


@dataclass(frozen=True)
class SandboxResult:
    """What one run did. `returncode` is the program's exit code, or -N when signal N killed it."""

    status: SandboxStatus
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    detail: str = ""
    isolation: tuple[str, ...] = ()
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    uid: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self, max_chars: int = 300) -> str:
        """One line for a reward's reason: the status and, for failures, why."""
        if self.ok:
            return "ok"
        why = self.detail or last_line(self.stderr) or f"exit code {self.returncode}"
        return f"{self.status}: {why}"[:max_chars]


@dataclass(frozen=True)
class SandboxJob:
    code: str
    stdin: str | None = None
    limits: SandboxLimits = field(default_factory=SandboxLimits)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_job(job: SandboxJob, *, namespaces: bool = True) -> SandboxResult:
    """Run one job; every failure of the program (or of the sandbox) becomes a result.

    `namespaces=False` forces the weaker fallback (no namespaces) even where they work.
    """
    # Imported here: the supervisor builds this module's SandboxResult, so it imports this module.
    from rm_rewards.sandbox.supervisor import supervise

    return supervise(job, namespaces=namespaces)


def run_python(
    code: str,
    *,
    stdin: str | None = None,
    timeout_s: float = 5.0,
    cpu_s: float | None = None,
    memory_mb: int = 512,
    max_processes: int = 16,
    file_size_mb: int = 16,
    max_output_bytes: int = 64 * 1024,
    namespaces: bool = True,
) -> SandboxResult:
    """Run `code` as a Python program in the sandbox and return what happened.

    `namespaces=False` forces the weaker fallback (no namespaces) even where they work.
    """
    limits = SandboxLimits(
        timeout_s=timeout_s,
        cpu_s=cpu_s,
        memory_mb=memory_mb,
        max_processes=max_processes,
        file_size_mb=file_size_mb,
        max_output_bytes=max_output_bytes,
    )
    return run_job(SandboxJob(code=code, stdin=stdin, limits=limits), namespaces=namespaces)


def humaneval_program(solution: str, test_code: str, entry_point: str) -> str:
    """The program a HumanEval-style check runs: solution, the test's `check`, and its call."""
    if not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    return f"{solution}\n\n{test_code}\n\ncheck({entry_point})\n"


def run_tests(
    solution: str, test_code: str, entry_point: str, *, limits: SandboxLimits | None = None
) -> SandboxResult:
    """Run a HumanEval-style check: status "ok" exactly when every assertion held."""
    program = humaneval_program(solution, test_code, entry_point)
    return run_job(SandboxJob(code=program, limits=limits or SandboxLimits(timeout_s=10.0)))


def run_many(jobs: Sequence[SandboxJob], *, max_workers: int = DEFAULT_MAX_WORKERS) -> list[SandboxResult]:
    """Run many programs, at most `max_workers` at once; results in the order of `jobs`."""
    from concurrent.futures import ThreadPoolExecutor

    if len(jobs) <= 1 or max_workers <= 1:
        return [run_job(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(run_job, jobs))


async def arun_python(code: str, **options) -> SandboxResult:
    """`run_python` without blocking the event loop (the run waits in a worker thread)."""
    import asyncio

    return await asyncio.to_thread(lambda: run_python(code, **options))


async def arun_many(
    jobs: Sequence[SandboxJob], *, max_workers: int = DEFAULT_MAX_WORKERS
) -> list[SandboxResult]:
    """`run_many` for async callers: at most `max_workers` programs run at once."""
    import asyncio

    limit = asyncio.Semaphore(max(1, max_workers))

    async def one(job: SandboxJob) -> SandboxResult:
        async with limit:
            return await asyncio.to_thread(run_job, job)

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def sandbox_isolation() -> tuple[str, ...]:
    """What isolation a run gets on this machine (runs a trivial program; cached)."""
    global _ISOLATION
    if _ISOLATION is None:
        _ISOLATION = run_python("pass", timeout_s=10).isolation
    return _ISOLATION


_ISOLATION: tuple[str, ...] | None = None
