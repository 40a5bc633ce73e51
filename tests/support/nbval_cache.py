"""Keep what nbval executed: a chapter run under nbval becomes the book's cached execution, so it runs once.

nbval executes every code cell of a chapter in one kernel and keeps each cell's outputs on
its test item. When every cell of a chapter has passed, this plugin writes the executed
notebook to ``build/executed/<profile>/`` and into the Jupyter Book execution cache of that
profile (``_build/<profile>/_build/.jupyter_cache``, the folder ``make book`` uses), keyed,
as Jupyter Book keys it, by the code of the cells. The book build that follows finds every
chapter there and executes none of them again; a chapter with a failing cell is not cached.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book"))
from cdtl_book.executed import SECONDS_KEY, book_cache_dir  # noqa: E402


def executed_dir(profile: str) -> Path:
    """Where the executed chapters of a test session are kept for a reader (build artefacts)."""
    return ROOT / "build" / "executed" / profile


@dataclass
class _Run:
    """One chapter under nbval: the outputs of its cells as they pass."""

    notebook: nbformat.NotebookNode
    expected: int  # code cells, one nbval item each
    outputs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0
    failed: bool = False
    started: float = field(default_factory=time.time)


_runs: dict[Path, _Run] = {}
written: dict[str, Path] = {}  # chapter stem -> cache it was written to, in this session
failed: set[str] = set()  # chapters with a failing cell in this session (not cached)


def _is_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item, "cell_num")


def _output(raw: Any, count: int) -> nbformat.NotebookNode:
    """One nbval output message as a notebook output."""
    kind = raw["output_type"]
    if kind == "stream":
        return nbformat.v4.new_output("stream", name=raw["name"], text=raw["text"])
    if kind in ("display_data", "execute_result"):
        out = nbformat.v4.new_output(kind, data=raw.get("data", {}), metadata=raw.get("metadata", {}))
        if kind == "execute_result":
            out.execution_count = count
        return out
    return nbformat.v4.new_output("error", ename=raw["ename"], evalue=raw["evalue"], traceback=raw["traceback"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    if not _is_cell(item) or call.when != "call":
        return
    report = outcome.get_result()
    path = Path(str(item.fspath))
    run = _runs.get(path)
    if run is None:
        notebook = copy.deepcopy(item.parent.nb)
        expected = sum(cell.cell_type == "code" for cell in notebook.cells)
        run = _runs[path] = _Run(notebook=notebook, expected=expected)
    run.seconds += call.duration
    run.failed = run.failed or report.failed
    run.outputs[item.cell_num] = list(item.test_outputs or [])
    if len(run.outputs) == run.expected:
        del _runs[path]
        if run.failed:
            failed.add(path.stem)
        else:
            _write(path, run)


def _write(path: Path, run: _Run) -> None:
    """The executed chapter, into the artefact folder and the book's execution cache of this profile."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from cdtl.profiles import choose

    profile = choose()[0]
    notebook = run.notebook
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code):
        cell.execution_count = number + 1
        cell.outputs = [_output(raw, number + 1) for raw in run.outputs[number]]
    notebook.metadata.setdefault("cdtl", {})[SECONDS_KEY] = round(run.seconds, 1)  # for a book built from this copy
    nbformat.validate(notebook)
    out = executed_dir(profile) / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".ipynb.part")
    nbformat.write(notebook, partial)
    partial.replace(out)
    cache_dir = book_cache_dir(profile)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(cache_dir))
    cache.cache_notebook_bundle(
        CacheBundleIn(notebook, str(path), data={"execution_seconds": run.seconds, "executed_by": "nbval"}),
        check_validity=False, overwrite=True,
    )
    written[path.stem] = cache_dir
