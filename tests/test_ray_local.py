"""`training.ray_local.init_ray`: the one way rmforge starts Ray keeps the process's own SIGTERM
and SIGINT handlers (ray.init puts in its own, whose SIGTERM prints a stack and aborts)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.dagster_dev import ROOT

CHILD = r"""
import os, signal, sys
import ray
from training.ray_local import init_ray

def stopped(signum, frame):
    ray.shutdown()
    print("cleaned up after", signal.Signals(signum).name, flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, stopped)
if sys.argv[1] == "init_ray":
    assert init_ray(None, num_cpus=1) is True
    assert init_ray(None) is False  # already running: not this call's to shut down
else:
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
os.kill(os.getpid(), signal.SIGTERM)
signal.pause()
"""


def _stopped_after_start(how: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, how], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.slow
def test_a_sigterm_after_init_ray_reaches_the_process_own_handler():
    kept = _stopped_after_start("init_ray")
    assert (kept.returncode, kept.stdout) == (0, "cleaned up after SIGTERM\n"), kept.stderr[-2000:]
    # The control: a bare ray.init, and the same SIGTERM aborts in Ray's handler instead.
    bare = _stopped_after_start("ray.init")
    assert bare.returncode != 0 and "cleaned up" not in bare.stdout, (bare.returncode, bare.stdout)
