"""MeanUser, the target-only baseline: every cold user gets the average warm user."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.models.mf import MF
from cdtl.models.transfer import MeanUser


def test_mean_user_is_the_average_warm_user():
    mf = MF(5, 3, 4, loss="bpr")
    model = MeanUser(mf, np.array([0, 1]))
    u, b = model.user_side(torch.tensor([3, 4]))
    assert torch.allclose(u[0], mf.user_emb.weight[:2].mean(0)) and torch.equal(u[0], u[1])
    with pytest.raises(ValueError, match="warm is empty"):
        MeanUser(mf, np.array([], dtype=int))
