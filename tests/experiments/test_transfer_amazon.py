"""The transfer comparison on the real Amazon pair (implicit feedback), skipped where the shared data is absent."""

from __future__ import annotations

import pytest

from cdtl.data import FetchError, load
from cdtl.experiments import ConfigError, load_config
from cdtl.experiments.transfer import run


@pytest.fixture(scope="module")
def amazon():
    try:
        return load("amazon-food-kitchen")
    except FetchError as err:
        pytest.skip(f"the shared Amazon Food-Kitchen data is not on this machine: {err}")


@pytest.mark.slow
def test_amazon_pair_runs_through_the_same_comparison(amazon):
    config = load_config("transfer_amazon")
    config.update({"models": ["popularity", "target_mf", "emcdr_linear", "cmf"], "tasks": ["ranking"]})
    config["dataset"]["sample_users"] = 3000
    config["protocol"]["cold_ratios"] = [0.2]
    config["mf"]["ranking"]["epochs"] = 5
    config["cmf"]["epochs"] = 5
    config["evaluate"]["bootstrap"] = 50
    results = run(config)
    rows = {r["model"]: r["metrics"]["ndcg@10"] for r in results["rows"]}
    assert set(rows) == {"popularity", "target_mf", "emcdr_linear", "cmf"}
    assert all(0.0 <= m["mean"] <= 1.0 and m["n"] > 0 for m in rows.values())
    split = results["splits"][0]
    assert split["source"] == "kitchen" and split["target"] == "food"
    assert split["cold_users_without_source_history"] == 0  # cold users are bridge users: all have source history


def test_rating_metrics_on_the_implicit_amazon_pair_are_refused(amazon):
    config = load_config("transfer_amazon")
    config["tasks"] = ["ranking", "rating"]
    with pytest.raises(ConfigError, match="no ratings"):
        run(config)
