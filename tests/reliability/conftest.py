"""Order inside tests/reliability/: the shutdown tests run first.

Known and not yet explained (stop 16 note on issue 10): in a full `make test` from a fresh clone,
the `ui` and `serve` shutdown cases failed (the command still running 120 s after the signal) when
they ran after the other reliability files, while they pass alone, after test_secrets, and first.
Until the interference is found, they run before the files that start Ray, dagster dev and fault
servers, so `make test` checks what they are meant to check. Remove this hook once it is found.
"""

from __future__ import annotations


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: 0 if "reliability/test_shutdown.py" in item.nodeid else 1)
