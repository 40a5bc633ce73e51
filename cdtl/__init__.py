"""cdtl: cross-domain transfer learning for recommender systems with pretrained language models."""

from __future__ import annotations

import importlib
from typing import Any

from cdtl import progress as _progress  # noqa: F401 (where no bar is drawn, it silences tqdm's notebook advice)
from cdtl.profiles import PROFILES, Profile, profile

__version__ = "0.1.0"

# subpackages load on first use (``cdtl.data.load(...)`` after a plain ``import cdtl``),
# so importing cdtl stays cheap and torch is only imported by the parts that need it
_SUBMODULES = {"data", "encoders", "evaluate", "experiments", "metrics", "models", "nb", "serve", "train"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"cdtl.{name}")
    raise AttributeError(f"module 'cdtl' has no attribute {name!r}")


__all__ = ["PROFILES", "Profile", "profile", "__version__", *sorted(_SUBMODULES)]
