"""The exchange adapter stands alone: it takes plain values and never reaches for the settings or
the Redis schema (common/connect.py builds it from those)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ADAPTER = Path(__file__).resolve().parents[2] / "common" / "kalshi"
FORBIDDEN = ("common.settings", "common.schema", "common.keys", "common.redis_codec", "sim")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted(ADAPTER.rglob("*.py")), ids=lambda p: str(p.relative_to(ADAPTER))
)
def test_the_adapter_imports_neither_settings_nor_the_redis_schema(path: Path) -> None:
    bad = {
        name
        for name in imported_modules(path)
        for forbidden in FORBIDDEN
        if name == forbidden or name.startswith(forbidden + ".")
    }
    assert not bad, f"{path.relative_to(ADAPTER)} imports {sorted(bad)}"
