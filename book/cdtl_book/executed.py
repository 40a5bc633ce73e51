"""Build the book from chapters executed elsewhere, so a runner without the hours or the GPU can publish the full profile.

``make test-full`` (a CPU) and ``make test-gpu`` (the GPU runner) leave every chapter they
executed, outputs and all, in ``build/executed/<profile>/``; the workflows keep that folder
as an artefact. This module puts those executions into the book's execution cache
(``_build/<profile>/_build/.jupyter_cache``), keyed, as Jupyter Book keys them, by the code of
the cells, so ``jupyter-book build`` then executes nothing. It refuses, naming the file, a
chapter that is missing, whose code differs from the chapter in ``chapters/`` (it was executed
from other code), or that holds an error output: the book never shows outputs of other code.

    python book/cdtl_book/executed.py build/executed/full --profile full    # then: make book-executed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SECONDS_KEY = "execution_seconds"  # where nbval's plugin leaves a chapter's measured time in its executed copy


class ExecutedError(ValueError):
    """An executed chapter that cannot stand for the chapter in ``chapters/``."""


def book_cache_dir(profile: str, root: Path = ROOT) -> Path:
    """The execution cache of the book built for ``profile`` (``make book`` builds into ``_build/<profile>``)."""
    return root / "_build" / profile / "_build" / ".jupyter_cache"


def _code(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def check_executed(executed: Path, chapter: Path) -> nbformat.NotebookNode:
    """The executed copy of ``chapter``, after checking it is this chapter's code with every cell run and no error."""
    if not executed.is_file():
        raise ExecutedError(f"{executed}: missing; execute {chapter.name} in this profile first (make test-full)")
    notebook = nbformat.read(executed, as_version=4)
    ours, theirs = _code(nbformat.read(chapter, as_version=4)), _code(notebook)
    if ours != theirs:
        first = next((n for n, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        raise ExecutedError(f"{executed}: code cell {first} differs from {chapter} (it was executed from other code); "
                            "execute the chapter again")
    for number, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        if cell.get("execution_count") is None:
            raise ExecutedError(f"{executed}: code cell {number} was never executed")
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            raise ExecutedError(f"{executed}: code cell {number} ended in an error")
    return notebook


def cache_executed(source: Path, profile: str, chapters: Path | None = None, cache_dir: Path | None = None) -> list[str]:
    """Put the executed copy of every chapter into the book's cache for ``profile``; the chapters' stems, in order.

    Every chapter is checked before any is cached, so a refusal leaves the cache as it was.
    """
    from jupyter_cache import get_cache  # optional: the book extra
    from jupyter_cache.base import CacheBundleIn

    chapters = chapters or ROOT / "chapters"
    pages = sorted(chapters.glob("*.ipynb"))
    if not pages:
        raise ExecutedError(f"{chapters}: no chapters (*.ipynb) to build")
    checked = [(page, check_executed(Path(source) / page.name, page)) for page in pages]
    cache_dir = cache_dir or book_cache_dir(profile)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(cache_dir))
    for page, notebook in checked:
        data = {"executed_by": f"executed copy in {source}"}
        seconds = notebook.metadata.get("cdtl", {}).get(SECONDS_KEY)
        if seconds is not None:
            data[SECONDS_KEY] = float(seconds)
        cache.cache_notebook_bundle(CacheBundleIn(notebook, str(page), data=data), check_validity=False, overwrite=True)
    return [page.stem for page in pages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of executed chapters, e.g. build/executed/full")
    parser.add_argument("--profile", required=True, choices=("smoke", "full"))
    args = parser.parse_args(argv)
    try:
        stems = cache_executed(args.source, args.profile)
    except ExecutedError as err:
        print(f"executed.py: {err}", file=sys.stderr)
        return 2
    print(f"{len(stems)} executed chapters cached for the {args.profile} book: {book_cache_dir(args.profile)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
