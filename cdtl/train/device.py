"""Where training runs and how its randomness is seeded, so the same seed gives the same numbers."""

from __future__ import annotations

import random

import numpy as np
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


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) random generators."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """Two independent seeds for one epoch: one for the batches' generator, one for dropout & co.

    Deriving them from (seed, epoch) rather than drawing them in sequence means epoch 3 sees the
    same random numbers whether the run started at epoch 0 or resumed from a checkpoint.
    """
    data_seed, global_seed = np.random.SeedSequence([seed, epoch]).generate_state(2)
    return int(data_seed), int(global_seed)
