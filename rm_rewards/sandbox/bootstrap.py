"""The sandbox's child bootstrap: what runs inside the new process tree before the program.

The supervisor (`rm_rewards.sandbox.supervisor`) starts this file as a script, by path:
`python -I -S bootstrap.py CONFIG STATUS_FD` (in isolated mode, without site-packages), so it
imports only the standard library and nothing of rm_rewards.

The launcher (as the caller, in the new session) enters the namespaces and prepares the mounts,
forks the reaper (pid 1 of the new pid namespace), which forks the program; the program's
process sets the resource limits, drops to the run's uid, sets no-new-privs and execs
`python -I -S -B main.py` (or, without namespaces, the socket guard and then main.py). Status
lines go to STATUS_FD: "isolation a,b,c", then "exit N" or "signal N", or "setup-error WHY".
What each step defends against is in the supervisor's docstring.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

# The program's file name in the work dir (the supervisor writes it there).
PROGRAM_FILE = "main.py"

# Linux clone/mount flags (<sched.h>, <sys/mount.h>); ctypes because os.unshare is 3.12+.
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
PR_SET_NO_NEW_PRIVS = 38
HIDDEN_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run")

_GUARD = """
import socket
class _NoNetworkSocket(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None, _inet=(-1, socket.AF_INET, socket.AF_INET6)):
        if family in _inet and fileno is None:
            raise PermissionError("network access is disabled in this sandbox")
        super().__init__(family, type, proto, fileno)
socket.socket = socket.SocketType = _NoNetworkSocket
import runpy
runpy.run_path("main.py", run_name="__main__")
"""


_LIBC = None


def _libc():
    """libc through ctypes, loaded once while still privileged (after the uid drop the
    interpreter's own standard library may be unreadable)."""
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def encode(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    _check(
        _libc().mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}"
    )


def _status(fd: int, line: str) -> None:
    os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))


def _enter_namespaces(config: dict) -> list[str]:
    """unshare into new namespaces; [] when that is impossible here (then: fallback mode)."""
    if not config["namespaces"]:
        return []
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    rootless = os.geteuid() != 0
    if rootless:
        flags |= CLONE_NEWUSER
    uid, gid = os.getuid(), os.getgid()
    if _libc().unshare(flags) != 0:
        return []
    if rootless:  # map ourselves to ourselves: the program stays an ordinary uid, without caps
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    tags = ["net-namespace", "pid-namespace", "mount-namespace", "ipc-namespace"]
    return tags + (["user-namespace"] if rootless else [])


def _prepare_mounts(config: dict) -> list[str]:
    """Private mounts: hidden temp dirs, a tmpfs work dir holding the program, and a read-only
    rest of the tree. Returns extra isolation tags."""
    workdir, uid = config["workdir"], config["uid"]
    owner = uid if uid is not None else os.getuid()
    with open(os.path.join(workdir, PROGRAM_FILE), "rb") as handle:
        program = handle.read()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    hidden = True
    for path in HIDDEN_TEMP_DIRS:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777")
        except OSError:
            hidden = False  # still read-only below, just not emptied
    hidden_caller = True
    for path in config.get("hide", ()):
        try:
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=0755")
        except OSError:
            hidden_caller = False
    os.makedirs(workdir, exist_ok=True)
    size = config["limits"]["disk_mb"]
    _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,mode=0700,uid={owner},gid={owner}")
    program_path = os.path.join(workdir, PROGRAM_FILE)
    with open(program_path, "wb") as handle:
        handle.write(program)
    os.chown(program_path, owner, owner)
    tags = ["private-tmp"] if hidden else []
    tags += ["hidden-caller-dirs"] if hidden_caller else []
    return tags + (["read-only-root"] if _remount_read_only(except_path=workdir) else [])


def _mount_points() -> list[str]:
    import re

    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            raw = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), raw))
    return sorted(set(points), key=len)


