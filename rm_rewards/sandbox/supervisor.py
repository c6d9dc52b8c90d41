"""The sandbox's parent side: start a run's throwaway, locked-down process tree, enforce its
wall clock, collect its output, kill what is left and clean up; classify what happened.

The public entry points (`run_python`, `run_many`, `SandboxResult`, ...) are in
`rm_rewards.sandbox.api`. Inside the new tree, `rm_rewards/sandbox/bootstrap.py` (run as a
script) enters the namespaces, prepares the mounts, sets the limits and drops the uid; this
module decides them and passes them in its config.

How one run is built, and what each piece defends against (Linux only):

- A fresh temp directory on the host carries the program in; it is deleted afterwards (and
  if the parent was killed before it could, a later process sweeps it: remove_stale_workdirs).
- The process tree starts in its own session (`start_new_session`), so one `killpg` reaches
  every process that did not leave the group.
- Namespaces (`unshare`; as root directly, otherwise inside a new user namespace):
  - network: a fresh namespace with only a downed loopback, so no connection can leave, not
    even to 127.0.0.1 (a local database, the Dagster webserver, an LLM server);
  - pid: the program's tree lives under its own pid 1 (a small reaper); when that dies the
    kernel kills every process in the namespace, including ones that called `setsid` to
    escape the process group, and the program cannot see or signal host processes;
  - mount: a private `/proc`, empty read-only tmpfs over `/tmp`, `/var/tmp` and `/dev/shm`
    (hiding other users' files) and over `/run` (services' world-connectable unix sockets:
    D-Bus, PostgreSQL, the journal; a network namespace does not cover pathname sockets), and
    over the caller's own places: its working directory and the project folder (warehouse,
    caches, a `.env`), its home, `/root` and `/home` (tokens, keys), each unless the interpreter or its
    standard library lives inside it; the working directory on a size-capped tmpfs (the only
    writable place; bounds total disk use), and every other mount remounted read-only: as
    root, file permissions alone stop nothing, so this is what keeps `/etc` or the project
    directory from being written;
  - ipc and uts: no shared SysV memory or hostname changes leaking to the host.
- When running as root, the program drops to a random unprivileged uid/gid (no supplementary
  groups) chosen per run. Root ignores RLIMIT_NPROC and file permissions; an unprivileged uid
  makes both real. A uid used by nothing else means the process-count limit is this run's
  alone, and a leftover sweep can kill "every process of that uid" without hitting anyone
  else. `PR_SET_NO_NEW_PRIVS` stops setuid binaries (su, mount, ping) from regaining root.
- Resource limits (setrlimit), applied to the program and inherited by its children:
  - RLIMIT_CPU: a busy loop dies of SIGXCPU even if wall time is spent waiting elsewhere;
  - RLIMIT_AS: a memory hog gets MemoryError instead of swapping the shared machine out;
    note it caps each process, so a tree can use at most max_processes x memory_mb;
  - RLIMIT_NPROC: a fork bomb hits the ceiling of max_processes tasks (threads count too);
  - RLIMIT_FSIZE: no single file larger than file_size_mb; RLIMIT_NOFILE: no fd exhaustion;
  - RLIMIT_CORE 0: no core dumps written anywhere.
- Wall-clock timeout in the parent: on expiry the whole group is SIGKILLed, then any process
  still owned by the run's uid is killed, so nothing survives a timeout.
- A minimal environment built from scratch (PATH, HOME, LANG, thread caps): API keys and
  tokens in the parent's environment never reach the program. stdin is /dev/null unless
  input is given; stdout/stderr are captured and truncated to max_output_bytes each.
- The program runs with `python -I -S -B` (isolated mode, no site-packages, no bytecode
  writes): only the standard library, and no PYTHON* variable can change what runs.

Fallback (and it is weaker): when namespaces cannot be created (e.g. a container without
CAP_SYS_ADMIN and no user namespaces), the run has no network namespace; a guard that replaces
`socket.socket` for IPv4/IPv6 is installed before the program instead. Code that uses ctypes
or starts another program can get around it, and world-writable directories (/tmp) stay
writable. Without root and without namespaces there is no uid of its own either, so a
timeout kills the process group only. `SandboxResult.isolation` names what was in force.

If the parent itself dies mid-run, the run's reaper ends it by an alarm a little after the
wall-clock limit, so no orphan sandbox lives on.

Like the bootstrap, this module imports only the standard library (and the API's types).
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace

from rm_rewards.sandbox import bootstrap
from rm_rewards.sandbox.api import SandboxJob, SandboxLimits, SandboxResult, last_line
from rm_rewards.sandbox.bootstrap import PROGRAM_FILE

# The child bootstrap, started by path as a script (see bootstrap.py).
BOOTSTRAP_SCRIPT = os.path.abspath(bootstrap.__file__)

MIB = 1024 * 1024
# Per-run uids are drawn from this range: far above login users and container subuid ranges.
SANDBOX_UID_RANGE = (2_000_000_000, 2_100_000_000)
# How long stdout/stderr may stay open after the sandbox's launcher exited (a background child
# holding the pipe in fallback mode) before the leftovers are killed.
PIPE_GRACE_S = 0.5
# The run's own alarm fires this long after the wall-clock limit, for when the parent is gone.
WATCHDOG_MARGIN_S = 2
# The caller's places hidden as well (see caller_dirs_to_hide): homes; the cwd is added per run.
HIDDEN_HOME_DIRS = ("/root", "/home")


def supervise(job: SandboxJob, *, namespaces: bool = True) -> SandboxResult:
    """Run one job (`rm_rewards.sandbox.api.run_job`); every failure of the program (or of the
    sandbox) becomes a result."""
    limits = job.limits
    uid = _pick_uid() if os.geteuid() == 0 else None
    if uid is not None:
        _sweep_once()
    started = time.monotonic()
    host_dir = None
    try:
        host_dir = tempfile.mkdtemp(prefix="rmsandbox-")
        _write_program(host_dir, job.code, uid)
        config = {
            "workdir": host_dir,
            "python": sandbox_python(),
            "uid": uid,
            "namespaces": namespaces,
            "hide": caller_dirs_to_hide(),
            "watchdog_s": int(limits.timeout_s) + WATCHDOG_MARGIN_S,
            "nproc": _nproc_limit(limits.max_processes, uid),
            "limits": _limits_config(limits),
        }
        return _launch(config, job, uid, started)
    except OSError as exc:
        detail = f"could not start the sandbox: {exc}"
        wall = time.monotonic() - started
        return SandboxResult(
            status="sandbox_error", returncode=None, stdout="", stderr="", wall_s=wall, detail=detail
        )
    finally:
        if host_dir is not None:
            shutil.rmtree(host_dir, ignore_errors=True)


def caller_dirs_to_hide() -> list[str]:
    """The caller's working directory and homes, which the program must not read (a file there
    is usually world-readable, and without root the program even runs as the caller's uid).
    A directory holding the interpreter or its standard library stays: the program needs them."""
    python = sandbox_python()
    needed = [python, os.path.dirname(os.__file__)] if python == os.path.realpath(sys.executable) else [python]
    needed = [os.path.realpath(path) for path in needed]
    hide = []
    for path in (os.getcwd(), _project_root(), os.path.expanduser("~"), *HIDDEN_HOME_DIRS):
        path = os.path.realpath(path)
        if path == "/" or path in hide or not os.path.isdir(path):
            continue
        if any(os.path.commonpath([path, need]) == path for need in needed):
            continue
        hide.append(path)
    # A folder inside another hidden one is hidden with it (and has no mount point left there).
    return [path for path in hide if not any(o != path and os.path.commonpath([path, o]) == o for o in hide)]


def _project_root() -> str:
    """The folder holding the rm_rewards package (a checkout: the warehouse and caches live there
    by default), wherever the caller's working directory is."""
    path = os.path.dirname(os.path.abspath(__file__))
    while os.path.basename(path) != "rm_rewards" and path != os.path.dirname(path):
        path = os.path.dirname(path)
    return os.path.dirname(path)


