"""Where the real data samples bundled in the package live (each folder keeps its README/license)."""

from __future__ import annotations

from pathlib import Path

BUNDLED_DATA = Path(__file__).resolve().parent.parent / "bundled_data"


def bundled_path(*parts: str) -> Path:
    path = BUNDLED_DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"no bundled data at {path}")
    return path
