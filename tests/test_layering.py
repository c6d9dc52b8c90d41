"""The layers import only downwards: rm_rewards < training < rm_resources < rm_assets < dagster_project.

Every import in every module counts, including those inside functions (heavy imports live there),
and relative imports are resolved. Neither rm_rewards nor training may import Dagster: the library
and the trainer run where Dagster is not installed (verl's venv). The one exception is the Pipes
*client* (`dagster_pipes`, a dependency-free protocol package) in the verl entry point, which runs
inside verl's venv and reports back to the Dagster step that launched it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("rm_rewards", "training", "rm_resources", "rm_assets", "dagster_project")
RANK = {name: rank for rank, name in enumerate(LAYERS)}
DAGSTER_FREE = ("rm_rewards", "training")
PIPES_CLIENT_ALLOWED = {"training/verl_pipes_entry.py"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


def _files(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if ".venv" not in p.parts)


def test_every_layer_has_code():
    for layer in LAYERS:
        assert _files(layer), f"no modules found under {layer}/"


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_down_the_layers(layer):
    wrong = []
    for path in _files(layer):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in RANK and RANK[top] > RANK[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({top} is above {layer})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("layer", DAGSTER_FREE)
def test_library_and_trainer_do_not_import_dagster(layer):
    wrong = []
    for path in _files(layer):
        relative = path.relative_to(ROOT).as_posix()
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top == "dagster_pipes" and relative in PIPES_CLIENT_ALLOWED:
                continue
            if top == "dagster" or top.startswith("dagster_"):
                wrong.append(f"{relative}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The walk resolves relative imports and finds imports inside functions."""
    package = tmp_path / "rm_rewards" / "sub"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def f():\n    from ...rm_assets import partitions\n    import dagster as dg\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = dict((m, line) for line, m in _imports(package / "mod.py"))
    assert found == {"rm_assets": 2, "dagster": 3}
