"""Child processes that end with the process that started them, even when it is killed with -9.

A parent that stops cleanly stops its children itself (`rmforge ui` stops dagster dev and the
embedded LLM server on Ctrl-C and on SIGTERM). A parent killed with SIGKILL (the out-of-memory
killer, `kill -9`, a supervisor giving up) runs no cleanup: its children are re-parented and would
keep their ports and memory forever. `module_command` starts a Python module under a watcher
thread that sees the re-parenting (`os.getppid()` changes) and sends the child SIGTERM, so it shuts
down as it would on a clean stop; if it is still there after a grace period, it kills what it
started and exits hard.

A thread polling the parent id rather than `PR_SET_PDEATHSIG`: the death signal fires when the
*thread* that forked the child exits, so a server started from a worker thread (a Dagster step, a
test fixture) would be killed while its process is alive; and it is Linux only.
"""

from __future__ import annotations

import os
import sys

POLL_S = 0.5
GRACE_S = 30  # dagster dev stops a webserver, a daemon and a code server on SIGTERM

_WATCH_THEN_RUN = f"""
import os, runpy, signal, sys, threading, time
parent = int(sys.argv[1])
if os.getppid() != parent:  # the parent died before this line: nobody is left to stop us
    sys.exit(1)
def watch():
    while os.getppid() == parent:
        time.sleep({POLL_S})
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep({GRACE_S})
    try:  # still here: what it started goes too (dagster dev's code server waits on runs in flight)
        import psutil
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
    finally:
        os._exit(1)
threading.Thread(target=watch, name="parent-watch", daemon=True).start()
# A command started in the background by a shell inherits SIGINT ignored, and dagster dev maps
# SIGTERM to SIGINT's handler: it would then ignore both, and only the grace period above would end
# it. The module gets Python's own Ctrl-C handler, as from a terminal.
signal.signal(signal.SIGINT, signal.default_int_handler)
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def module_command(module: str, args: list[str]) -> list[str]:
    """The argv of `python -m module args...` that ends when this process is gone."""
    return [sys.executable, "-c", _WATCH_THEN_RUN, str(os.getpid()), module, *args]
