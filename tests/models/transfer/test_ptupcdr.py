"""PTUPCDR: a per-user bridge generated from the source history, finite for users with none."""

from __future__ import annotations

import torch

from cdtl.models.mf import MF
from cdtl.models.transfer import PTUPCDR


def test_ptupcdr_user_without_history_gets_a_finite_vector():
    src, tgt = MF(3, 4, 3, loss="bpr"), MF(3, 5, 3, loss="bpr")
    hist = torch.tensor([[1, 2], [0, 0], [3, 0]])
    mask = torch.tensor([[True, True], [False, False], [True, False]])
    u, b = PTUPCDR(src, tgt, hist, mask).user_side(torch.arange(3))
    assert torch.isfinite(u).all() and torch.isfinite(b).all()
