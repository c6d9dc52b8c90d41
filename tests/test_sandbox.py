"""The sandbox for untrusted code: every hostile program must fail safely, and quickly."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from rm_rewards.sandbox import supervisor
from rm_rewards.sandbox.api import (
    SandboxJob,
    SandboxLimits,
    arun_many,
    humaneval_program,
    run_many,
    run_python,
    run_tests,
    sandbox_isolation,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0


def processes_with_marker(marker: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or ()):
            found.append(proc.pid)
    return found


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def processes_of_uid(uid: int) -> list[int]:
    """Live processes of `uid`; zombies are dead, waiting for pid 1 to reap them."""
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        uids, status = proc.info["uids"], proc.info["status"]
        if uids and uids.real == uid and status != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found


# --- ordinary programs ---------------------------------------------------------------------------


def test_runs_a_program_and_captures_stdout_stderr_and_stdin():
    result = run_python("import sys\nprint(input()[::-1])\nprint('warn', file=sys.stderr)", stdin="abc\n")
    assert result.status == "ok", result
    assert result.returncode == 0
    assert result.stdout == "cba\n"
    assert result.stderr == "warn\n"


def test_stdin_is_empty_when_none_is_given():
    result = run_python("import sys\nprint(repr(sys.stdin.read()))")
    assert result.stdout.strip() == "''"


def test_an_exception_is_an_error_with_its_last_traceback_line():
    result = run_python("raise ValueError('bad input 42')")
    assert result.status == "error"
    assert result.returncode == 1
    assert result.detail == "ValueError: bad input 42"
    assert result.summary() == "error: ValueError: bad input 42"


def test_exit_code_is_reported():
    result = run_python("import sys\nsys.exit(3)")
    assert (result.status, result.returncode) == ("error", 3)


def test_broken_and_huge_source_is_a_result_not_an_exception():
    broken = run_python("print('\ud800')")
    assert broken.status == "error"
    assert "SyntaxError" in broken.stderr
    huge = run_python("x = 1\n" * 170_000 + "print(x)")
    assert (huge.status, huge.stdout) == ("ok", "1\n")


def test_output_is_truncated_to_the_limit():
    result = run_python("print('x' * 5_000_000)", max_output_bytes=1000)
    assert result.status == "ok"
    assert len(result.stdout) == 1000
    assert result.stdout_truncated and not result.stderr_truncated


def test_work_dir_is_writable_and_deleted_afterwards():
    result = run_python("import os\nopen('out.txt', 'w').write('kept?')\nprint(os.getcwd())")
    assert result.status == "ok", result
    workdir = Path(result.stdout.strip())
    assert workdir.name.startswith("rmsandbox-")
    assert not workdir.exists()


def test_file_size_limit():
    result = run_python("open('big.bin', 'wb').write(b'x' * (8 * 1024 * 1024))", file_size_mb=1)
    assert result.status == "error"
    assert "File too large" in result.detail


# --- hostile programs ----------------------------------------------------------------------------


def test_infinite_loop_times_out_on_the_wall_clock():
    started = time.monotonic()
    result = run_python("while True:\n    pass", timeout_s=1)
    assert result.status == "timeout"
    assert "wall-clock" in result.detail
    assert time.monotonic() - started < 4


def test_sleeping_program_times_out_although_it_uses_no_cpu():
    result = run_python("import time\ntime.sleep(60)", timeout_s=1)
    assert result.status == "timeout"
    assert result.wall_s < 4


def test_cpu_time_limit_stops_a_busy_loop_before_the_wall_clock():
    result = run_python("while True:\n    pass", timeout_s=20, cpu_s=1)
    assert result.status == "timeout"
    assert "CPU time" in result.detail
    assert result.returncode == -24  # SIGXCPU
    assert result.wall_s < 10


@pytest.mark.parametrize(
    "program",
    [
        "x = bytearray(8 * 1024 ** 3)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))",
    ],
    ids=["one-8GB-block", "growing"],
)
def test_memory_hog_gets_memory_error(program):
    started = time.monotonic()
    result = run_python(program, memory_mb=256, timeout_s=20)
    assert result.status == "memory", result
    assert "256 MB" in result.detail
    assert time.monotonic() - started < 10


def test_process_count_is_capped():
    program = textwrap.dedent(
        """
        import os, time
        started = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    time.sleep(5)
                    os._exit(0)
                started += 1
            except OSError:
                break
        print(started)
        """
    )
    result = run_python(program, max_processes=8, timeout_s=10)
    assert result.status == "ok", result
    assert 0 < int(result.stdout) < 8


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "fallback"])
def test_fork_bomb_is_contained_and_leaves_nothing_behind(namespaces):
    if not namespaces and not IS_ROOT:
        pytest.skip("without root and namespaces nothing caps a fork bomb: not run on a shared machine")
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    started = time.monotonic()
    result = run_python(bomb, timeout_s=2, max_processes=16, namespaces=namespaces)
    assert result.status == "timeout", result
    assert time.monotonic() - started < 6
    if result.uid is not None:
        assert processes_of_uid(result.uid) == []


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "fallback"])
def test_process_tree_is_gone_after_a_timeout(namespaces):
    if not namespaces and not IS_ROOT:
        pytest.skip("fallback cleanup sweeps by the per-run uid, which needs root")
    marker = f"rmsandbox-marker-{uuid.uuid4().hex}"
    program = textwrap.dedent(
        f"""
        import subprocess, sys, time
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)", "{marker}"]
        subprocess.Popen(sleeper)
        subprocess.Popen(sleeper, start_new_session=True)  # leaves the process group
        print("started", flush=True)
        time.sleep(120)
        """
    )
    result = run_python(program, timeout_s=2, namespaces=namespaces)
    assert result.status == "timeout"
    assert result.stdout == "started\n"  # the children really ran
    assert processes_with_marker(marker) == []


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "fallback"])
def test_a_run_ends_by_itself_when_its_parent_dies(namespaces):
    token = uuid.uuid4().hex
    marker = f"rmsandbox-marker-{token}"
    # The marker is assembled inside the program, so the driver's own command line lacks it.
    program = textwrap.dedent(
        f"""
        import subprocess, sys, time
        marker = "rmsandbox-marker-" + "{token}"
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
        time.sleep(120)
        """
    )
    driver = f"from rm_rewards.sandbox.api import run_python\nrun_python({program!r}, timeout_s=1, namespaces={namespaces})"
    parent = subprocess.Popen([sys.executable, "-c", driver], cwd=PROJECT_DIR)
    try:
        assert wait_until(lambda: processes_with_marker(marker), timeout_s=15), "the program never started"
        (launcher,) = psutil.Process(parent.pid).children()
        workdir = json.loads(launcher.cmdline()[-2])["workdir"]
    finally:
        parent.kill()
        parent.wait()
    assert wait_until(lambda: not processes_with_marker(marker), timeout_s=15)
    if IS_ROOT:  # the killed parent left its work dir behind; a later sweep removes it
        assert os.path.isdir(workdir)
        assert wait_until(lambda: workdir in supervisor.remove_stale_workdirs(min_age_s=0.5), timeout_s=10)
        assert not os.path.exists(workdir)


def test_writes_outside_the_work_dir_do_not_happen():
    probe = f"rmsandbox-probe-{uuid.uuid4().hex}"
    targets = [
        f"/tmp/../etc/{probe}",
        f"{PROJECT_DIR}/{probe}",
        f"/tmp/{probe}",
        f"../{probe}",
        f"/var/tmp/{probe}",
    ]
    program = textwrap.dedent(
        f"""
        import json
        outcome = {{}}
        for path in {targets!r} + ["inside.txt"]:
            try:
                with open(path, "w") as handle:
                    handle.write("escaped")
                outcome[path] = "written"
            except OSError as exc:
                outcome[path] = type(exc).__name__
        print(json.dumps(outcome))
        """
    )
    try:
        result = run_python(program)
        assert result.status == "ok", result
        outcome = json.loads(result.stdout)
        assert outcome["inside.txt"] == "written"
        host_paths = [
            Path("/etc") / probe,
            PROJECT_DIR / probe,
            Path("/tmp") / probe,
            Path("/var/tmp") / probe,
        ]
        if "mount-namespace" not in result.isolation:
            pytest.skip(f"no mount namespace here ({result.isolation}); /tmp is only protected with one")
        assert [p for p in host_paths if p.exists()] == []
        assert all(outcome[t] != "written" for t in targets), outcome
    finally:
        for path in (
            Path("/etc") / probe,
            PROJECT_DIR / probe,
            Path("/tmp") / probe,
            Path("/var/tmp") / probe,
        ):
            path.unlink(missing_ok=True)


@pytest.mark.skipif(not IS_ROOT, reason="without root the uid drop is not what protects /etc")
def test_fallback_mode_still_protects_system_and_project_files():
    probe = f"rmsandbox-probe-{uuid.uuid4().hex}"
    program = f"for p in ['/etc/{probe}', '{PROJECT_DIR}/{probe}']:\n    try:\n        open(p, 'w')\n    except OSError:\n        print('blocked')"
    try:
        result = run_python(program, namespaces=False)
        assert "uid-drop" in result.isolation
        assert result.stdout.split() == ["blocked", "blocked"]
    finally:
        for path in (Path("/etc") / probe, PROJECT_DIR / probe):
            path.unlink(missing_ok=True)


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "fallback-socket-guard"])
def test_network_connection_to_a_loopback_server_never_arrives(namespaces):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    program = textwrap.dedent(
        f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
            print("connected")
        except OSError as exc:
            print("refused", type(exc).__name__)
        """
    )
    try:
        result = run_python(program, namespaces=namespaces)
        assert result.status == "ok", result
        assert result.stdout.startswith("refused"), result.stdout
        server.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing is waiting in the accept queue
            server.accept()
        expected = "net-namespace" if namespaces else "socket-guard"
        if expected not in result.isolation:
            pytest.skip(f"namespaces are unavailable here: {result.isolation}")
    finally:
        server.close()


