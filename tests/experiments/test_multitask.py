"""The multitask kind: its config checked before any work, sized by the profile, and a model that scores the same
whatever ran before it."""

from __future__ import annotations

import pytest
from own_data import CONFIGS
from toy_data import two_domains

from cdtl.experiments import ConfigError, run
from cdtl.experiments import multitask as comparison


@pytest.mark.slow
def test_a_multitask_model_scores_the_same_whatever_ran_before_it():
    data = two_domains(ratings=True)
    both = run(CONFIGS["multitask"], data=data)
    alone = run({**CONFIGS["multitask"], "models": [{"name": "mmoe", "arch": "mmoe"}]}, data=data)
    assert alone["models"]["mmoe"]["test"] == both["models"]["mmoe"]["test"]


def test_comparison_config_is_checked_before_any_work():
    assert comparison.resolve({})["tasks"] == ["source_rating", "target_rating", "target_click"]
    bad = [
        ({"models": [{"name": "a", "arch": "moe"}]}, "arch 'moe'"),
        ({"models": [{"name": "a", "arch": "mmoe"}, {"name": "a", "arch": "ple"}]}, "distinct"),
        ({"models": [{"name": "a", "arch": "mmoe", "weighting": "uncertainty", "loss_weights": {"target_click": 2}}]},
         "learned"),
        ({"models": [{"name": "a", "arch": "mmoe", "loss_weights": {"source_click": 2}}]}, "loss_weights"),
        ({"models": [{"name": "a", "arch": "mmoe", "gates": 2}]}, "unknown key"),
        ({"tasks": ["target_rating", "clicks"]}, "tasks must be"),
        ({"model": {"levels": 3}}, "levels"),
        ({"protocol": {"source_holdout": 0.0}}, "source_holdout"),
        ({"train": {"lr": "1e-3"}}, "lr"),
        ({"evaluate": {"ks": [0]}}, "ks"),
        ({"modle": {}}, "unknown key"),
    ]
    for config, match in bad:
        with pytest.raises(ConfigError, match=match):
            comparison.resolve(config)


def test_profile_caps_epochs_and_bootstrap():
    import cdtl

    smoke = cdtl.profile("smoke")
    sized = comparison.size({"kind": "multitask", "train": {"epochs": 50}}, smoke)
    assert sized["train"]["epochs"] == smoke.epochs and sized["evaluate"]["bootstrap"] == smoke.bootstrap
