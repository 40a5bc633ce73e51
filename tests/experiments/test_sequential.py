"""The sequential experiment kind: config checks, a small run end to end, the paired table, determinism, results on disk."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cdtl.data import RecData
from cdtl.experiments import registry, sequential
from cdtl.experiments.common import ConfigError

FAST = {"epochs": 2, "progress": False, "monitor": "ndcg@10", "patience": 2}


def _toy() -> RecData:
    """Two domains whose histories walk the items in order; every user active in both."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        for d in "ab":
            start = rng.integers(40)
            rows += [(f"u{u}", f"{d}{(start + t) % 40}", 10 * t + (d == "b"), d) for t in range(int(rng.integers(4, 9)))]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp", "domain"])
    ids = [f"{d}{k}" for d in "ab" for k in range(40)]
    items = pd.DataFrame({"item": ids, "title": ids, "text": ids, "domain": [i[0] for i in ids]})
    return RecData("toy", inter, items)


def _config(**extra):
    return {"kind": "sequential", "name": "toy", "dataset": {"name": "movielens-100k", "domains": "genre"},
            "protocol": {"source": "a", "target": "b", "budgets": [0.1, 1.0]},
            "models": ["popularity", "item_knn", "sasrec", "sasrec_shuffled", "gru4rec"],
            "model": {"dim": 8, "max_len": 6, "layers": 1}, "pretrain": FAST, "train": FAST,
            "evaluate": {"negatives": 10, "bootstrap": 50, "metrics": ["ndcg@10", "hit@10"]}, **extra}


def test_the_kind_is_registered_and_its_configs_resolve():
    assert registry.KINDS["sequential"] == "cdtl.experiments.sequential"
    for name in ("sequential_ml100k", "sequential_ml1m", "sequential_amazon"):
        assert registry.resolve(registry.load_config(name))["kind"] == "sequential"


@pytest.mark.parametrize("change, message", [
    ({"models": ["sasrec", "bert4rec"]}, "bert4rec"),
    ({"protocol": {"budgets": [0.0, 1.0]}}, "budgets"),
    ({"protocol": {"budgets": []}}, "budgets"),
    ({"evaluate": {"reference": "gru4rec"}, "models": ["sasrec"]}, "reference"),
    ({"evaluate": {"metrics": ["auc"]}}, "auc"),
    ({"model": {"depth": 3}}, "depth"),
])
def test_bad_configs_are_refused_by_name(change, message):
    with pytest.raises(ConfigError, match=message):
        sequential.resolve({"kind": "sequential", **change})


def test_a_small_run_scores_every_system_on_the_same_users(tmp_path):
    result = sequential.run(_config(), tmp_path / "out", data=_toy())
    table = result.per_user
    target_users = result.data.target.n_users
    plan = table.groupby(["system", "budget"]).size()
    assert (plan == target_users).all()  # every system, every budget: every target user once
    assert set(plan.index) == {(m, b) for m in ("popularity", "item_knn", "sasrec", "gru4rec") for b in (0.1, 1.0)} | \
        {("sasrec_shuffled", 1.0)}
    assert {"ndcg@10", "sampled_ndcg@10"} <= set(table.columns)
    assert (table["sampled_ndcg@10"] >= 0).all() and table["ndcg@10"].between(0, 1).all()
    paired = pd.DataFrame(result["paired"])
    assert set(paired["reference"]) == {"sasrec"} and (paired["low"] <= paired["high"]).all()
    assert result["counts"]["shared_users"] == 0
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["rows"] and (tmp_path / "out" / "per_user.csv").exists()
    assert "sasrec" in sequential.format_table(written)
    with pytest.raises(Exception, match="earlier run"):
        sequential.run(_config(), tmp_path / "out", data=_toy())


def test_same_seed_same_numbers():
    one, two = (sequential.run(_config(models=["sasrec", "item_knn"]), data=_toy()) for _ in range(2))
    pd.testing.assert_frame_equal(one.per_user, two.per_user)


def _merged_config(**extra):
    return _config(protocol={"setting": "merged", "source": "a", "target": "b", "budgets": [1.0]},
                   models=["popularity", "sasrec", "merged_sasrec_no_domain", "merged_sasrec"], **extra)


def test_the_merged_config_resolves():
    cfg = registry.resolve(registry.load_config("sequential_amazon_merged"))
    assert cfg["protocol"]["setting"] == "merged" and "merged_sasrec" in cfg["models"]
    assert cfg["evaluate"]["negatives"] == 999 and cfg["evaluate"]["reference"] == "sasrec"
    assert sequential.resolve({"kind": "sequential"})["protocol"]["setting"] == "new_domain"


@pytest.mark.parametrize("change, message", [
    ({"protocol": {"setting": "mixed"}}, "protocol.setting must be one of new_domain, merged"),
    ({"protocol": {"setting": "merged"}, "models": ["sasrec", "text_full"]}, "text_full.*need protocol.setting new_domain"),
    ({"models": ["sasrec", "merged_sasrec"]}, "merged_sasrec.*need protocol.setting merged"),
    ({"protocol": {"setting": "merged"}, "models": ["sasrec"], "model": {"source_loss_weight": 1.5}},
     "source_loss_weight"),
])
def test_bad_settings_are_refused_by_name(change, message):
    with pytest.raises(ConfigError, match=message):
        sequential.resolve({"kind": "sequential", **change})


def test_a_merged_run_scores_every_system_on_the_same_users_and_items(tmp_path):
    result = sequential.run(_merged_config(), tmp_path / "out", data=_toy())
    split, table = result.data, result.per_user
    assert split.merged.n_users == split.target.n_users == len(table) / 4
    users = [part.sort_values("user")["user"].tolist() for _, part in table.groupby("system")]
    assert all(u == users[0] for u in users)  # paired: the same users under every system
    assert set(table["budget"]) == {1.0}
    assert result["counts"]["setting"] == "merged"
    model = result.models[("merged_sasrec", 1.0)]
    assert model.domain is not None and result.models[("merged_sasrec_no_domain", 1.0)].domain is None
    assert model.n_items == split.merged.n_items and result.models[("sasrec", 1.0)].n_items == split.target.n_items
    paired = pd.DataFrame(result["paired"])
    assert set(paired["system"]) == {"popularity", "merged_sasrec_no_domain", "merged_sasrec"}
    assert (paired["n"] == split.target.n_users).all()
    assert "merged_sasrec" in sequential.format_table(json.loads((tmp_path / "out" / "metrics.json").read_text()))
