"""The fine-tuned two-tower model: batches are what the loss expects, frozen layers stay put, the loss falls, scores rank."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from cdtl.evaluate import evaluate_ranking
from cdtl.models.two_tower import TwoTower, two_tower_batches
from cdtl.train import TrainConfig, fit

SCIFI = [
    "Star Voyager: a space opera about a starship crew", "Galaxy Wars: rebels fight an empire among the stars",
    "Mars Colony: astronauts survive on the red planet", "The Robot Uprising: androids rebel against humans",
    "Time Machine: a scientist travels to the far future", "Alien Contact: first meeting with extraterrestrials",
    "Nebula: a spaceship lost in deep space", "Cyber City: hackers in a neon dystopia",
    "Quantum Leap: physicists bend time and space", "Orbit: a lonely astronaut on a space station",
    "Planet X: explorers discover a new world", "Warp Drive: the first faster-than-light flight",
    "Moonbase: miners on the lunar surface", "Starfall: a comet threatens the earth",
    "Android Dreams: a robot learns to love",
]
ROMANCE = [
    "Wedding Bells: two rivals fall in love before a wedding", "Paris Kiss: a summer romance in Paris",
    "Love Letters: pen pals fall for each other", "The Proposal: a fake engagement turns real",
    "Second Chance: old flames meet again", "Sweet Valentine: a florist finds love on Valentine's day",
    "Heartstrings: a musician and a painter fall in love", "Bride Wars: best friends plan their weddings",
    "Sunset Romance: lovers on a beach holiday", "First Date: a nervous couple's first evening",
    "Honeymoon: newlyweds on a tropical island", "Crush: a high-school love story",
    "Married by Monday: a romantic comedy about a rushed wedding", "Roses: a gardener's love story",
    "Forever Yours: a couple's lifelong romance",
]
TEXTS = SCIFI + ROMANCE  # items 0-14 science fiction, 15-29 romance
N_USERS = 20


def _histories() -> list[np.ndarray]:
    """Even users watched 6 science-fiction films, odd users 6 romances, oldest first."""
    rng = np.random.default_rng(0)
    return [rng.choice(np.arange(15) + (15 if u % 2 else 0), size=6, replace=False) for u in range(N_USERS)]


def _genre_precision(scores: torch.Tensor) -> float:
    """The share of each user's top 10 that is of their genre, averaged over users."""
    top = scores.topk(10, dim=1).indices
    own = torch.tensor([u % 2 for u in range(N_USERS)]).unsqueeze(1)
    return float(((top >= 15).long() == own).float().mean())


@pytest.fixture(scope="module")
def frozen4() -> TwoTower:
    """The packaged MiniLM with its embeddings and lowest 4 of 6 layers frozen; tests train deep copies of it."""
    torch.manual_seed(0)
    return TwoTower(freeze_layers=4, max_length=32, max_history=5)


def test_batches_hold_each_users_history_and_next_item(frozen4: TwoTower) -> None:
    histories = _histories()
    batches = two_tower_batches(frozen4, TEXTS, histories, batch_size=8, targets="all")
    assert batches.n == N_USERS * 5 and len(batches) == 13
    epoch = list(batches(0, torch.Generator().manual_seed(0)))
    assert len(epoch) == len(batches)
    again = list(batches(0, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a["history"], b["history"]) for a, b in zip(epoch, again))  # seeded: reproducible

    tokens, _ = frozen4.tokenize(TEXTS)
    examples = []
    for batch in epoch:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        # the rows of the batch's items, back to catalogue indices through their tokens
        row_item = [next(j for j in range(len(TEXTS)) if torch.equal(tokens[j, : int(m.sum())], r[m])) for r, m in zip(ids, mask)]
        assert len(set(row_item)) == len(row_item)  # each distinct item encoded once
        for b in range(len(batch["label"])):
            target = row_item[int(batch["candidate"][batch["label"][b]])]
            hist = [row_item[int(r)] for r in batch["history"][b][batch["history_mask"][b]]]
            examples.append((*hist, target))
            for p, cand in enumerate(batch["candidate"].tolist()):  # seen = in the history, never the own positive
                assert bool(batch["seen"][b, p]) == (row_item[cand] in hist and p != int(batch["label"][b]))
    # "all": every position t >= 1 once, with the up to 5 items right before it, oldest first
    expected = [(*h[max(0, t - 5) : t].tolist(), int(h[t])) for h in histories for t in range(1, 6)]
    assert sorted(examples) == sorted(expected)

    last = next(iter(two_tower_batches(frozen4, TEXTS, histories, batch_size=64, targets="last")(0, torch.Generator())))
    assert len(last["label"]) == N_USERS and int(last["history_mask"].sum()) == N_USERS * 5
    random_targets = two_tower_batches(frozen4, TEXTS, histories, batch_size=5, logq=True)
    assert len(random_targets) == 4
    first = next(iter(random_targets(0, torch.Generator().manual_seed(1))))
    assert first["log_q"].shape == first["candidate"].shape and (first["log_q"] < 0).all()


def test_batch_maker_refuses_bad_input(frozen4: TwoTower) -> None:
    with pytest.raises(ValueError, match="expected \\[0, 30\\)"):
        two_tower_batches(frozen4, TEXTS, [np.array([0, 30])])
    with pytest.raises(ValueError, match="fewer than 2 items"):
        two_tower_batches(frozen4, TEXTS, [np.array([0]), np.array([3])])
    with pytest.raises(ValueError, match="targets must be one of"):
        two_tower_batches(frozen4, TEXTS, _histories(), targets="first")
    with pytest.raises(ValueError, match="1 of 30 item texts are empty"):
        two_tower_batches(frozen4, TEXTS[:-1] + [" "], _histories())


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
