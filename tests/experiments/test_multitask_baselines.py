"""The multi-task comparison's extra baselines: the mean-user single-task model and chapter 04's bridges, checked
before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.experiments import multitask as comparison
from cdtl.experiments.common import ConfigError
from cdtl.experiments.multitask_baselines import place_unseen_users
from cdtl.experiments.transfer import resolve as transfer_resolve
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
    recorded = with_settings["bridges"]["transfer"]  # resolved: every default the bridges train with
    assert recorded["mf"]["ranking"]["dim"] == 8 and recorded == transfer_resolve({"mf": {"ranking": {"dim": 8}}})
    assert comparison.resolve({})["models"][0]["cold_users"] == "random"
    for config, match in [
        ({"models": [{"name": "m", "arch": "mmoe", "cold_users": "mean_user"}]}, "single only"),
        ({"models": [{"name": "s", "arch": "single", "cold_users": "zero"}]}, "cold_users"),
        ({"bridges": {"models": ["emcdr"]}}, "bridges.models"),
        ({"bridges": {"models": ["ptupcdr"], "transfer": {"mf": {"ranking": {"dimm": 3}}}}}, "bridges.transfer"),
    ]:
        with pytest.raises(ConfigError, match=match):
            comparison.resolve(config)


@pytest.mark.slow
def test_mean_user_and_bridge_rows_score_the_same_cold_users():
    from toy_data import two_domains

    config = {"kind": "multitask", "protocol": {"source": "src", "target": "tgt", "cold_ratio": 0.5, "source_holdout": 0.3},
              "features": {"text": False}, "model": {"dim": 4, "hidden": [8], "tower": [4], "n_experts": 2},
              "models": [{"name": "single", "arch": "single"},
                         {"name": "single_mean_user", "arch": "single", "cold_users": "mean_user"}],
              "bridges": {"models": ["emcdr_linear"], "transfer": {"mf": {"ranking": {"dim": 4, "epochs": 3},
                                                                         "rating": {"dim": 4, "epochs": 3}},
                                                                  "mapping": {"epochs": 3}}},
              "train": {"epochs": 2, "progress": False}, "evaluate": {"ks": [5], "bootstrap": 20}}
    out = comparison.run(config, data=two_domains(ratings=True))
    models = out["models"]
    assert models["single"]["epochs_run"] == models["single_mean_user"]["epochs_run"]  # one training, reused
    assert models["single"]["test"]["source_rating"] == models["single_mean_user"]["test"]["source_rating"]
    assert set(models["bridge_emcdr_linear"]["test"]) == {"target_rating", "target_click"}  # a bridge has no source task
    cold = out.per_user[(out.per_user["part"] == "test") & (out.per_user["task"] == "target_click")]
    users = {m: set(cold.loc[cold["model"] == m, "user"]) for m in ("single", "single_mean_user", "bridge_emcdr_linear")}
    assert users["single"] == users["single_mean_user"] == users["bridge_emcdr_linear"]
