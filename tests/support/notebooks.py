"""Helpers for chapter tests: the chapters of the book and their recorded results."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import yaml

from cdtl.nb import read_records

ROOT = Path(__file__).resolve().parents[2]
GLUE = re.compile(r"\{glue(?::text|:md)?\}`([^`:]+)(?::[^`]*)?`")


def toc_pages() -> list[str]:
    """Every page listed in _toc.yml (paths without suffix), in book order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []) + entry.get("chapters", []))

    walk(toc.get("chapters", []) + [c for part in toc.get("parts", []) for c in part.get("chapters", [])])
    return files


def toc_files() -> list[Path]:
    """Every chapter (an executable notebook under chapters/) listed in _toc.yml, in book order."""
    return [ROOT / f"{page}.ipynb" for page in toc_pages() if page.startswith("chapters/")]


def chapter_records(path: Path) -> dict[str, Any]:
    """The results a chapter recorded in this test session (under nbval), else from a fresh execution."""
    saved = Path(os.environ["CDTL_RECORD_DIR"]) / f"{path.stem}.json"
    if saved.exists():
        return json.loads(saved.read_text())
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    os.environ["CDTL_NOTEBOOK"] = path.stem
    NotebookClient(book, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return read_records_from(book)


def read_records_from(book: nbformat.NotebookNode) -> dict[str, Any]:
    """Records of an in-memory executed notebook."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as fh:
        nbformat.write(book, fh)
    try:
        return read_records(fh.name)
    finally:
        os.unlink(fh.name)


def glued_keys(cells: list[nbformat.NotebookNode]) -> set[str]:
    """Every key the chapter's prose pastes with {glue}, {glue:text} or {glue:md}."""
    return set(GLUE.findall("\n".join(cell.source for cell in cells if cell.cell_type == "markdown")))
