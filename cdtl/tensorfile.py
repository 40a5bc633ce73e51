"""Tensors on disk as safetensors, written atomically with the sha256 of their payload in the header, checked on load.

The digest covers every tensor's name, dtype, shape and bytes (in name order), so it does
not depend on how safetensors lays the file out. A truncated, garbled or edited file
raises :class:`cdtl.io.CorruptFileError` naming it, never a raw ``SafetensorError``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from cdtl.io import CorruptFileError, atomic_write

DIGEST_KEY = "cdtl.sha256"  # the header entry holding the payload's digest


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{str(tensor.dtype)}\0{tuple(tensor.shape)}\n".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> Path:
    """Write CPU, contiguous ``tensors`` to ``path`` atomically, their digest in the header next to ``metadata``."""
    header = {**(metadata or {}), DIGEST_KEY: tensor_digest(tensors)}
    return atomic_write(Path(path), lambda tmp: save_file(dict(tensors), str(tmp), metadata=header))


def read_header(path: str | os.PathLike, *, what: str, fix: str = "") -> dict[str, str]:
    """The header metadata of a safetensors file; an unreadable file raises ``CorruptFileError``."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, f"{what} is missing", fix)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for any garbage
        raise CorruptFileError(path, f"{what} is not a readable safetensors file (truncated? {_first_line(err)})",
                               fix) from None


def load_tensors(path: str | os.PathLike, *, what: str, fix: str = "",
                 require_digest: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on CPU, header metadata) of a file written by :func:`save_tensors`, after checking its digest.

    With ``require_digest=False`` a file written without a digest (by an older version) is
    read unchecked; a file that has one is always checked.
    """
    path = Path(path)
    header = read_header(path, what=what, fix=fix)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as err:  # noqa: BLE001
        raise CorruptFileError(path, f"{what} is not a readable safetensors file (truncated? {_first_line(err)})",
                               fix) from None
    recorded = header.pop(DIGEST_KEY, None)
    if recorded is None:
        if require_digest:
            raise CorruptFileError(path, f"{what} records no content hash (written by an older version?)", fix)
        return tensors, header
    if tensor_digest(tensors) != recorded:
        raise CorruptFileError(path, f"{what} is damaged: its tensors do not match the sha256 in its header", fix)
    return tensors, header


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


__all__ = ["DIGEST_KEY", "load_tensors", "read_header", "save_tensors", "tensor_digest"]
