"""Which versions produced a result: one dictionary stored in every metrics.json, bundle manifest and recorded chapter run.

Versions are read from the installed distributions' metadata (``importlib.metadata``), so
asking costs no import of torch, transformers or FAISS; a package that is not installed
is left out rather than guessed.
"""

from __future__ import annotations

import importlib.metadata
import platform

# what each entry reads: the import name as key, the distributions that may provide it, in order
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss"),
}


def _installed(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str]:
    """``{"cdtl", "python", "torch", "transformers", "numpy", "pandas", "faiss", "platform"}``: what is installed now.

    ``faiss`` (and any other package) is present only when installed; ``cdtl`` is the
    version of the package that is running (``cdtl.__version__``).
    """
    from cdtl import __version__

    found = {"cdtl": __version__, "python": platform.python_version()}
    for key, names in DISTRIBUTIONS.items():
        version = _installed(names)
        if version is not None:
            found[key] = version
    found["platform"] = platform.platform()
    return found


__all__ = ["DISTRIBUTIONS", "versions"]
