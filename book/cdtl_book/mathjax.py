"""MathJax from the build itself, so formulas render with no network (a classroom, a test, a train).

The pinned MathJax (``book/package.json``) is installed from the npm registry into
``book/node_modules`` by ``make mathjax`` (``npm ci --prefix book``), or found where
``CDTL_MATHJAX_DIR`` points (a MathJax ``es5`` folder). Every HTML build copies the parts a
page loads (the TeX/MathML-to-CHTML component, its TeX extensions, fonts, menu and
accessibility code) to ``_static/mathjax`` and points Sphinx's ``mathjax_path`` there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError

BOOK = Path(__file__).resolve().parents[1]
ENV_VAR = "CDTL_MATHJAX_DIR"
COMPONENT = "tex-mml-chtml.js"
PARTS = (COMPONENT, "input", "output/chtml", "a11y", "ui", "sre", "adaptors")  # what tex-mml-chtml loads
STATIC = "mathjax"  # under the build's _static folder


def pinned_version() -> str:
    """The MathJax version ``book/package.json`` pins."""
    return json.loads((BOOK / "package.json").read_text())["dependencies"]["mathjax"]


def source_dir() -> Path:
    """The MathJax ``es5`` folder to copy from; a clear error saying how to install it when it is missing."""
    configured = os.environ.get(ENV_VAR)
    folder = Path(configured) if configured else BOOK / "node_modules" / "mathjax" / "es5"
    how = "run `make mathjax` (npm ci --prefix book; needs Node.js and npm)"
    if not (folder / COMPONENT).is_file():
        where = f"{ENV_VAR}={configured}" if configured else str(folder)
        raise ExtensionError(f"MathJax is not installed: no {COMPONENT} in {where}; {how}")
    if not configured:
        installed = json.loads((folder.parent / "package.json").read_text())["version"]
        if installed != pinned_version():
            raise ExtensionError(f"MathJax {installed} is installed but book/package.json pins {pinned_version()}; {how}")
    return folder


def _configure(app: Sphinx, config: Config) -> None:
    source_dir()  # fail before reading any page, with the fix in the message
    config.mathjax_path = f"{STATIC}/{COMPONENT}"  # relative: served from the build's _static folder


def _copy(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = source_dir(), Path(app.outdir) / "_static" / STATIC
    for part in PARTS:
        src, dst = source / part, target / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def setup(app: Sphinx) -> None:
    """Point MathJax at the build's own copy and copy it there after every HTML build."""
    app.connect("config-inited", _configure, priority=900)  # after _config.yml's values are applied
    app.connect("build-finished", _copy)
