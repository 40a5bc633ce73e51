"""Data flows one way through cdtl's stages: a lower floor never imports a higher one, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cdtl"

# floor -> the packages it must never import (at module level or inside a function)
FORBIDDEN = {
    "data": ("cdtl.encoders", "cdtl.models", "cdtl.train", "cdtl.serve", "cdtl.experiments"),
    "encoders": ("cdtl.models", "cdtl.train", "cdtl.serve", "cdtl.experiments"),
    "train": ("cdtl.serve", "cdtl.experiments"),
    "models": ("cdtl.serve", "cdtl.experiments"),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import statement in a file, wherever it sits."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_imported_modules_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\n\ndef f():\n    from cdtl.train import fit\n    return fit\n")
    assert imported_modules(source) == [(1, "os"), (4, "cdtl.train")]


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_a_lower_floor_never_imports_a_higher_one(floor: str):
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in sorted((PACKAGE / floor).rglob("*.py"))
        for line, module in imported_modules(path)
        if module.startswith(FORBIDDEN[floor])
    ]
    assert not bad, "imports against the flow of data:\n" + "\n".join(bad)
