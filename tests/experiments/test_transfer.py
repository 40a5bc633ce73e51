"""The transfer kind: configs checked before any work, one row per model, ratio and task, and a result that does not
depend on which other models or cells ran."""

from __future__ import annotations

import pandas as pd
import pytest
from own_data import CONFIGS, PROTOCOL
from toy_data import text_vectors, two_domains
from transfer_toy import CFG

from cdtl.experiments import ConfigError, Result
from cdtl.experiments.transfer import beyond_accuracy_table as transfer_beyond
from cdtl.experiments.transfer import resolve, run

toy = two_domains  # the hand-made two-domain set of tests/toy_data.py


def _rows(result: Result, model: str) -> dict:
    return {(r["seed"], r["cold_ratio"], r["task"]): r["metrics"] for r in result["rows"] if r["model"] == model}


def test_running_a_subset_of_models_reproduces_their_rows_exactly():
    data = two_domains(ratings=True)
    base = {**CONFIGS["transfer"], "mapping": {"epochs": 3, "hidden": 8, "patience": 3}}
    alone = run({**base, "models": ["popularity", "emcdr_mlp"]}, data=data)
    after_others = run({**base, "models": ["emcdr_linear", "target_mf", "emcdr_mlp"]}, data=data)
    assert _rows(alone, "emcdr_mlp") == _rows(after_others, "emcdr_mlp")
    assert set(_rows(alone, "emcdr_mlp")) == {(0, 0.5, "ranking"), (0, 0.5, "rating")}


@pytest.mark.slow
def test_each_seed_and_cold_ratio_cell_reproduces_on_its_own():
    data = two_domains(ratings=True)
    config = {**CONFIGS["transfer"], "models": ["emcdr_mlp"], "tasks": ["ranking"]}
    full = run({**config, "seeds": [0, 1], "protocol": {**PROTOCOL, "cold_ratios": [0.3, 0.5]}}, data=data)
    one = run({**config, "seeds": [1], "protocol": {**PROTOCOL, "cold_ratios": [0.5]}}, data=data)
    assert _rows(one, "emcdr_mlp")[(1, 0.5, "ranking")] == _rows(full, "emcdr_mlp")[(1, 0.5, "ranking")]


def test_config_errors_name_the_choices():
    with pytest.raises(ConfigError, match="valid choices"):
        resolve({"models": ["emcdr", "magic"]})
    with pytest.raises(ConfigError, match="tasks"):
        resolve({"tasks": ["clicks"]})
    with pytest.raises(ConfigError, match="mae, rmse"):
        resolve({"evaluate": {"metrics": ["rmse"]}})
    with pytest.raises(ConfigError, match="cold_ratios"):
        resolve({"protocol": {"cold_ratios": [1.0]}})


def test_rating_metrics_on_implicit_data_fail_clearly():
    with pytest.raises(ConfigError, match="no ratings"):
        run({"protocol": {"source": "src", "target": "tgt"}, "tasks": ["rating"]}, data=toy())


def test_a_ratio_that_leaves_no_warm_users_fails_clearly():
    with pytest.raises(ValueError, match="no warm users"):
        run({"protocol": {"source": "src", "target": "tgt", "cold_ratios": [0.999]}, "models": ["popularity"],
             "tasks": ["ranking"]}, data=toy())


@pytest.mark.slow
def test_run_writes_one_row_per_model_ratio_and_task(tmp_path):
    cfg = {**CFG, "protocol": {"source": "src", "target": "tgt", "cold_ratios": [0.5]},
           "models": ["popularity", "target_mf", "cmf"], "tasks": ["ranking", "rating"]}
    results = run(cfg, tmp_path, data=toy(ratings=True))
    assert {(r["task"], r["model"]) for r in results["rows"]} == {
        ("ranking", "popularity"), ("ranking", "target_mf"), ("ranking", "cmf"), ("rating", "target_mf"), ("rating", "cmf")}
    per_user = pd.read_csv(tmp_path / "per_user.csv")
    assert set(per_user["model"]) == {"popularity", "target_mf", "cmf"}
    assert (tmp_path / "metrics.json").exists()
    assert per_user.groupby(["task", "model"]).size().nunique() == 1  # every model scored on the same users


