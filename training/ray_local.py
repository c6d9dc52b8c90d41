"""Starting Ray for rmforge: one place that says how (training, rule scoring and serving call it).

`init_ray(address)` connects to a cluster, or starts a small local Ray for this project's 2-core
machines (`num_cpus` CPUs, no dashboard, a 200 MB object store), quiet at the source: workers'
output stays in Ray's log files (`log_to_driver=False`), Ray's logger shows `logging_level` and
above, and its one-time token-authentication notice stays out of the console.

It also keeps the process's own SIGTERM and SIGINT handlers. `ray.init` replaces them: a Python
SIGTERM handler of its own, and under it, in C, the failure-signal handler of Ray's core worker,
which on SIGTERM prints a stack trace and aborts (exit 134): `rmforge serve` stopped by a
supervisor while it was deploying, or `rmforge run` stopped during training, died that way
instead of running its cleanup. Putting the Python handlers back reinstalls Python's own.
"""

from __future__ import annotations

import logging
import signal
import threading

LOCAL_OBJECT_STORE_BYTES = 200 * 1024 * 1024
# Ray's one-time notice that a local cluster uses token authentication (the secure default).
RAY_AUTH_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
_KEPT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def init_ray(address: str | None, *, num_cpus: int = 2, logging_level: int = logging.WARNING) -> bool:
    """Connect to `address`, or start a small local Ray; True when this call started or joined
    it (the caller shuts it down), False when Ray was already initialised in this process."""
    import ray

    if ray.is_initialized():
        return False
    in_main_thread = threading.current_thread() is threading.main_thread()
    handlers = {signum: signal.getsignal(signum) for signum in _KEPT_SIGNALS} if in_main_thread else {}
    notice = logging.getLogger(RAY_AUTH_NOTICE_LOGGER)
    notice_level = notice.level
    notice.setLevel(logging.ERROR)
    quiet = {"log_to_driver": False, "configure_logging": True, "logging_level": logging_level}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                     **quiet)
    finally:
        notice.setLevel(notice_level)
        for signum, handler in handlers.items():
            if handler is not None:  # None: set outside Python, nothing of ours to put back
                signal.signal(signum, handler)
    return True


__all__ = ["LOCAL_OBJECT_STORE_BYTES", "init_ray"]
