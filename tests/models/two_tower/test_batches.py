"""two_tower_batches: each user's history and next item, every item encoded once, seen items masked, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genre_texts import N_USERS, TEXTS, _histories, frozen4  # noqa: F401  (fixture)

from cdtl.models.two_tower import TwoTower, two_tower_batches


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
