"""The fusion kind's config: bad keys and choices named, the bridge a switch sized and resolved like the rest."""

from __future__ import annotations

import pytest

from cdtl.experiments import ConfigError
from cdtl.experiments import fusion as comparison
from cdtl.profiles import profile


@pytest.mark.parametrize("change, message", [
    ({"scorers": ["mf", "bert"]},
     r"unknown scorer\(s\) \['bert'\] \(list of 1\); valid choices: mf, text, popularity, lm_bridge"),
    ({"scorers": ["mf", "text"]}, "must include 'popularity'"),
    ({"scorers": []}, "non-empty list"),
    ({"fusion": {"modes": ["average"]}}, "fusion.modes must be a non-empty list of uniform, global, user"),
    ({"protocol": {"warm_test": 0.7}}, r"protocol.warm_test must be a fraction in \(0, 0.5\)"),
    ({"mf": {"train": {"lr": "1e-3"}}}, r"mf.train.lr must be a number \(quote nothing"),
    ({"fusion": {"temprature": 1.0}}, "unknown key fusion.'temprature'"),
    ({"evaluate": {"metrics": ["recall@10"]}}, "must include ndcg@10"),
])
def test_config_errors_are_clear(change, message):
    with pytest.raises(ConfigError, match=message):
        comparison.resolve({"kind": "fusion", **change})


def test_bridge_config_is_resolved_before_any_data_and_size_caps_base_epochs():
    from cdtl.experiments import transfer

    cfg = comparison.resolve({"kind": "fusion", "lm_bridge": {"config": {"lm_bridge": {"dim": 8}}}})
    assert cfg["lm_bridge"]["config"] == transfer.resolve({"lm_bridge": {"dim": 8}})  # every default, as recorded
    assert cfg["lm_bridge"]["config"]["lm_bridge"]["dim"] == 8
    with pytest.raises(ConfigError, match=r"^lm_bridge.config: unknown key 'anything'"):
        comparison.resolve({"kind": "fusion", "lm_bridge": {"config": {"anything": 1}}})
    with pytest.raises(ConfigError, match="lm_bridge.config must be a mapping"):
        comparison.resolve({"kind": "fusion", "lm_bridge": {"config": [1]}})
    sized = comparison.size({"kind": "fusion", "mf": {"train": {"epochs": 99}}}, profile("smoke"))
    assert sized["mf"]["train"]["epochs"] == profile("smoke").epochs
    assert sized["evaluate"]["bootstrap"] == profile("smoke").bootstrap
    comparison.resolve(sized)


def test_the_language_model_bridge_is_a_config_switch_sized_like_the_rest():
    sized = comparison.size({"kind": "fusion", "scorers": ["mf", "lm_bridge", "popularity"]}, profile("smoke"))
    bridge = sized["lm_bridge"]["config"]
    assert bridge["lm_bridge"]["epochs"] <= profile("smoke").epochs
    assert bridge["text"]["max_length"] == profile("smoke").max_length
    cfg = comparison.resolve(sized)
    assert cfg["scorers"] == ["mf", "lm_bridge", "popularity"] and cfg["lm_bridge"]["model"] == "lm_bridge"
