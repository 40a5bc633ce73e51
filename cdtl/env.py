"""cdtl's environment variables, read one way: a bad value names the variable and what it accepts."""

from __future__ import annotations

import math
import os
from pathlib import Path

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
CACHE_VAR = "CDTL_DATA_DIR"


class EnvError(ValueError):
    """An environment variable holds a value cdtl cannot use; the message names it and the valid values."""


def flag(name: str, default: bool = False) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (any case); unset or empty means ``default``."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise EnvError(f"{name}={raw!r} is not a yes/no value; use one of 1, 0, true, false, yes, no, on, off")


def seconds(name: str, default: float) -> float:
    """A positive duration in seconds (e.g. ``CDTL_DOWNLOAD_TIMEOUT=900``); unset means ``default``."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EnvError(f"{name}={raw!r} is not a number of seconds, e.g. {name}={int(default)}") from None
    if not (value > 0 and math.isfinite(value)):
        raise EnvError(f"{name}={raw!r} must be a positive number of seconds, e.g. {name}={int(default)}")
    return value


def cache_dir() -> Path:
    """The cache root: ``$CDTL_DATA_DIR``, else ``$XDG_CACHE_HOME/cdtl``, else ``~/.cache/cdtl``."""
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(base) / "cdtl").resolve()


__all__ = ["CACHE_VAR", "EnvError", "FALSE", "TRUE", "cache_dir", "flag", "seconds"]
