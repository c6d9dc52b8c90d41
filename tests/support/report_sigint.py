"""Prints the SIGINT handler this process runs with (tests/test_parent_watch.py starts it)."""

import signal

handler = signal.getsignal(signal.SIGINT)
print(getattr(handler, "__name__", repr(handler)), flush=True)
