"""Optimizers and learning-rate schedules: the chosen optimizer's settings reach torch, each schedule sets each epoch's lr."""

from __future__ import annotations

import math

import pytest
import torch
from train_toy import BATCHES, make_model, quick

from cdtl import train
from cdtl.train import fit


def test_optimizer_choice_and_settings_reach_torch():
    model = make_model()
    sgd = train.make_optimizer(model, quick(optimizer="sgd", momentum=0.8, weight_decay=0.1))
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.8 and sgd.param_groups[0]["weight_decay"] == 0.1
    assert type(train.make_optimizer(model, quick(optimizer="adam"))) is torch.optim.Adam
    assert type(train.make_optimizer(model, quick(optimizer="adamw"))) is torch.optim.AdamW


@pytest.mark.parametrize(
    ("settings", "factors"),
    [
        ({"scheduler": None}, [1, 1, 1, 1, 1]),
        ({"scheduler": "step", "step_size": 2, "gamma": 0.5}, [1, 1, 0.5, 0.5, 0.25]),
        ({"scheduler": "cosine"}, [0.5 * (1 + math.cos(math.pi * t / 5)) for t in range(5)]),
        ({"scheduler": "cosine", "warmup_epochs": 2}, [1 / 3, 2 / 3, 1, 0.75, 0.25]),
        ({"scheduler": "step", "warmup_epochs": 1, "step_size": 1, "gamma": 0.1}, [0.5, 1, 0.1, 0.01, 0.001]),
    ],
)
def test_schedules_set_the_lr_of_each_epoch(settings, factors):
    result = fit(make_model(), BATCHES, quick(epochs=5, lr=0.01, **settings))
    assert [row["lr"] for row in result.history] == pytest.approx([0.01 * f for f in factors])
    assert all(math.isfinite(row["train_loss"]) for row in result.history)


def test_plateau_cuts_the_lr_when_the_monitored_metric_stalls():
    scores = iter([0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3])
    result = fit(make_model(), BATCHES, quick(epochs=7, lr=0.01, scheduler="plateau", gamma=0.1, patience=4,
                                              monitor="auc"), validate=lambda model: {"auc": next(scores)})
    # plateau patience is patience // 2 = 2: stalls at epochs 2 and 3 cut the lr for epoch 4 on
    assert [row["lr"] for row in result.history] == pytest.approx([0.01] * 4 + [0.001] * 3)
    assert result.best_epoch == 5 and not result.stopped_early