def test_secrets_in_the_environment_are_not_visible(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("HF_TOKEN", "hf-test-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-test-secret")
    program = textwrap.dedent(
        f"""
        import json, os
        leaked = [v for v in os.environ.values() if "test-secret" in v]
        try:
            parent = open("/proc/{os.getpid()}/environ", "rb").read()
            leaked += ["parent environ readable"] if b"test-secret" in parent else []
        except OSError:
            pass
        print(json.dumps(sorted(os.environ)))
        print(json.dumps(leaked))
        """
    )
    result = run_python(program)
    assert result.status == "ok", result
    names, leaked = (json.loads(line) for line in result.stdout.splitlines())
    assert leaked == []
    assert not any(n.endswith(("_KEY", "_TOKEN")) or n.startswith("OPENAI") for n in names)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to start the check as an unprivileged user")
def test_an_unprivileged_caller_gets_namespaces_through_a_user_namespace():
    """The same sandbox started by a non-root user: a user namespace stands in for root."""
    check = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(PROJECT_DIR)!r})  # the package only: the sandbox is standard library
        from rm_rewards.sandbox.api import run_python
        result = run_python("open('/tmp/x', 'w')")
        print(result.status, ",".join(result.isolation))
        """
    )
    done = subprocess.run(
        [supervisor.sandbox_python(), "-I", "-c", check],
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, _, isolation = done.stdout.strip().partition(" ")
    if "user-namespace" not in isolation:
        pytest.skip(f"user namespaces are unavailable here: {isolation}")
    assert "net-namespace" in isolation.split(",")
    assert status == "error"  # /tmp is read-only in there


def test_a_broken_sandbox_is_a_sandbox_error(monkeypatch):
    monkeypatch.setattr(supervisor, "_SANDBOX_PYTHON", "/nonexistent/python3")
    result = run_python("print(1)")
    assert result.status == "sandbox_error"
    assert "starting the program" in result.detail


def test_isolation_report_names_the_network_defence():
    isolation = sandbox_isolation()
    assert "net-namespace" in isolation or "socket-guard" in isolation
    if IS_ROOT:
        assert "uid-drop" in isolation


def test_limits_are_validated():
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxLimits(memory_mb=0)
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxLimits(timeout_s=0)


# --- HumanEval-style checks and batches ----------------------------------------------------------

SOLUTION = "def add(a, b):\n    return a + b\n"
TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


def test_run_tests_passes_a_correct_solution_and_fails_a_wrong_one():
    assert run_tests(SOLUTION, TEST, "add").status == "ok"
    wrong = run_tests(SOLUTION.replace("a + b", "a - b"), TEST, "add")
    assert wrong.status == "error"
    assert "AssertionError" in wrong.stderr


def test_run_tests_rejects_an_entry_point_that_is_not_a_name():
    with pytest.raises(ValueError, match="identifier"):
        humaneval_program(SOLUTION, TEST, "add); import os; os.system('id'")


SPAN_PROGRAM = "import time\nstart = time.time()\ntime.sleep({sleep})\nprint({index}, start, time.time())"


def max_overlap(results) -> int:
    spans = [tuple(map(float, r.stdout.split()[1:])) for r in results]
    return max(sum(1 for s, e in spans if s <= point < e) for point, _ in spans)


def test_run_many_keeps_order_and_runs_two_at_a_time():
    jobs = [SandboxJob(SPAN_PROGRAM.format(sleep=1.0, index=i)) for i in range(4)]
    results = run_many(jobs, max_workers=2)
    assert [int(r.stdout.split()[0]) for r in results] == [0, 1, 2, 3]
    assert max_overlap(results) == 2


def test_arun_many_bounds_concurrency():
    jobs = [SandboxJob(SPAN_PROGRAM.format(sleep=0.6, index=i)) for i in range(3)]
    results = asyncio.run(arun_many(jobs, max_workers=2))
    assert [int(r.stdout.split()[0]) for r in results] == [0, 1, 2]
    assert max_overlap(results) <= 2
