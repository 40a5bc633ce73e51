"""The book's shape: every chapter listed, the cells every chapter opens with, and a failing cell that fails the build.

The book itself is built, with warnings as errors, and read in a browser by tests/book/test_rendered.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from notebooks import ROOT, toc_files

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTERS = toc_files()


def test_toc_lists_every_chapter_and_only_existing_ones():
    on_disk = sorted((ROOT / "chapters").glob("*.ipynb"))
    assert sorted(CHAPTERS) == on_disk
    assert all(p.exists() for p in CHAPTERS)


def test_colab_launch_button_is_configured():
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["url"].startswith("https://github.com/")
    assert CONFIG["execute"]["execute_notebooks"] == "cache"
    assert CONFIG["execute"]["allow_errors"] is False


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_conventions(path: Path):
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    # committed without outputs: the build and the tests execute them
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    # 1: the Colab install cell, installing this repository (the address lives in _config.yml only)
    install = book.cells[0]
    assert install.cell_type == "code" and "%pip install" in install.source
    assert f'git+{CONFIG["repository"]["url"]}.git"' in install.source
    # 2: a papermill parameters cell with assignments only
    params = book.cells[1]
    assert params.cell_type == "code" and "parameters" in params.metadata.get("tags", [])
    assert "PROFILE = None" in params.source
    assert all(line.startswith(("#", " ")) or "=" in line for line in params.source.splitlines() if line.strip())
    # a chapter records its headline numbers and defines no classes of its own (the package owns them)
    assert any("cdtl.nb.record(" in c.source or "record(" in c.source for c in code)
    assert not any(line.startswith("class ") for c in code for line in c.source.splitlines())
    assert book.metadata["kernelspec"]["name"] == "python3"


def _jupyter_book() -> str:
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    if jb is None:
        pytest.fail("jupyter-book is not installed in this environment: install the 'book' extra")
    return jb


@pytest.mark.slow
def test_a_failing_cell_fails_the_build(tmp_path):
    """The book's execution settings turn a cell error into a build error, not a silent traceback."""
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    config = dict(CONFIG, sphinx=dict(CONFIG["sphinx"], local_extensions={"cdtl_book": str(ROOT / "book")}))
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ROOT / "references.bib", book)
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/broken\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Broken"), nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, book / "chapters" / "broken.ipynb")
    result = subprocess.run([_jupyter_book(), "build", str(book), "-W", "-q"], capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "ZeroDivisionError" in result.stdout + result.stderr
