"""Where training runs and how its randomness is seeded, so the same seed gives the same numbers."""

from __future__ import annotations

import random

import numpy as np
import torch

from cdtl.device import choose_device

__all__ = ["choose_device", "epoch_seeds", "set_seed"]


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
