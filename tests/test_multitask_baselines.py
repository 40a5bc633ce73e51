"""The multi-task comparison's extra baselines: the mean-user single-task model and chapter 04's bridges, checked before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.experiments import multitask as comparison
from cdtl.experiments.common import ConfigError
from cdtl.experiments.multitask_baselines import place_unseen_users
from cdtl.models.multitask import MultiTask


def test_unseen_users_move_to_the_mean_trained_user():
    torch.manual_seed(0)
    model = MultiTask(5, [3, 4], ["target_rating"], "single")
    table = next(m for m in model.modules() if hasattr(m, "user")).user.weight
    before = table.detach().clone()
    moved = place_unseen_users(model, np.array([1, 3, 3]))
    assert moved == 3
    expected = before[[1, 3]].mean(0)
    for row in (0, 2, 4):
        torch.testing.assert_close(table[row].detach(), expected)
    torch.testing.assert_close(table[[1, 3]].detach(), before[[1, 3]])  # trained users keep their rows
    with pytest.raises(ValueError, match="at least one user"):
        place_unseen_users(model, np.array([], dtype=np.int64))


def test_baseline_choices_are_checked_before_any_work():
    cfg = comparison.resolve({"models": [{"name": "s", "arch": "single", "cold_users": "mean_user"}],
                              "bridges": {"models": ["ptupcdr"]}})
    assert cfg["models"][0]["cold_users"] == "mean_user" and cfg["bridges"]["models"] == ["ptupcdr"]
    with_settings = comparison.resolve({"bridges": {"models": ["emcdr_linear"], "transfer": {"mf": {"ranking": {"dim": 8}}}}})
    assert with_settings["bridges"]["transfer"] == {"mf": {"ranking": {"dim": 8}}}
    assert comparison.resolve({})["models"][0]["cold_users"] == "random"
    for config, match in [
        ({"models": [{"name": "m", "arch": "mmoe", "cold_users": "mean_user"}]}, "single only"),
        ({"models": [{"name": "s", "arch": "single", "cold_users": "zero"}]}, "cold_users"),
        ({"bridges": {"models": ["emcdr"]}}, "bridges.models"),
        ({"bridges": {"models": ["ptupcdr"], "transfer": {"mf": {"ranking": {"dimm": 3}}}}}, "bridges.transfer"),
    ]:
        with pytest.raises(ConfigError, match=match):
            comparison.resolve(config)
