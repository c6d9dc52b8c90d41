"""Shutdown: `rmforge ui`, `rmforge run` and `rmforge serve`, stopped as a supervisor stops them
(SIGTERM to the process), as a shell or a container runtime does (SIGTERM to the process group),
with Ctrl-C (SIGINT to the group), and killed with -9, leave no process behind and no port held;
stopped by a signal it handles, the command exits by itself (not by an abort or the signal).

Each command runs with a private DAGSTER_HOME and data folder, on free ports, in its own process
group, with a unique marker in its environment: every process it starts (dagster dev's webserver,
daemon and code server, the embedded llama.cpp server, Ray's processes, step processes) inherits the
marker, so "left behind" means "a live process whose environment has the marker" after the stop.
The ports are the ones those processes listened on while the command ran.

`rmforge ui` starts the real embedded llama.cpp server (SmolLM2; it is what used to be orphaned by
a SIGTERM to the group) and is signalled once a run its sensor launched is executing; `rmforge run`
too, and is signalled once its first step has started;
`rmforge serve` serves a rule reward (no checkpoint needed) on a local Ray.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from tests.support.dagster_dev import ROOT, dagster_env, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.embedded_llm]

MARKER_ENV = "RMFORGE_SHUTDOWN_TEST"
STOP_TIMEOUT_S = 120  # for the command itself to exit after the signal (a loaded CI machine is slow)
SETTLE_TIMEOUT_S = 45  # for everything it started (a -9 leaves it to the children's parent watch)

STOPS = {
    "SIGTERM to the process": (signal.SIGTERM, False),
    "SIGTERM to the group": (signal.SIGTERM, True),
    "Ctrl-C (SIGINT to the group)": (signal.SIGINT, True),
    "kill -9 of the process": (signal.SIGKILL, False),
}


def marked(token: str) -> list[psutil.Process]:
    """Live processes started for this case (the marker is in their environment)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(MARKER_ENV) == token:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def listening_ports(pids: set[int]) -> set[int]:
    return {c.laddr.port for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def llm_ready(token: str) -> bool:
    """The embedded llama.cpp server of this case answers on its port."""
    for proc in marked(token):
        try:
            argv = proc.cmdline()
        except psutil.Error:
            continue
        if "llama_cpp.server" in argv and "--port" in argv:
            return answers(f"http://127.0.0.1:{argv[argv.index('--port') + 1]}/v1/models")
    return False


def first_step_started(home: Path, pid: int) -> bool:
    import dagster as dg

    from dagster_project.crashed_runs import PID_TAG

    with dg.DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records(dg.RunsFilter(tags={PID_TAG: str(pid)})):
            steps = instance.get_records_for_run(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_START).records
            if steps:
                return True
    return False


def command_for(name: str, port: int) -> list[str]:
    cli = [sys.executable, "-m", "dagster_project.cli"]
    return {
        "ui": cli + ["ui", "--port", str(port)],
        # The embedded LLM starts first; the signal comes while main_job's first step runs.
        "run": cli + ["run", "--partition", "hh_rlhf_harmless", "--skip-training", "--skip-benchmarks"],
        "serve": cli + ["serve", "--model", "reward:length_penalty", "--port", str(port)],
    }[name]


def a_run_in_flight(home: Path) -> bool:
    """A run of this case's instance is executing (the new-checkpoint sensor benchmarks the baseline
    models as soon as the daemon starts in a new home)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return bool(instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=1))


def ready(name: str, port: int, token: str, home: Path, pid: int, log_path: Path) -> bool:
    if name == "ui":
        # Stopped with a run in flight: dagster dev's code server waits for its runs, which is what
        # once kept `rmforge ui` running for minutes after the stop.
        return answers(f"http://127.0.0.1:{port}/server_info") and llm_ready(token) and a_run_in_flight(home)
    if name == "run":  # the instance exists once step 1 is announced (opening it earlier races its creation)
        return "1. data" in log_path.read_text(errors="replace") and first_step_started(home, pid)
    return answers(f"http://127.0.0.1:{port}/health")


def stops_for(name: str) -> list[str]:
    # Ray's own processes share the driver's fate (Ray starts them with a parent-death signal).
    return [stop for stop in STOPS if not (name == "serve" and STOPS[stop][0] == signal.SIGKILL)]


class Case:
    """One command stopped one way: started at once, signalled as soon as it is ready."""

    def __init__(self, name: str, stop: str, folder: Path):
        self.name, self.stop, self.folder = name, stop, folder
        self.token = uuid.uuid4().hex
        self.port = free_port()
        self.home = folder / "home"
        env = dagster_env(self.home, folder / "data", **{MARKER_ENV: self.token, "RMFORGE_DATASET_LIMIT": "40"})
        for variable in ("RMFORGE_LLM_BASE_URL", "RMFORGE_RAY_ADDRESS", "RAY_ADDRESS"):
            env.pop(variable, None)  # the embedded server and a local Ray: what this test stops
        self.log_path = folder / f"{name}.log"
        with open(self.log_path, "w") as log:
            # Its own process group, as a shell gives a job: the group is what Ctrl-C reaches.
            # SIGINT at its default, as a terminal starts a command (a test run started in the
            # background by a shell would hand down SIGINT ignored: Ctrl-C is then not Ctrl-C).
            self.process = subprocess.Popen(["env", "--default-signal=INT", *command_for(name, self.port)], cwd=ROOT,
                                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started: list[psutil.Process] = []
        self.ports: set[int] = set()
        self.signalled_at: float | None = None
        self.left: list[str] = []
        self.held: set[int] = set()
        self.exited_s = self.settled_s = float("nan")  # seconds from the signal

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2500:]

    def ready(self) -> bool:
        assert self.process.poll() is None, f"rmforge {self.name} exited early:\n{self.log_tail()}"
        return ready(self.name, self.port, self.token, self.home, self.process.pid, self.log_path)

    def signal(self) -> None:
        self.started = marked(self.token)
        self.ports = listening_ports({p.pid for p in self.started})
        assert len(self.started) > 1 and self.ports, f"nothing to stop: {self.started} {self.ports}"
        signum, to_group = STOPS[self.stop]
        self.signalled_at = time.monotonic()
        (os.killpg if to_group else os.kill)(self.process.pid, signum)

    def poll(self) -> bool:
        """Whether the command and everything it started are gone (or the time is up); notes when."""
        now = time.monotonic() - self.signalled_at
        if self.process.poll() is None and now < STOP_TIMEOUT_S:
            return False
        if self.exited_s != self.exited_s:  # nan: the first poll that finds it exited
            self.exited_s = now
        left = marked(self.token)
        if left and now < STOP_TIMEOUT_S + SETTLE_TIMEOUT_S:
            return False
        self.settled_s = now
        self.left = [f"{p.pid} {' '.join(p.cmdline())[:100]}" for p in left if p.is_running()]
        everything = {c.pid for c in psutil.net_connections(kind="inet") if c.pid}
        self.held = listening_ports(everything) & self.ports
        return True

    def clean_up(self) -> None:
        for proc in marked(self.token):  # whatever the assertions say, the machine is left clean
            proc.kill()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def problem(self) -> str | None:
        code = self.process.returncode
        # Stopped politely, it exits by itself: a negative code is death by a signal (Ray's
        # core-worker handler used to abort `rmforge serve` on SIGTERM: -6) instead of its cleanup.
        died = code is not None and code < 0 and STOPS[self.stop][0] != signal.SIGKILL
        if code is None or died or self.left or self.held:
            return (f"rmforge {self.name}, {self.stop}: exit code {code}, left behind "
                    f"{self.left}, ports held {sorted(self.held)}\n{self.log_tail()}")
        return None

    def line(self) -> str:
        return (f"rmforge {self.name}, {self.stop}: {len(self.started)} processes, {len(self.ports)} ports; "
                f"exited in {self.exited_s:.1f}s, all gone in {self.settled_s:.1f}s (exit code {self.process.returncode})")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["ui", "run", "serve"])
def test_a_stopped_command_leaves_no_process_and_no_port(name, tmp_path):
    """Every way of stopping the command at once (one instance each, in parallel: the file stays
    within a few minutes on 2 cores); each is signalled as soon as it is ready."""
    cases = [Case(name, stop, tmp_path / f"case{k}") for k, stop in enumerate(stops_for(name))]
    try:
        waiting = list(cases)

        def all_signalled():
            for case in list(waiting):
                if case.ready():
                    case.signal()
                    waiting.remove(case)
            return not waiting

        wait_until(all_signalled, 300, f"every rmforge {name} to be ready", interval_s=0.5)
        stopping = list(cases)
        while stopping:
            stopping = [case for case in stopping if not case.poll()]
            time.sleep(0.2)
    finally:
        for case in cases:
            case.clean_up()
    for case in cases:
        print("\n" + case.line(), end="")
    problems = [p for case in cases if (p := case.problem())]
    assert problems == [], "\n\n".join(problems)
