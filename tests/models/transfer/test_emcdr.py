"""EMCDR: a mapping from source to target user factors is all that trains."""

from __future__ import annotations

import pytest
import torch

from cdtl.models.mf import MF
from cdtl.models.transfer import EMCDR, PTUPCDR


def test_bridges_train_only_the_bridge():
    src, tgt = MF(6, 4, 3, loss="bpr"), MF(6, 5, 3, loss="bpr")
    emcdr = EMCDR(src, tgt, mapping="linear")
    assert {n for n, _ in emcdr.named_parameters()} == {"mapping.weight", "mapping.bias"}
    hist, mask = torch.zeros(6, 2, dtype=torch.long), torch.ones(6, 2, dtype=torch.bool)
    ptu = PTUPCDR(src, tgt, hist, mask)
    assert all(n.split(".")[0] in ("attention", "meta", "bias_head") for n, _ in ptu.named_parameters())
    assert ptu.bridges(torch.tensor([0, 1])).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="mapping must be one of"):
        EMCDR(src, tgt, mapping="cubic")
    with pytest.raises(ValueError, match="same user index"):
        EMCDR(src, MF(7, 5, 3), mapping="linear")
