"""EMCDR: a mapping from source to target user factors is all that trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.models.mf import MF
from cdtl.models.transfer import EMCDR, PTUPCDR
from cdtl.models.transfer.emcdr import user_batches
from cdtl.train import TrainConfig, fit


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


def test_a_fitted_mapping_gives_a_cold_user_the_target_vector_it_predicts():
    torch.manual_seed(0)
    src, tgt = MF(8, 4, 3, loss="bpr"), MF(8, 5, 3, loss="bpr")
    with torch.no_grad():  # target factors that are an exact linear function of the source factors
        a = torch.randn(4, 4)
        both = torch.cat([src.user_emb.weight, src.user_bias.weight], 1) @ a
        tgt.user_emb.weight.copy_(both[:, :3])
        tgt.user_bias.weight.copy_(both[:, 3:])
    model = EMCDR(src, tgt, mapping="linear")
    warm = np.arange(6)  # users 6 and 7 are cold: only the mapping knows them
    fit(model, user_batches(warm, batch_size=3), TrainConfig(epochs=400, lr=0.05, progress=False, seed=0))
    cold = torch.tensor([6, 7])
    torch.testing.assert_close(model.score_all(cold), tgt.score_all(cold), atol=0.05, rtol=0.05)


def test_user_batches_cover_the_warm_users_once_per_epoch_and_refuse_none():
    batches = user_batches(np.array([3, 5, 8, 9, 11]), batch_size=2)
    assert len(batches) == 3
    seen = torch.cat([b["user"] for b in batches(0, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == [3, 5, 8, 9, 11]
    with pytest.raises(ValueError, match="needs warm users"):
        user_batches(np.array([], dtype=int))
    mlp_model = EMCDR(MF(4, 3, 2), MF(4, 3, 2), mapping="mlp", hidden=5)
    assert [tuple(p.shape) for p in mlp_model.mapping.parameters()] == [(5, 3), (5,), (3, 5), (3,)]
