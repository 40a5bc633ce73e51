"""The new-item kind's scorers and cells: seeded random scores, popularity by genre, each cell's pairs and candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dated_items import toy

from cdtl.data.newitems import new_item_split
from cdtl.experiments.newitems import encode
from cdtl.experiments.newitems_models import CELLS, GenrePopularity, RandomScores, cell_data


def test_random_scores_are_fixed_per_seed_and_user_whatever_the_batch():
    scores = RandomScores(5, seed=3)
    both = scores.score_all(torch.tensor([0, 1]))
    assert both.shape == (2, 5) and ((both >= 0) & (both < 1)).all()
    assert torch.equal(scores.score_all(torch.tensor([1]))[0], both[1])
    assert not torch.equal(RandomScores(5, seed=4).score_all(torch.tensor([0]))[0], both[0])
    assert scores.score_all(torch.tensor([], dtype=torch.long)).shape == (0, 5)


def test_an_item_scores_the_mean_popularity_of_its_genres():
    genres = [["action"], ["action", "comedy"], ["comedy"], ["drama"], []]
    train_items = np.array([0, 0, 0, 1, 2, 2, 2, 2, 2])  # counts 3, 1, 5, 0, 0
    model = GenrePopularity(genres, train_items)
    action, comedy = (3 + 1) / 2, (1 + 5) / 2
    assert model.scores.tolist() == pytest.approx([action, (action + comedy) / 2, comedy, 0.0, 0.0])
    assert model.score_all(torch.tensor([4, 7])).shape == (2, 5)  # the same scores for every user


def test_each_cell_holds_its_own_users_and_items_and_excludes_only_among_old_items():
    split = new_item_split(toy(), "tgt", 0.25, source="src", by="year", cold_ratio=0.3, seed=0)
    cd = encode(split)
    new = set(cd.target_items.encode(split.new_items).tolist())
    for cell in CELLS:
        frame, candidates, exclude = cell_data(cd, split, "test", cell)
        users, items = cell.split("/")
        assert not frame.empty, cell  # every cell of this split holds held-out pairs
        assert set(frame["item_kind"]) <= {"new"} if items == "new" else set(frame["item_kind"]) <= {"old"}, cell
        if users != "mixed":
            assert set(frame["user_kind"]) <= {users}, cell
            assert set(candidates.tolist()) == (new if items == "new" else set(range(cd.n_target_items)) - new), cell
        else:
            assert len(candidates) == cd.n_target_items
        assert (exclude is None) == (items == "new" and users != "mixed"), cell
        assert set(frame["i"]) <= set(candidates.tolist()), cell
