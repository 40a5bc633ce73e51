"""What chapters share beyond the package's models: recording headline numbers (for tests and the book), announcing
the profile, and tables."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cdtl.io import atomic_write, read_json
from cdtl.profiles import ENV_VAR, Profile, choose
from cdtl.profiles import profile as _profile
from cdtl.versions import versions

MIME = "application/vnd.cdtl.record+json"
RECORD_DIR_VAR = "CDTL_RECORD_DIR"
VERSIONS_KEY = "_versions"  # in a record file: the versions that produced its records (cdtl.versions)
_glued: dict[str, Any] = {}  # names glued in this kernel, so a re-run cell does not glue a name twice

_WHY = {
    "argument": "set in the parameters cell",
    "environment": f"set by {ENV_VAR}",
    "gpu": "the default where a CUDA GPU is present",
    "cpu": "the default where no CUDA GPU is present",
}


def profile(name: str | None = None) -> Profile:
    """The chapter's profile (see :func:`cdtl.profile`), announced in one line: which, why, and how to switch."""
    chosen, source = choose(name)
    other = "full" if chosen == "smoke" else "smoke"
    print(f'Profile "{chosen}" ({_WHY[source]}). For the {other} profile, set PROFILE = "{other}" '
          f"in the parameters cell, or {ENV_VAR}={other} in the environment.")
    return _profile(chosen)


def _jsonable(value: Any) -> Any:
    """Turn numpy / torch scalars and containers into plain JSON values."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot record a non-finite number ({value}); fix the computation first")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"cannot record a value of type {type(value).__name__}; use numbers, strings, lists or dicts")


def record(name: str, value: Any, *, notebook: str | None = None, markdown: bool = False) -> Any:
    """Record ``value`` under ``name``.

    The value is shown in the notebook (so the book displays it) with a machine-readable
    copy in the cell output, glued under ``name`` (``myst_nb.glue``) so the prose can quote
    it with ``{glue:text}`name``` in either profile, and, when ``CDTL_RECORD_DIR`` is set,
    appended to ``<dir>/<notebook>.json`` so a test can check it without parsing the
    notebook. Outside a notebook only the file is written; the file also holds, under
    ``_versions``, the versions of Python, torch, transformers, numpy, FAISS and cdtl that
    produced it (``cdtl.versions``). With ``markdown=True`` the value (a string) is glued as
    Markdown, for ``{glue:md}`name``` prose that depends on what ran: a section whose data could
    not be obtained says so there instead of quoting numbers that do not exist. Returns the JSON
    value recorded.
    """
    if markdown and not isinstance(value, str):
        raise ValueError(f"record {name!r}: markdown=True needs a string, got {type(value).__name__}")
    if not name or not isinstance(name, str) or name == VERSIONS_KEY:
        raise ValueError(f"record name must be a non-empty string other than {VERSIONS_KEY!r}")
    clean = _jsonable(value)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({MIME: {"name": name, "value": clean}, "text/plain": f"{name} = {clean!r}"}, raw=True)
            _glue(name, clean, markdown)
    except ImportError:  # plain Python: no display, the file is enough
        pass
    directory = os.environ.get(RECORD_DIR_VAR)
    if directory:
        stem = notebook or os.environ.get("CDTL_NOTEBOOK") or "records"
        path = Path(directory) / f"{stem}.json"
        existing = read_json(path, what="recorded results") if path.exists() else {}
        existing[name] = clean
        existing[VERSIONS_KEY] = versions()
        atomic_write(path, json.dumps(existing, indent=2, sort_keys=True))
    return clean


class _Word(str):
    """A recorded string that displays without quotes, so the prose quotes a recorded word as a word."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def _glue(name: str, value: Any, markdown: bool = False) -> None:
    """Glue ``value`` for the book (hidden output); a name already glued with this value is left alone."""
    try:
        from IPython.display import Markdown
        from myst_nb import glue
    except ImportError:  # the book's packages are not installed (Colab, a plain install): nothing to glue for
        return
    if name in _glued and _glued[name] == value:
        return
    _glued[name] = value
    if markdown:
        glue(name, Markdown(value), display=False)
    else:
        glue(name, _Word(value) if isinstance(value, str) else value, display=False)


def read_records(notebook_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read every value recorded in an executed notebook (the last record of a name wins)."""
    path = Path(notebook_path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                payload = data[MIME]
                if isinstance(payload, str):
                    payload = json.loads(payload)
                found[payload["name"]] = payload["value"]
    return found


def metric_table(rows: Mapping[str, Mapping[str, Mapping[str, float]]], metrics: Sequence[str] | None = None,
                 *, users: bool = False) -> Any:
    """A DataFrame with one row per system and one column per metric, each cell ``"mean [low, high]"``.

    ``rows[name]`` is a system's ``{metric: {mean, low, high, n}}`` (``cdtl.evaluate.report``,
    a result's ``"metrics"``); ``metrics`` picks and orders the columns (default: the first
    row's); with ``users`` a last column counts the users scored.
    """
    import pandas as pd

    from cdtl.evaluate import format_interval

    if not rows:
        raise ValueError("rows is empty: give at least one system's metrics")
    metrics = list(metrics or next(iter(rows.values())))
    table = pd.DataFrame({name: {m: format_interval(values[m]) for m in metrics} for name, values in rows.items()}).T
    if users:
        table["users"] = [values[metrics[0]]["n"] for values in rows.values()]
    return table
