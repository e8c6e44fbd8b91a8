"""The arrows between the top-level packages point one way (docs/architecture.md).

``common`` is the bottom layer: the processes (``services``), the simulator (``sim``), the command
line (``cli``) and the benchmarks build on it, never the other way round. Every import is read from
the source (including the ones inside functions and under ``TYPE_CHECKING``), so a lazy import
cannot hide an arrow that runs back up.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# package -> the top-level packages it must never import
FORBIDDEN = {
    "common": {"sim", "cli", "services", "bench", "tests"},
    "services": {"sim", "cli", "bench", "tests"},
}


def imported_modules(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def arrows_back_up(package: str) -> list[str]:
    forbidden = FORBIDDEN[package]
    return [
        f"{path.relative_to(REPO)} imports {module}"
        for path in sorted((REPO / package).rglob("*.py"))
        for module in imported_modules(path)
        if module.split(".")[0] in forbidden
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_never_import_upper_ones(package: str) -> None:
    assert arrows_back_up(package) == []


def test_the_scan_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from sim.engine import Exchange\n    import cli.main\n")
    assert list(imported_modules(source)) == ["sim.engine", "sim.engine.Exchange", "cli.main"]


def test_engine_and_groups_do_not_import_each_other() -> None:
    engine = set(imported_modules(REPO / "sim" / "engine.py"))
    groups = set(imported_modules(REPO / "sim" / "groups.py"))
    engine_uses_groups = any(m.startswith("sim.groups") for m in engine)
    groups_use_engine = any(m.startswith("sim.engine") for m in groups)
    assert not (engine_uses_groups and groups_use_engine)
