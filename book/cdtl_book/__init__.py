"""The book's own Sphinx extension: offline MathJax, one summary line instead of progress bars, measured run times.

Jupyter Book loads it through ``sphinx.local_extensions`` in ``_config.yml``, so any build of
the book (``make book``, ``make test`` or a plain ``jupyter-book build``) gets the same:

- MathJax served from the build itself, never from a CDN (:mod:`cdtl_book.mathjax`);
- chapters executed by the build print one line per training or encoding run instead of a
  progress bar per epoch (``CDTL_PROGRESS=summary`` for the kernels it starts; interactive
  sessions keep their bars);
- ``{runtime}`smoke``` / ``{runtime}`full``` in a chapter and the ``{execution-timings}``
  table, both read from the measured run times in ``book/timings.json``
  (:mod:`cdtl_book.runtimes`, :mod:`cdtl_book.timings`).
"""

from __future__ import annotations

import os
from typing import Any

from sphinx.application import Sphinx

from cdtl_book import mathjax, runtimes


def _unique_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Drop a script a page would load twice (Jupyter Book registers the inline configs of sphinx-thebe and
    togglebutton twice)."""
    scripts, seen = context.get("script_files") or [], set()
    for script in list(scripts):
        key = (getattr(script, "filename", None) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            scripts.remove(script)
        seen.add(key)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the extension's parts with Sphinx."""
    # inherited by every kernel this build starts: one summary line per run, figures drawn inline
    os.environ.setdefault("CDTL_PROGRESS", "summary")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    mathjax.setup(app)
    runtimes.setup(app)
    app.connect("html-page-context", _unique_scripts, priority=990)  # after every handler that adds scripts
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
