"""Where training runs and how its randomness is seeded, so the same seed gives the same numbers."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.utils.deterministic

from cdtl.device import choose_device

__all__ = ["choose_device", "deterministic_algorithms", "epoch_seeds", "set_seed"]


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) random generators, and turn on deterministic algorithms.

    The generators alone are not enough: on a CPU with more than one thread, the backward pass of
    advanced indexing (``logits[rows]``) adds into the gradient with atomic adds in whatever order
    the threads run, so two runs of the same seed drift apart. ``use_deterministic_algorithms``
    makes such ops add in a fixed order (ops without a deterministic version warn instead of
    failing). Reading uninitialised memory is a bug either way, so ``torch.empty`` is not filled.
    """
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    deterministic_algorithms()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def deterministic_algorithms() -> None:
    """Make torch use its deterministic algorithms (warn where it has none), without filling new tensors with NaN."""
    if not torch.are_deterministic_algorithms_enabled():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's deterministic mode (read at its start)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """Two independent seeds for one epoch: one for the batches' generator, one for dropout & co.

    Deriving them from (seed, epoch) rather than drawing them in sequence means epoch 3 sees the
    same random numbers whether the run started at epoch 0 or resumed from a checkpoint.
    """
    data_seed, global_seed = np.random.SeedSequence([seed, epoch]).generate_state(2)
    return int(data_seed), int(global_seed)
