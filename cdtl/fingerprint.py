"""What makes a run this run: hashes of its data and split and the settings that change results, key by key.

A checkpoint records this flat dict; resuming with another one is refused with the keys
that differ (``split.test.sha256``, ``model.dim``, ...), so a changed split or model is
never silently mixed into a resumed run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd


def frame_digest(frame: pd.DataFrame, columns: Iterable[str] = ("user", "item", "rating", "timestamp")) -> str:
    """sha256 (first 16 hex digits) of the rows of ``frame``'s ``columns`` that it has, in order."""
    present = [c for c in columns if c in frame.columns]
    hashed = pd.util.hash_pandas_object(frame[present], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(present).encode()).hexdigest()[:16]


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def run_fingerprint(settings: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """A flat ``{dotted key: value}``: every setting in ``settings`` and the digest of every frame (``split.<name>.sha256``)."""
    out: dict[str, Any] = {}
    _flatten(settings, "", out)
    for name, frame in frames.items():
        out[f"split.{name}.sha256"] = frame_digest(frame)
    return out


__all__ = ["frame_digest", "run_fingerprint"]
