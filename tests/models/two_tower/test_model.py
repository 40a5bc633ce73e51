"""The fine-tuned two-tower model: frozen layers stay put, the in-batch loss falls, scores rank a user's genre first."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from genre_texts import N_USERS, TEXTS, _histories, frozen4  # noqa: F401  (fixture)

from cdtl.evaluate import evaluate_ranking
from cdtl.models.two_tower import TwoTower, two_tower_batches
from cdtl.train import TrainConfig, fit


def _genre_precision(scores: torch.Tensor) -> float:
    """The share of each user's top 10 that is of their genre, averaged over users."""
    top = scores.topk(10, dim=1).indices
    own = torch.tensor([u % 2 for u in range(N_USERS)]).unsqueeze(1)
    return float(((top >= 15).long() == own).float().mean())


def test_frozen_layers_do_not_change_while_the_top_layer_does(frozen4: TwoTower) -> None:
    model = copy.deepcopy(frozen4)
    lm = model.lm
    frozen = {n: p for n, p in lm.named_parameters() if n.startswith("embeddings.") or
              any(n.startswith(f"encoder.layer.{i}.") for i in range(4))}
    top = {n: p for n, p in lm.named_parameters() if n.startswith("encoder.layer.5.")}
    assert frozen and top
    assert all(not p.requires_grad for p in frozen.values())
    assert all(p.requires_grad for p in top.values())
    assert all(p.requires_grad for n, p in lm.named_parameters() if n.startswith("encoder.layer.4."))
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}

    batches = two_tower_batches(model, TEXTS, _histories(), batch_size=N_USERS)  # one step
    fit(model, batches, TrainConfig(epochs=1, lr=1e-3, weight_decay=0.01, device="cpu", progress=False, seed=0))
    for name in frozen:
        assert torch.equal(dict(lm.named_parameters())[name], before[name]), f"frozen {name} changed"
    changed = [n for n in top if not torch.equal(dict(lm.named_parameters())[n], before[n])]
    assert len(changed) == len(top)


def test_in_batch_softmax_loss_decreases(frozen4: TwoTower) -> None:
    torch.manual_seed(0)
    model = copy.deepcopy(frozen4)
    batch = next(iter(two_tower_batches(model, TEXTS, _histories(), batch_size=8)(0, torch.Generator().manual_seed(0))))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    model.train()
    losses = []
    for _ in range(3):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]


def test_score_all_ranks_the_users_genre_first(frozen4: TwoTower) -> None:
    model = frozen4
    histories = _histories()
    with pytest.raises(RuntimeError, match="index_items"):
        model.score_all(histories)
    item_emb = model.index_items(TEXTS)
    assert item_emb.shape == (30, 384)
    torch.testing.assert_close(item_emb.norm(dim=1), torch.ones(30))
    scores = model.score_all(histories)
    assert scores.shape == (N_USERS, 30)
    torch.testing.assert_close(model.score_all(histories[:3], item_emb), scores[:3])
    assert _genre_precision(scores) > 0.8  # the pretrained text space already separates the genres
    # the same through the shared evaluation: each user's held-out item is one more of their genre
    held = [np.setdiff1d(np.arange(15) + (15 if u % 2 else 0), h)[:1] for u, h in enumerate(histories)]
    metrics = evaluate_ranking(model.scorer(histories), np.arange(N_USERS), held, exclude_csr=None, ks=(10,))
    assert metrics["recall@10"].shape == (N_USERS,) and metrics["recall@10"].mean() > 0.5


def test_attention_pool_and_moe_adaptor_train_on_a_frozen_language_model() -> None:
    torch.manual_seed(0)
    model = TwoTower(freeze_layers=6, max_length=32, max_history=5, user_pooling="attention", adaptor="moe",
                     adaptor_dim=64, n_experts=4)
    assert not any(p.requires_grad for p in model.lm.parameters())
    batch = next(iter(two_tower_batches(model, TEXTS, _histories(), batch_size=10)(0, torch.Generator().manual_seed(0))))
    model.train()
    model.loss(batch).backward()
    assert model.pool.query.grad.abs().sum() > 0 and model.adaptor.weight.grad.abs().sum() > 0
    model.index_items(TEXTS)
    assert model.score_all(_histories()).shape == (N_USERS, 30) and model.dim == 64
    with pytest.raises(ValueError, match="freeze_layers must be in \\[0, 6\\]"):
        TwoTower(freeze_layers=7)
    with pytest.raises(ValueError, match="user_pooling must be one of"):
        TwoTower(user_pooling="max")
