"""The book as a reader gets it: built once per test session (smoke profile, warnings as errors) and served locally.

In ``make test`` nbval has executed every chapter just before, and ``tests/support/nbval_cache.py``
has put those executions into the book's execution cache, so this build executes nothing:
it renders what the tests ran. Run alone (``pytest tests/book/test_rendered.py``), it executes
whatever the cache lacks, as ``make book`` would.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import nbval_cache
import pytest
from loopback import loopback
from notebooks import ROOT, toc_files

PROFILE = "smoke"
OUT = ROOT / "_build" / PROFILE
HTML = OUT / "_build" / "html"
LOG = ROOT / "build" / f"book-{PROFILE}.log"
NOTEBOOK_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass(frozen=True)
class Build:
    """A finished build: where its pages are, how long it took, and which chapters it had to execute."""

    html: Path
    seconds: float
    cached_before: frozenset[str]  # chapters already in the execution cache when the build started
    executed: frozenset[str]  # chapters the build executed itself


def _jupyter_book() -> str:
    found = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("jupyter-book is not installed in this environment: install the 'book' extra (make install)")
    return found


def cached(chapter: Path, profile: str = PROFILE) -> bool:
    """Whether the book's execution cache of ``profile`` holds an execution of this chapter's current code."""
    from jupyter_cache import get_cache

    cache_dir = nbval_cache.book_cache_dir(profile)
    if not (cache_dir / "global.db").exists():
        return False
    try:
        get_cache(str(cache_dir)).match_cache_notebook(nbformat.read(chapter, as_version=4))
    except KeyError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def build() -> Build:
    """Build the book once per session (``-W --keep-going``); a failed build fails the test with the log's tail."""
    if nbval_cache.failed:
        pytest.fail(f"the book is not built: {sorted(nbval_cache.failed)} failed under nbval (their errors are above)")
    chapters = toc_files()
    before = frozenset(chapter.stem for chapter in chapters if cached(chapter))
    env = dict(os.environ, CDTL_PROFILE=PROFILE, MPLBACKEND=NOTEBOOK_BACKEND)
    started = time.perf_counter()
    result = subprocess.run(
        [_jupyter_book(), "build", str(ROOT), "--path-output", str(OUT), "-W", "--keep-going"],
        capture_output=True, text=True, env=env, timeout=3600,
    )
    seconds = time.perf_counter() - started
    log = result.stdout + result.stderr
    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.write_text(log)
    if result.returncode != 0:
        problems = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
        pytest.fail("the book build failed (warnings are errors), full log in "
                    f"{LOG}:\n" + "\n".join(problems[-30:] or log.splitlines()[-40:]))
    executed = frozenset(Path(path).stem for path in re.findall(r"(\S+\.ipynb): Executing notebook", log))
    return Build(html=HTML, seconds=seconds, cached_before=before, executed=executed)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    with loopback(functools.partial(_Quiet, directory=str(folder))) as url:
        yield f"{url}/"
