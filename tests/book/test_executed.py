"""A book built from chapters executed elsewhere: their executions enter the cache only when they are these chapters' code."""

from __future__ import annotations

import sys

import nbformat
import pytest
from notebooks import ROOT

sys.path.insert(0, str(ROOT / "book"))
from cdtl_book.executed import SECONDS_KEY, ExecutedError, cache_executed, main  # noqa: E402

jupyter_cache = pytest.importorskip("jupyter_cache")


def _chapter(folder, name: str, sources: list[str]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A page")] +
                                        [nbformat.v4.new_code_cell(src) for src in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)
    return notebook


def _executed(folder, name: str, chapter: nbformat.NotebookNode, seconds: float | None = 12.5,
              error: bool = False) -> None:
    notebook = nbformat.from_dict(chapter)
    for number, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        cell.execution_count = number + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {number}\n")]
    if error:
        cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    if seconds is not None:
        notebook.metadata["cdtl"] = {SECONDS_KEY: seconds}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)


@pytest.fixture
def pair(tmp_path):
    chapters, executed = tmp_path / "chapters", tmp_path / "executed"
    first = _chapter(chapters, "01_a.ipynb", ["x = 1", "print(x)"])
    second = _chapter(chapters, "02_b.ipynb", ["y = 2"])
    _executed(executed, "01_a.ipynb", first)
    _executed(executed, "02_b.ipynb", second, seconds=None)
    return chapters, executed, tmp_path / "cache"


def test_every_executed_chapter_enters_the_cache_where_the_book_finds_it(pair):
    chapters, executed, cache_dir = pair
    assert cache_executed(executed, "full", chapters, cache_dir) == ["01_a", "02_b"]
    cache = jupyter_cache.get_cache(str(cache_dir))
    records = {rec.uri.rsplit("/", 1)[-1]: rec for rec in cache.list_cache_records()}
    assert sorted(records) == ["01_a.ipynb", "02_b.ipynb"]
    assert records["01_a.ipynb"].data[SECONDS_KEY] == 12.5 and SECONDS_KEY not in records["02_b.ipynb"].data
    # the build looks a chapter up by its code: the unexecuted chapter matches the cached execution
    match = cache.match_cache_notebook(nbformat.read(chapters / "01_a.ipynb", as_version=4))
    cached = [cell for cell in cache.get_cache_bundle(match.pk).nb.cells if cell.cell_type == "code"]
    assert cached[1].outputs[0]["text"] == "out 1\n"


@pytest.mark.parametrize("damage, message", [
    ("missing", "missing; execute 02_b.ipynb"),
    ("other code", "code cell 0 differs"),
    ("error", "code cell 0 ended in an error"),
    ("unexecuted", "code cell 0 was never executed"),
])
def test_a_chapter_that_cannot_stand_for_its_page_is_refused_and_nothing_is_cached(pair, damage, message):
    chapters, executed, cache_dir = pair
    second = nbformat.read(chapters / "02_b.ipynb", as_version=4)
    if damage == "missing":
        (executed / "02_b.ipynb").unlink()
    elif damage == "other code":
        changed = nbformat.from_dict(second)
        changed.cells[1].source = "y = 3"
        _executed(executed, "02_b.ipynb", changed)
    elif damage == "error":
        _executed(executed, "02_b.ipynb", second, error=True)
    else:
        nbformat.write(second, executed / "02_b.ipynb")
    with pytest.raises(ExecutedError, match=message) as err:
        cache_executed(executed, "full", chapters, cache_dir)
    assert "02_b.ipynb" in str(err.value)
    assert not cache_dir.exists() or not jupyter_cache.get_cache(str(cache_dir)).list_cache_records()


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere"), "--profile", "full"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("executed.py: ") and "missing" in err and len(err.splitlines()) == 1
