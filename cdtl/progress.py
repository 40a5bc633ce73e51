"""Progress bars that look right everywhere: widgets in Jupyter/Colab when available, text otherwise."""

from __future__ import annotations

import os

try:  # tqdm.auto needs ipywidgets in a notebook; without them it warns, so fall back to text bars
    import ipywidgets  # noqa: F401

    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - depends on the environment
    from tqdm.std import tqdm


def enabled() -> bool:
    """Progress bars are on unless ``CDTL_PROGRESS=0`` (quiet logs, e.g. in CI)."""
    return os.environ.get("CDTL_PROGRESS", "1") not in ("0", "false", "no")


__all__ = ["enabled", "tqdm"]
