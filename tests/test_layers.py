"""Data flows one way through cdtl's stages: a lower floor never imports a higher one, not even inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def _package_of(path: Path) -> str:
    """The dotted package a file of cdtl sits in (``cdtl.data`` for cdtl/data/amazon.py); "" outside cdtl."""
    try:
        return ".".join(path.resolve().parent.relative_to(PACKAGE.parent).parts)
    except ValueError:
        return ""


def imported_modules(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every import statement in a file (or in ``text`` read as that file), wherever it sits.

    A relative import is read as the absolute one it means, and ``from cdtl import train`` (or
    ``from .. import train``) as an import of ``cdtl.train``, so neither hides an edge.
    """
    found = []
    source = path.read_text(encoding="utf-8") if text is None else text
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = _package_of(path).split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            if base == "cdtl" or not node.module:  # the names are submodules: from cdtl import train
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            elif base:
                found.append((node.lineno, base))
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


def test_imported_modules_sees_relative_imports_and_subpackages_imported_by_name():
    text = "from cdtl import train\nfrom .. import models\nfrom ..encoders.users import mean_pool\nfrom . import tables\n"
    as_if_in_data = imported_modules(PACKAGE / "data" / "probe.py", text)  # read as if it were a module of cdtl.data
    assert as_if_in_data == [(1, "cdtl.train"), (2, "cdtl.models"), (3, "cdtl.encoders.users"), (4, "cdtl.data.tables")]


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_importing_a_floor_loads_no_higher_one(floor: str):
    """Importing every module of a floor, in a fresh interpreter, loads no module of a floor above it (edges via
    a third module count too)."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"import cdtl.{floor} as floor\n"
        "for info in pkgutil.walk_packages(floor.__path__, floor.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "print('\\n'.join(sorted(name for name in sys.modules if name.startswith('cdtl'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert f"cdtl.{floor}" in loaded and len([m for m in loaded if m.startswith(f"cdtl.{floor}.")]) > 2
    above = [name for name in loaded if name.startswith(FORBIDDEN[floor])]
    assert not above, f"importing cdtl.{floor} loads {above}"


def _imports_inside_functions(path: Path) -> list[int]:
    """The line of every import statement inside a function of ``path``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines += [inner.lineno for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom))]
    return sorted(set(lines))


def _says_why(source: list[str], line: int) -> bool:
    """Whether the import at ``line`` (1-based), or the comment line or ``try:`` just above its block, says why it
    is inside a function: it keeps an optional dependency optional, or it breaks an import cycle."""
    index = line - 1
    while index > 0 and source[index - 1].strip().startswith(("import ", "from ")):
        index -= 1  # the first import of a block of consecutive ones
    nearby = [source[line - 1], source[index - 1] if index > 0 else ""]
    return any(marker in text for text in nearby for marker in ("# optional:", "# cycle:"))


def test_says_why_reads_the_comment_above_a_block_of_imports():
    source = ["def f():", "    # optional: x is an extra", "    import x", "    import x.y", "    import z"]
    assert _says_why(source, 3) and _says_why(source, 4) and _says_why(source, 5)
    assert not _says_why(["def f():", "    import x"], 2)
    assert _says_why(["def f():", "    try:  # cycle: a imports b", "        import a"], 3)


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_an_import_inside_a_function_says_why_it_is_there(floor: str):
    """Imports belong at the top of a module; one inside a function must keep an optional dependency optional or
    break an import cycle, and a comment (``# optional: ...`` or ``# cycle: ...``) says which."""
    unexplained = []
    for path in sorted((PACKAGE / floor).rglob("*.py")):
        source = path.read_text(encoding="utf-8").splitlines()
        unexplained += [f"{path.relative_to(PACKAGE.parent)}:{line}: {source[line - 1].strip()}"
                        for line in _imports_inside_functions(path) if not _says_why(source, line)]
    assert not unexplained, "imports inside functions with no '# optional:' or '# cycle:' comment:\n" + "\n".join(
        unexplained)
