"""Training the fusion's parts on toy data: the configured base scorers, a scorer alone with its fallback, the fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from own_data import CONFIGS
from toy_data import two_domains

from cdtl.experiments import fusion
from cdtl.experiments.fusion_data import prepare
from cdtl.experiments.fusion_training import alone, build_scorers, fit_fusion, initial_temperatures
from cdtl.models.fusion import Scorer


@pytest.fixture(scope="module")
def trained():
    cfg = fusion.resolve(CONFIGS["fusion"])
    fd = prepare(cfg, two_domains(ratings=True, per_group=8))
    return cfg, fd, build_scorers(cfg, fd)


def test_each_configured_scorer_scores_every_target_item_for_every_user(trained):
    cfg, fd, (scorers, notes, models) = trained
    assert list(scorers) == list(models) == cfg["scorers"] == ["mf", "popularity"]
    users = torch.arange(fd.cd.n_users)
    for name, scorer in scorers.items():
        assert scorer.score_all(users).shape == (fd.cd.n_users, len(fd.cd.target_items.ids)), name
        assert list(scorer.items) == list(fd.cd.target_items.ids)
    assert np.asarray(scorers["popularity"].can_serve).all()  # popularity serves everyone, MF only warm users
    assert 0 < np.asarray(scorers["mf"].can_serve).sum() < fd.cd.n_users and "mf" in notes


def test_a_scorer_alone_falls_back_where_it_cannot_serve():
    own = Scorer("own", lambda u: torch.full((len(u), 3), 2.0), ["a", "b", "c"], np.array([True, False, True]))
    fallback = Scorer("pop", lambda u: torch.tensor([[0.0, 1.0, 0.5]]).expand(len(u), 3), ["a", "b", "c"],
                      np.ones(3, dtype=bool))
    scores = alone(own, fallback)(torch.tensor([0, 1, 2]))
    assert scores[0].tolist() == scores[2].tolist() == [2.0, 2.0, 2.0] and scores[1].tolist() == [0.0, 1.0, 0.5]


def test_temperatures_start_from_the_config_and_the_fusion_learns_weights_that_sum_to_one(trained):
    cfg, fd, (scorers, _, _) = trained
    assert initial_temperatures(cfg, fd, scorers) == [1.0, 1.0]  # auto on standardised rows: spread 1
    fixed = {**cfg, "fusion": {**cfg["fusion"], "temperature": 0.5}}
    assert initial_temperatures(fixed, fd, scorers) == [0.5, 0.5]
    model, result = fit_fusion(cfg, fd, scorers, "global")
    assert len(result.history) == cfg["fusion"]["train"]["epochs"] and model.names == ["mf", "popularity"]
    weights = model.weights(torch.arange(4))
    assert weights.shape == (4, 2) and torch.allclose(weights.sum(1), torch.ones(4))