@pytest.mark.slow
def test_a_model_scores_the_same_whatever_else_the_comparison_runs(tmp_path):
    """Running one row of a table alone reproduces it: each model draws from its own seed."""
    base = {**CFG, "tasks": ["ranking", "rating"]}
    alone = run({**base, "protocol": {"source": "src", "target": "tgt", "cold_ratios": [0.5]},
                 "models": ["emcdr_mlp"]}, data=toy(ratings=True))
    among = run({**base, "protocol": {"source": "src", "target": "tgt", "cold_ratios": [0.3, 0.5]},
                 "cmf": {**CFG["cmf"], "epochs": 25},  # another model's settings leave emcdr_mlp's row alone
                 "models": ["popularity", "emcdr_linear", "ptupcdr", "cmf", "emcdr_mlp"]}, data=toy(ratings=True))
    rows = {(r["task"], r["cold_ratio"], r["model"]): r["metrics"] for r in among["rows"]}
    for row in alone["rows"]:
        assert row["metrics"] == rows[(row["task"], 0.5, "emcdr_mlp")], row["task"]


def test_tuned_encoder_reads_the_splits_training_interactions_only(monkeypatch):
    import cdtl.models.tuned_encoder as tuned_encoder
    from cdtl.models.tuned_encoder import TunedEncoder

    data, seen = toy(), {}

    def fake_tuning(items, train, **settings):
        seen["train"], seen["settings"] = train, settings
        return TunedEncoder(text_vectors(data), 1.5, 0.5, False, int(train["user"].nunique()))

    monkeypatch.setattr(tuned_encoder, "tune_item_encoder", fake_tuning)
    cfg = {**CFG, "models": ["lm_bridge"], "tasks": ["ranking"], "text": {"encoder": "tuned"},
           "protocol": {"source": "src", "target": "tgt", "cold_ratios": [0.5]}, "tuning": {"max_users": 30}}
    result = run(cfg, data=data)
    split = result.data.split
    train = seen["train"]
    cold_target = train[(train["domain"] == "tgt") & train["user"].isin(split.cold_users)]
    assert len(train) == len(split.train) and cold_target.empty  # no cold user's target history tunes the encoder
    assert seen["settings"]["max_users"] == 30
    assert result["tuning"][0]["train_seconds"] == 1.5 and result["rows"][0]["validation"]["ndcg@5"] > 0.5


def test_text_options_are_checked():
    with pytest.raises(ConfigError, match="lm_bridge.pooling must be one of mean, attention"):
        resolve({"lm_bridge": {"pooling": "max"}})
    with pytest.raises(ConfigError, match="text.encoder must be one of frozen, tuned"):
        resolve({"text": {"encoder": "finetuned"}})


@pytest.mark.slow
def test_loss_swapped_rows_rank_only_and_what_models_recommend_is_measured():
    cfg = {**CFG, "protocol": {"source": "src", "target": "tgt", "cold_ratios": [0.5]},
           "mf": {t: {**CFG["mf"][t], "epochs": 5} for t in ("ranking", "rating")},
           "mapping": {**CFG["mapping"], "epochs": 5}, "lm_bridge": {**CFG["lm_bridge"], "epochs": 5},
           "models": ["popularity", "emcdr_linear_softmax", "lm_bridge_bpr"], "tasks": ["ranking", "rating"]}
    data = toy(ratings=True)
    results = run(cfg, data=data)
    assert {(r["task"], r["model"]) for r in results["rows"]} == {
        ("ranking", "popularity"), ("ranking", "emcdr_linear_softmax"), ("ranking", "lm_bridge_bpr")}
    beyond = transfer_beyond(results, k=3)
    n_items = results.data.n_target_items
    assert beyond.loc["popularity", "coverage@3"] == pytest.approx(3 / n_items)  # the same three items for everyone
    assert beyond.loc["popularity", "coverage@3"] == beyond["coverage@3"].min()
    assert ((beyond["coverage@3"] > 0) & (beyond["coverage@3"] <= 1)).all() and (beyond["novelty@3"] > 0).all()