def _remount_read_only(except_path: str) -> bool:
    """Remount every mount read-only except the work dir; True when `/` itself succeeded."""
    keep = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC}
    keep.update({os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME})
    root_done = False
    for point in _mount_points():
        if point == except_path:
            continue
        try:
            existing = os.statvfs(point).f_flag
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            flags |= sum(ms for st, ms in keep.items() if existing & st)
            _mount(None, point, None, flags)
            root_done = root_done or point == "/"
        except OSError:
            continue  # best effort below `/`: a mount we cannot touch keeps its flags
    return root_done


def _apply_limits(config: dict) -> None:
    limits = config["limits"]
    settings = [
        (resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1),
        (resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"]),
        (resource.RLIMIT_NPROC, config["nproc"], config["nproc"]),
        (resource.RLIMIT_FSIZE, limits["file_size_bytes"], limits["file_size_bytes"]),
        (resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in settings:
        resource.setrlimit(which, (soft, hard))


def _become_program(config: dict, status_fd: int, in_namespaces: bool) -> None:
    """In the forked child: limits, unprivileged uid, then exec the program. Never returns."""
    try:
        os.set_inheritable(status_fd, False)  # the program must not forge status lines
        os.chdir(config["workdir"])
        _apply_limits(config)
        uid = config["uid"]
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        argv = [config["python"], "-I", "-S", "-B", "-X", "utf8"]
        argv += [PROGRAM_FILE] if in_namespaces else ["-c", _GUARD]
        os.execve(config["python"], argv, dict(os.environ))
    except BaseException as exc:  # noqa: BLE001 - anything here is a sandbox failure
        _status(status_fd, f"setup-error starting the program: {exc!r}")
    os._exit(127)


def _silence_stdio() -> None:
    """The launcher and reaper let go of the program's pipes, so they close with the program."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _arm_watchdog(seconds: int, as_init: bool) -> None:
    """The parent enforces the wall clock; if the parent itself dies, this alarm still ends
    the run a little later instead of leaving a sleeping program behind forever."""

    def expire(signum, frame) -> None:
        if not as_init:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(1)  # as pid 1 this takes the whole namespace with it

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def _reap_until(program_pid: int, status_fd: int, any_child: bool) -> None:
    """Wait for the program (reaping orphans on the way when we are pid 1), report, exit."""
    _silence_stdio()
    while True:
        pid, wait_status = os.waitpid(-1 if any_child else program_pid, 0)
        if pid == program_pid:
            break
    if os.WIFSIGNALED(wait_status):
        _status(status_fd, f"signal {os.WTERMSIG(wait_status)}")
    else:
        _status(status_fd, f"exit {os.waitstatus_to_exitcode(wait_status)}")
    os._exit(0)  # as pid 1: the kernel now kills everything left in the namespace


def _bootstrap(config: dict, status_fd: int) -> None:
    _libc()
    tags = _enter_namespaces(config)
    if tags:
        try:
            tags += _prepare_mounts(config)
        except OSError as exc:
            _status(status_fd, f"setup-error preparing mounts: {exc}")
            os._exit(1)
    else:
        tags = ["socket-guard"]
    tags += ["uid-drop"] if config["uid"] is not None else []
    _status(status_fd, "isolation " + ",".join(tags))
    in_namespaces = "net-namespace" in tags
    reaper = os.fork() if in_namespaces else 0
    if reaper:  # the launcher: wait for the reaper, then go
        _silence_stdio()
        os.waitpid(reaper, 0)
        os._exit(0)
    if in_namespaces:
        try:  # the pid namespace's own /proc: the program sees only its own processes
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            pass
    program = os.fork()
    if program == 0:
        _become_program(config, status_fd, in_namespaces)
    _arm_watchdog(config["watchdog_s"], as_init=in_namespaces)
    _reap_until(program, status_fd, any_child=in_namespaces)


def _main(argv: list[str]) -> None:
    config, status_fd = json.loads(argv[1]), int(argv[2])
    try:
        _bootstrap(config, status_fd)
    except BaseException as exc:  # noqa: BLE001 - whatever broke, the parent must hear of it
        try:
            _status(status_fd, f"setup-error {exc!r}")
        finally:
            os._exit(1)


if __name__ == "__main__":
    _main(sys.argv)
