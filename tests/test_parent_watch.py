"""`rm_resources.parent_watch.module_command`: the module it runs answers Ctrl-C as from a terminal,
even when this process was started with SIGINT ignored (a shell's background job is), since
dagster dev maps SIGTERM to whatever SIGINT's handler is and would otherwise ignore both."""

from __future__ import annotations

import signal
import subprocess
import sys

from rm_resources.parent_watch import module_command
from tests.support.dagster_dev import ROOT


def _sigint_handler_of(command: list[str]) -> str:
    # The child starts with SIGINT ignored, as under `cmd &` in a script (SIG_IGN survives exec).
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_watched_module_gets_python_s_ctrl_c_handler_back():
    assert _sigint_handler_of(module_command("tests.support.report_sigint", [])) == "default_int_handler"
    # The control: started directly, the same module keeps SIGINT ignored.
    assert _sigint_handler_of([sys.executable, "-m", "tests.support.report_sigint"]) == "<Handlers.SIG_IGN: 1>"
