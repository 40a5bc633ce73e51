"""Progress bars for interactive use, and one summary line instead of bars in a built book or a test log."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from typing import Any

try:  # tqdm.auto needs ipywidgets in a notebook; without them it warns, so fall back to text bars
    import ipywidgets  # noqa: F401
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - depends on the environment
    from tqdm.std import tqdm

ENV_VAR = "CDTL_PROGRESS"
MODES = ("bars", "summary", "off")
_ALIASES = {"1": "bars", "true": "bars", "yes": "bars", "on": "bars", "0": "off", "false": "off", "no": "off"}


def mode() -> str:
    """``bars`` (the default), ``summary`` (one line per training or encoding run: the book sets it) or ``off``."""
    raw = os.environ.get(ENV_VAR, "bars").strip().lower() or "bars"
    chosen = _ALIASES.get(raw, raw)
    if chosen not in MODES:
        raise ValueError(f"{ENV_VAR}={raw!r} is not a progress mode; expected one of {list(MODES)} (or 1/0)")
    return chosen


def enabled() -> bool:
    """True where progress bars are drawn (mode ``bars``)."""
    return mode() == "bars"


def summary(line: str) -> None:
    """Print ``line`` where bars are replaced by one summary line (mode ``summary``)."""
    if mode() == "summary":
        print(line, flush=True)


@contextlib.contextmanager
def bar(*, total: int, desc: str, unit: str, done: str | None = None, **kwargs: Any) -> Iterator[Any]:
    """A tqdm bar of ``total`` steps in mode ``bars``; in mode ``summary``, ``done`` and the seconds taken, once at the end."""
    started = time.perf_counter()
    with tqdm(total=total, desc=desc, unit=unit, disable=not enabled() or total == 0, **kwargs) as progress:
        yield progress
    if done is not None and total:
        summary(f"{done} in {time.perf_counter() - started:.1f} s")


def quiet_notebook_warnings() -> None:
    """Where no bar is drawn, tqdm's advice to install ipywidgets for notebook bars is noise: silence it."""
    if not enabled():
        warnings.filterwarnings("ignore", message="IProgress not found")


quiet_notebook_warnings()

__all__ = ["ENV_VAR", "MODES", "bar", "enabled", "mode", "summary", "tqdm"]