def remove_stale_workdirs(min_age_s: float = 60.0) -> list[str]:
    """Delete work dirs that a killed parent never got to delete (its `finally` never ran).

    A dir is stale when it is owned by a per-run uid (so created by a root parent), is older
    than `min_age_s`, and no process of that uid is alive: a live run always has its program
    running under that uid, except for the few milliseconds before the program starts.
    """
    low, high = SANDBOX_UID_RANGE
    removed = []
    for entry in os.scandir(tempfile.gettempdir()):
        if not entry.name.startswith("rmsandbox-"):
            continue
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode) or not low <= info.st_uid < high:
            continue
        if time.time() - info.st_mtime < min_age_s or _pids_of_uid(info.st_uid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


_SWEPT = False


def _sweep_once() -> None:
    global _SWEPT
    if not _SWEPT:
        _SWEPT = True
        remove_stale_workdirs()


def _pick_uid() -> int:
    low, high = SANDBOX_UID_RANGE
    return low + secrets.randbelow(high - low)


def _write_program(host_dir: str, code: str, uid: int | None) -> None:
    path = os.path.join(host_dir, PROGRAM_FILE)
    # Lone surrogates (broken model output) are written as-is; the program then fails to
    # decode, which is reported like any other syntax error instead of crashing here.
    with open(path, "wb") as handle:
        handle.write(code.encode("utf-8", "surrogatepass"))
    if uid is not None:  # fallback mode runs in this directory as the sandbox uid
        os.chown(host_dir, uid, uid)
        os.chown(path, uid, uid)
    os.chmod(host_dir, 0o700)


def _limits_config(limits: SandboxLimits) -> dict[str, int]:
    return {
        "cpu_s": limits.cpu_seconds,
        "memory_bytes": limits.memory_mb * MIB,
        "file_size_bytes": limits.file_size_mb * MIB,
        "disk_mb": limits.disk_mb,
        "open_files": limits.max_open_files,
    }


def _nproc_limit(max_processes: int, uid: int | None) -> int:
    """RLIMIT_NPROC counts every task of the real uid: for a per-run uid that is the run's own;
    without root it is the caller's uid, whose existing tasks must fit under the limit too."""
    if uid is not None:
        return max_processes
    return _count_tasks_of_uid(os.getuid()) + max_processes


def sandbox_python() -> str:
    """The interpreter that runs untrusted code: this one when the sandbox uid can reach it
    and its standard library, else a system python3 that it can. (A python under /root is
    unreadable to an unprivileged uid, and its loader then silently picks another libpython.)"""
    global _SANDBOX_PYTHON
    if _SANDBOX_PYTHON is None:
        own = os.path.realpath(sys.executable)
        stdlib = os.path.dirname(os.__file__)
        candidates = [(own, stdlib)] + [
            (os.path.realpath(p), None) for p in ("/usr/bin/python3", "/usr/local/bin/python3")
        ]
        for exe, lib in candidates:
            if os.geteuid() != 0 or (_world_reachable(exe) and (lib is None or _world_reachable(lib))):
                _SANDBOX_PYTHON = exe
                break
        else:
            _SANDBOX_PYTHON = own
    return _SANDBOX_PYTHON


_SANDBOX_PYTHON: str | None = None


def _world_reachable(path: str) -> bool:
    """Whether a uid with no special rights can read `path` (and search every parent)."""
    path = os.path.realpath(path)
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        parent = os.path.dirname(path)
        while True:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == os.path.dirname(parent):
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


def _sandbox_env(workdir: str) -> dict[str, str]:
    """Built from scratch, never copied: nothing of the parent's environment (keys, tokens,
    cloud credentials) reaches the program."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # Numeric libraries start a thread per core; threads count against max_processes.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _launch(config: dict, job: SandboxJob, uid: int | None, started: float) -> SandboxResult:
    limits = job.limits
    status_read, status_write = os.pipe()
    try:
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    BOOTSTRAP_SCRIPT,
                    json.dumps(config),
                    str(status_write),
                ],
                stdin=subprocess.DEVNULL if job.stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_sandbox_env(config["workdir"]),
                cwd="/",
                start_new_session=True,
                pass_fds=(status_write,),
            )
        finally:
            os.close(status_write)
        try:
            stdin_bytes = None if job.stdin is None else job.stdin.encode("utf-8", "surrogatepass")
            deadline = started + limits.timeout_s
            streams = _collect_output(proc, stdin_bytes, deadline, limits.max_output_bytes)
            # The output can close a moment before the reaper has reported the exit status.
            if not streams.timed_out and not _wait_for_launcher(proc, deadline):
                streams.timed_out = True
        finally:  # whatever happened above (even KeyboardInterrupt), nothing outlives the call
            _kill_tree(proc, uid)
        wall = time.monotonic() - started
        status_lines = _read_all(status_read).decode("utf-8", "replace").splitlines()
    finally:
        os.close(status_read)
    return _classify(streams, status_lines, limits, wall, uid, proc.returncode)


@dataclass
class _Streams:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False
    lingering: bool = False  # pipes still open after the launcher exited

    def add(self, name: str, data: bytes, limit: int) -> None:
        buffer = getattr(self, name)
        room = limit - len(buffer)
        if len(data) > room:
            setattr(self, f"{name}_truncated", True)
        if room > 0:
            buffer.extend(data[:room])


def _launcher_exited(proc: subprocess.Popen) -> bool:
    """Without reaping it: its pid (= the process group id) must stay reserved until
    `_kill_tree` has signalled the group, or the id could be reused by a stranger."""
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _wait_for_launcher(proc: subprocess.Popen, deadline: float) -> bool:
    while not _launcher_exited(proc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
    return True


def _collect_output(
    proc: subprocess.Popen, stdin_bytes: bytes | None, deadline: float, limit: int
) -> _Streams:
    """Feed stdin and read stdout/stderr until both close or the deadline passes; keep at most
    `limit` bytes of each (the rest is read and dropped so the program never blocks on a pipe)."""
    streams = _Streams()
    selector = selectors.DefaultSelector()
    names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    for fd in names:
        selector.register(fd, selectors.EVENT_READ)
    pending = memoryview(stdin_bytes or b"")
    if proc.stdin is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        selector.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
    grace_until = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                streams.timed_out = True
                break
            if grace_until is None and _launcher_exited(proc):
                grace_until = now + PIPE_GRACE_S
            if grace_until is not None and now >= grace_until:
                streams.lingering = True
                break
            wait = min(deadline, grace_until or deadline) - now
            for key, _ in selector.select(timeout=min(wait, 0.1)):
                fd = key.fd
                if fd in names:
                    data = os.read(fd, 65536)
                    if data:
                        streams.add(names[fd], data, limit)
                    else:
                        selector.unregister(fd)
                    continue
                pending = _feed_stdin(proc, selector, pending)
    finally:
        selector.close()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return streams


def _feed_stdin(proc: subprocess.Popen, selector: selectors.BaseSelector, pending: memoryview) -> memoryview:
    fd = proc.stdin.fileno()
    try:
        written = os.write(fd, pending[:65536]) if pending else 0
        pending = pending[written:]
    except BlockingIOError:
        return pending
    except BrokenPipeError:  # the program closed stdin early: fine
        pending = pending[:0]
    if not pending:
        selector.unregister(fd)
        proc.stdin.close()
    return pending


def _kill_tree(proc: subprocess.Popen, uid: int | None) -> None:
    """Kill whatever is left of the run: its process group, then every process of its uid."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if uid is not None:
        kill_processes_of_uid(uid)


def kill_processes_of_uid(uid: int, *, rounds: int = 50) -> bool:
    """SIGKILL every process whose real uid is `uid` until none is left (a fork bomb keeps
    forking while being swept, so sweep until a pass finds nothing). True when none remain."""
    for _ in range(rounds):
        pids = _pids_of_uid(uid)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return not _pids_of_uid(uid)


def _pids_of_uid(uid: int) -> list[int]:
    """Live processes whose real uid is `uid` (zombies are dead already and cannot be killed)."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _live_uid(int(entry)) == uid]


def _live_uid(pid: int) -> int | None:
    """The real uid of a live process; None for a zombie or a process that is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"State:") and line.split()[1] == b"Z":
                    return None
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _count_tasks_of_uid(uid: int) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", "rb") as handle:
                fields = dict(line.split(b":", 1) for line in handle if b":" in line)
            if int(fields[b"Uid"].split()[0]) == uid:
                total += int(fields[b"Threads"])
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return total


