"""Which torch device a run uses, one rule for every stage (encoders, training, serving)."""

from __future__ import annotations

import torch


def choose_device(name: str = "auto") -> torch.device:
    """The torch device for a name: "auto" picks cuda, then mps, then cpu."""
    mps_available = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available:
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {name!r}; valid choices: auto, cpu, cuda, cuda:N, mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    if device.type == "mps" and not mps_available:
        raise ValueError(f"device {name!r} was asked for, but MPS is not available here; use 'auto' or 'cpu'")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; valid choices: auto, cpu, cuda, cuda:N, mps")
    return device


__all__ = ["choose_device"]
