"""Seeding: set_seed repeats every generator and turns on deterministic algorithms; each epoch gets its own seeds."""

from __future__ import annotations

import pytest
import torch

from cdtl.train.device import epoch_seeds, set_seed


def test_set_seed_repeats_every_generator():
    import random

    import numpy as np

    set_seed(11)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(ValueError, match="seed"):
        set_seed(-1)


def test_set_seed_turns_on_deterministic_algorithms():
    set_seed(0)
    assert torch.are_deterministic_algorithms_enabled()


def test_epoch_seeds_depend_on_the_seed_and_epoch_only():
    torch.manual_seed(123)  # whatever the global generators hold, the seeds follow from (seed, epoch)
    first = epoch_seeds(5, 3)
    torch.manual_seed(456)
    assert epoch_seeds(5, 3) == first
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in first) and first[0] != first[1]
    assert len({epoch_seeds(5, e) for e in range(10)} | {epoch_seeds(6, 3)}) == 11  # every epoch and seed differs