def _read_all(fd: int) -> bytes:
    chunks = []
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _classify(
    streams: _Streams,
    status_lines: list[str],
    limits: SandboxLimits,
    wall: float,
    uid: int | None,
    launcher_code: int | None,
) -> SandboxResult:
    isolation: tuple[str, ...] = ()
    outcome: tuple[str, int] | None = None
    setup_errors = []
    for line in status_lines:
        key, _, value = line.partition(" ")
        if key == "isolation":
            isolation = tuple(value.split(","))
        elif key in ("exit", "signal"):
            outcome = (key, int(value))
        elif key == "setup-error":
            setup_errors.append(value)
    base = SandboxResult(
        status="ok",
        returncode=None,
        stdout=streams.stdout.decode("utf-8", "replace"),
        stderr=streams.stderr.decode("utf-8", "replace"),
        wall_s=wall,
        isolation=isolation,
        stdout_truncated=streams.stdout_truncated,
        stderr_truncated=streams.stderr_truncated,
        uid=uid,
    )
    if streams.timed_out:
        return replace(base, status="timeout", detail=f"wall-clock limit of {limits.timeout_s:g}s exceeded")
    if setup_errors:
        return replace(base, status="sandbox_error", detail="; ".join(setup_errors)[:500])
    if outcome is None:
        detail = f"the sandbox launcher ended without a result (exit code {launcher_code})"
        return replace(base, status="sandbox_error", detail=detail)
    kind, number = outcome
    if kind == "signal":
        return _classify_signal(replace(base, returncode=-number), number, limits)
    base = replace(base, returncode=number)
    if number == 0:
        return base
    if last_line(base.stderr).startswith("MemoryError"):
        return replace(base, status="memory", detail=f"MemoryError (limit {limits.memory_mb} MB)")
    return replace(base, status="error", detail=last_line(base.stderr)[:300] or f"exit code {number}")


def _classify_signal(base: SandboxResult, number: int, limits: SandboxLimits) -> SandboxResult:
    if number == signal.SIGXCPU:
        return replace(base, status="timeout", detail=f"CPU time limit of {limits.cpu_seconds}s exceeded")
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if number == signal.SIGKILL:
        detail = "killed by SIGKILL (CPU hard limit or the kernel's out-of-memory killer)"
    else:
        detail = f"killed by {name}"
    return replace(base, status="killed", detail=detail)
