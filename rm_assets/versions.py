"""Code versions derived from the code: a hash of the source files an asset runs.

Each asset names the modules and packages it calls (its own module included). The version is a
hash of those files' bytes, so editing any of them gives the asset a new code version, and the
Dagster UI marks it and everything downstream stale, exactly as a data change does.
Files are read, never imported: computing a version stays cheap in every step process.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def module_files(module: str) -> list[Path]:
    """The source files of a dotted module or package name under the project root."""
    base = PROJECT_ROOT.joinpath(*module.split("."))
    if base.is_dir():
        return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
    file = base.with_suffix(".py")
    if not file.is_file():
        raise ValueError(f"code_version: no module or package {module!r} under {PROJECT_ROOT}")
    return [file]


@lru_cache(maxsize=None)
def code_version(*modules: str) -> str:
    """A 12-hex-digit hash over the named modules' source files (paths and bytes)."""
    digest = hashlib.sha256()
    for module in sorted(set(modules)):
        for path in module_files(module):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
