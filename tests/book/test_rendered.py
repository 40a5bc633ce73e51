"""Every page of the built book, opened in headless Chromium as a reader would, with no network.

The book (smoke profile, warnings as errors) is built from the chapters nbval has just
executed (tests/support/book_build.py) and served on 127.0.0.1; every request to any other host is
refused and reported. Each page must show its figures, rendered math, its tables, and no
traceback, error, warning box, raw LaTeX or path of the machine that built it. Solutions
start hidden and open on click. A full-page screenshot of one chapter is kept in
build/rendered/.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import book_build
import nbformat
import pytest
from notebooks import ROOT, toc_files, toc_pages

pytestmark = pytest.mark.notebooks  # reads the book built from the chapters nbval executed in this session

SHOTS = ROOT / "build" / "rendered"
SCREENSHOT_OF = "02_matrix_factorization"  # a chapter with formulas, figures, tables and training output
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# what must never show on a page: the building machine's paths (home, repository, interpreter, temporary files)
MACHINE_PATHS = sorted({str(ROOT), str(Path.home()) + "/", str(Path(sys.prefix)), "site-packages", "/tmp/"}, key=len)
RAW_LATEX = [re.compile(r"\$\$"), re.compile(r"\\\(|\\\)|\\\[|\\\]"), re.compile(r"\\begin\{"),
             re.compile(r"\$[^\s$][^$\n]*[^\s$\\]\$")]

# Inspects the rendered page: prose text (code blocks and rendered math left out), images, math, tables, outputs.
INSPECT = """() => {
  const prose = document.querySelector('main') || document.body;
  const copy = prose.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, mjx-assistive-mml, .MathJax').forEach(e => e.remove());
  const outputs = [...document.querySelectorAll('.cell_output')].map(e => e.innerText).join('\\n');
  return {
    title: document.title,
    prose: copy.innerText,
    outputs: outputs,
    all_text: document.body.innerText,
    images: [...document.querySelectorAll('main img')]
      .map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
    output_images: document.querySelectorAll('.cell_output img').length,
    math_nodes: document.querySelectorAll('main .math').length,
    math_unrendered: [...document.querySelectorAll('main .math')]
      .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    mjx: document.querySelectorAll('mjx-container').length,
    tables: [...document.querySelectorAll('main table')].map(t => t.querySelectorAll('tr').length),
    stderr: [...document.querySelectorAll('.output.stderr, .stderr')].map(e => e.innerText.slice(0, 300)),
    errors: [...document.querySelectorAll('.output.traceback, .output.error, .system-message, .problematic')]
      .map(e => e.innerText.slice(0, 300)),
    launch: [...document.querySelectorAll('a')].map(a => a.href).filter(h => h.includes('colab.research.google.com')),
  };
}"""


def _chromium() -> str:
    configured = os.environ.get("CDTL_CHROMIUM")
    found = configured or next(
        (path for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
         if (path := shutil.which(name))), None)
    if not found:
        pytest.fail("headless Chromium is needed for the rendering tests and none was found: `make browser` installs "
                    "Debian's chromium (apt-get install chromium), or set CDTL_CHROMIUM to a Chromium or Chrome binary")
    return found


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with book_build.serve(book_build.build().html) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the rendering tests drive Chromium with Playwright: install the 'test' extra (make install)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


class Page:
    """One built page loaded in Chromium: what it requested outside 127.0.0.1, its script errors and its content."""

    def __init__(self, browser: Any, url: str, viewport: dict[str, int] | None = None):
        self.external: list[str] = []
        self.script_errors: list[str] = []
        self.page = browser.new_page(viewport=viewport or {"width": 1280, "height": 900})
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")
        # MathJax typesets after load; wait for it on pages that load it
        self.page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        self.info: dict[str, Any] = self.page.evaluate(INSPECT)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.page.close()


PAGES = toc_pages()


def _url(site: str, page: str) -> str:
    return f"{site}{page}.html"


def _has_plots(stem: str) -> bool:
    path = ROOT / "chapters" / f"{stem}.ipynb"
    return path.exists() and any("plt." in cell.source or ".plot(" in cell.source
                                 for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")


def _has_math(page: str) -> bool:
    path = next(p for p in (ROOT / f"{page}.ipynb", ROOT / f"{page}.md") if p.exists())
    text = path.read_text()
    return "$" in text


def test_the_book_renders_what_nbval_executed():
    """No chapter is executed twice: every chapter cached before the build is rendered from that execution."""
    built = book_build.build()
    twice = sorted(built.executed & built.cached_before)
    assert not twice, f"the build re-executed cached chapters {twice}"
    assert built.executed == {c.stem for c in toc_files()} - built.cached_before
    if book_build.nbval_cache.written:  # nbval ran the chapters in this session: the build executed none of them
        assert not built.executed & set(book_build.nbval_cache.written), f"executed twice: {sorted(built.executed)}"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_for_a_reader(browser: Any, site: str, page: str):
    loaded = Page(browser, _url(site, page))
    try:
        info = loaded.info
        assert not loaded.external, f"{page} needs the network: {loaded.external[:5]}"
        assert not loaded.script_errors, f"{page}: script errors {loaded.script_errors[:3]}"
        assert "404" not in info["title"]
        # figures are images that loaded
        broken = [image["src"] for image in info["images"] if not image["ok"]]
        assert not broken, f"{page}: images that did not load: {broken}"
        if _has_plots(Path(page).name):
            assert info["output_images"] > 0, f"{page} draws figures but shows none"
        # math rendered by MathJax, no raw LaTeX left
        if _has_math(page):
            assert info["math_nodes"] > 0 and info["mjx"] > 0, f"{page} has formulas but MathJax rendered none"
        assert not info["math_unrendered"], f"{page}: formulas MathJax did not render: {info['math_unrendered'][:3]}"
        for pattern in RAW_LATEX:
            found = pattern.search(info["prose"])
            assert not found, f"{page} shows raw LaTeX: ...{info['prose'][max(0, found.start() - 60):found.end() + 60]}..."
        # tables are present wherever the page has any
        assert all(rows > 1 for rows in info["tables"]), f"{page}: an empty table"
        if page.startswith("chapters/") or page in ("book/notation", "book/timings", "book/instructors"):
            assert info["tables"], f"{page} shows no table"
        # no traceback, error, warning box or machine path
        assert not info["errors"], f"{page} shows errors: {info['errors'][:2]}"
        assert not info["stderr"], f"{page} shows a warning box (stderr): {info['stderr'][:2]}"
        assert "Traceback (most recent call last)" not in info["all_text"], f"{page} shows a traceback"
        warning = re.search(r"\b\w*Warning: ", info["outputs"])
        assert not warning, f"{page} prints a warning: ...{info['outputs'][max(0, warning.start() - 80):warning.end() + 120]}"
        for path in MACHINE_PATHS:
            assert path not in info["all_text"], f"{page} shows a path of the machine that built it: {path!r}"
    finally:
        loaded.close()


def test_solutions_start_hidden_and_open_on_click(browser: Any, site: str):
    seen = 0
    for page in PAGES:
        loaded = Page(browser, _url(site, page))
        try:
            solutions = loaded.page.locator("div.solution")
            for index in range(solutions.count()):
                solution = solutions.nth(index)
                body = solution.locator(":scope > :not(.admonition-title)").first  # the solution, not its title
                assert body.count() and not body.is_visible(), f"{page}: solution {index + 1} is visible before a click"
                solution.locator("button.toggle-button").first.click()  # the arrow beside the title
                body.wait_for(state="visible", timeout=5_000)
                seen += 1
        finally:
            loaded.close()
    assert seen >= 3, f"the book has {seen} solutions behind a toggle; the worked example alone has three"


def test_full_page_screenshot_of_a_chapter_is_kept(browser: Any, site: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{SCREENSHOT_OF}.png"
    shot.unlink(missing_ok=True)
    loaded = Page(browser, _url(site, f"chapters/{SCREENSHOT_OF}"))
    try:
        loaded.page.screenshot(path=str(shot), full_page=True)
        height = loaded.page.evaluate("() => document.documentElement.scrollHeight")
    finally:
        loaded.close()
    assert shot.stat().st_size > 50_000 and height > 3_000, f"{shot}: {shot.stat().st_size} bytes, page {height} px high"
