"""Cross-domain models on a tiny two-domain set where transfer must help: each user's taste is the same in both domains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from toy_data import N_USERS, text_vectors, two_domains

from cdtl.data import cold_start_split
from cdtl.data.crossdomain import encode_split
from cdtl.data.tables import RecData
from cdtl.experiments import ConfigError
from cdtl.experiments.common import Popularity
from cdtl.experiments.transfer import MODELS, fit_model, resolve, run
from cdtl.experiments.transfer import beyond_accuracy_table as transfer_beyond
from cdtl.experiments.transfer_models import FallbackScorer, evaluate_users

toy = two_domains  # the hand-made two-domain set of tests/toy_data.py

CFG = {
    "mf": {"ranking": {"dim": 8, "lr": 0.05, "epochs": 40, "batch_size": 64},
           "rating": {"dim": 8, "lr": 0.05, "epochs": 40, "batch_size": 64, "reg": 0.0}},
    "mapping": {"lr": 0.02, "epochs": 60, "patience": 60, "batch_size": 16, "hidden": 16},
    "ptupcdr": {"lr": 0.01, "epochs": 40, "patience": 40, "batch_size": 64, "hidden": 16},
    "cmf": {"dim": 8, "lr": 0.05, "rating_lr": 0.05, "epochs": 40, "patience": 40, "batch_size": 64, "rating_reg": 0.0},
    # rating_lr: at lr 0.01 the bridge underfits ratings in 40 epochs (RMSE 1.4-1.7 over seeds 0-5; 0.03-0.08 at 0.03)
    "lm_bridge": {"lr": 0.01, "rating_lr": 0.03, "epochs": 40, "patience": 40, "batch_size": 64, "dim": 8, "hidden": 16,
           "dropout": 0.0},
    "evaluate": {"metrics": ["ndcg@5"], "bootstrap": 50},
}


@pytest.fixture(scope="module")
def implicit():
    data = toy()
    return encode_split(cold_start_split(data, "src", "tgt", 0.5, seed=0)), text_vectors(data)


@pytest.fixture(scope="module")
def explicit():
    data = toy(ratings=True)
    return encode_split(cold_start_split(data, "src", "tgt", 0.5, seed=0)), text_vectors(data)


def test_popularity_cannot_tell_the_groups_apart(implicit):
    cd, _ = implicit
    pop = fit_model("popularity", cd, CFG)
    ndcg = evaluate_users(pop, cd, "test", "ranking", resolve(CFG))["ndcg@5"].mean()
    assert ndcg < 0.8  # both groups' items are about equally popular


@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in MODELS if m not in ("popularity", "target_mf")])
def test_transfer_ranks_the_cold_users_group_first(implicit, name):
    cd, text = implicit
    cfg = resolve(CFG)
    pop = evaluate_users(fit_model("popularity", cd, CFG), cd, "test", "ranking", cfg)["ndcg@5"].mean()
    model = fit_model(name, cd, CFG, text=text)
    ndcg = evaluate_users(model, cd, "test", "ranking", cfg)["ndcg@5"].mean()
    assert ndcg > 0.85 and ndcg > pop + 0.15, f"{name}: NDCG@5 {ndcg:.3f} vs popularity {pop:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["emcdr_linear", "emcdr_mlp", "ptupcdr", "cmf", "lm_bridge", "ptupcdr_lm"])
def test_transfer_predicts_cold_ratings_better_than_the_mean_user(explicit, name):
    cd, text = explicit
    cfg = resolve(CFG)
    base = evaluate_users(fit_model("target_mf", cd, CFG, task="rating"), cd, "test", "rating", cfg)["result"]["rmse"]
    model = fit_model(name, cd, CFG, task="rating", text=text)
    rmse = evaluate_users(model, cd, "test", "rating", cfg)["result"]["rmse"]
    assert rmse < 0.75 * base, f"{name}: RMSE {rmse:.3f} vs target-only mean user {base:.3f}"
    pred = model.predict(torch.tensor(cd.test["u"].to_numpy()), torch.tensor(cd.test["i"].to_numpy()))
    assert pred.min() >= 1.0 and pred.max() <= 5.0  # clamped into the rating scale


def test_scorer_gives_users_without_source_history_the_fallback():
    class Const:
        def score_all(self, users):
            return torch.ones(len(users), 4)

    pop = Popularity(np.array([1, 1, 1, 2, 2, 3]), 4)  # training counts 0, 3, 2, 1
    scorer = FallbackScorer(Const(), np.array([True, False, True]), pop)
    scores = scorer.score_all(torch.tensor([0, 1, 2]))
    assert torch.equal(scores[1], pop.counts) and torch.equal(scores[0], torch.ones(4))


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
def test_lm_bridge_ranks_target_items_nobody_trained_on_by_their_text():
    """Items 4 and 9 of the target appear only in held-out data: no id model has learned them, text still places them."""
    data = toy(seed=1)
    split = cold_start_split(data, "src", "tgt", 0.5, seed=0)
    unseen = ["tgt4", "tgt9"]  # one item of each taste group
    split.train = split.train[~split.train["item"].isin(unseen)].reset_index(drop=True)
    cd = encode_split(split)
    users = torch.as_tensor(cd.test_users)
    cols = torch.as_tensor(cd.target_items.encode(unseen))
    group = torch.tensor([int(u[1:]) % 2 for u in cd.users.decode(cd.test_users)])  # 0 likes tgt4, 1 likes tgt9

    def share_right(name: str, text: torch.Tensor, seed: int = 0) -> float:
        scores = fit_model(name, cd, CFG, text=text, seed=seed).score_all(users)[:, cols]
        return float(((scores[:, 0] > scores[:, 1]).long() == (1 - group)).float().mean())

    seeds = (0, 1, 2, 3)
    lm = [share_right("lm_bridge", text_vectors(data), seed) for seed in seeds]
    # an id model knows nothing of the two items: which one it puts first follows its initialisation
    cmf = [share_right("cmf", text_vectors(data), seed) for seed in seeds]
    noise = share_right("lm_bridge", torch.randn(len(data.items), 8, generator=torch.Generator().manual_seed(1)))
    assert min(lm) >= 0.9, f"LM bridge put the in-taste unseen item first for only {min(lm):.0%} of cold users"
    assert min(cmf) < min(lm) - 0.2, f"CMF was right on every seed: {cmf}"
    assert min(lm) > noise + 0.2, (lm, noise)


def test_sample_users_keeps_whole_histories():
    from cdtl.data.sampling import sample_users

    data = toy()
    small = sample_users(data, 10, seed=3)
    assert small.interactions["user"].nunique() == 10
    for user, part in small.interactions.groupby("user"):
        assert len(part) == (data.interactions["user"] == user).sum()
    assert set(small.items["item"]) == set(small.interactions["item"])
    assert small.notes["sample"]["of_users"] == N_USERS
    with pytest.raises(ValueError, match="n_users"):
        sample_users(data, 0)


def test_bridge_only_sample_keeps_users_of_both_domains():
    from cdtl.data.sampling import sample_users

    data = toy()
    extra = pd.DataFrame({"user": ["solo"], "item": ["src0"], "timestamp": [0], "domain": ["src"]})
    data = RecData("toy", pd.concat([data.interactions, extra], ignore_index=True), data.items)
    small = sample_users(data, 1000, seed=0, bridge_only=True)
    assert "solo" not in set(small.interactions["user"]) and small.interactions["user"].nunique() == N_USERS


def test_lm_bridge_source_task_runs_in_the_comparison(implicit):
    cd, text = implicit
    model = fit_model("lm_bridge", cd, {**CFG, "lm_bridge": {**CFG["lm_bridge"], "source_task": True}}, text=text)
    ndcg = evaluate_users(model, cd, "test", "ranking", resolve(CFG))["ndcg@5"].mean()
    assert ndcg > 0.85


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


def test_lm_bridge_attention_pooling_runs_in_the_comparison(implicit):
    cd, text = implicit
    cfg = {**CFG, "lm_bridge": {**CFG["lm_bridge"], "pooling": "attention", "max_history": 3}}
    for name in ("lm_bridge", "ptupcdr_lm"):
        scorer = fit_model(name, cd, cfg, text=text)
        bridge = scorer.model if name == "lm_bridge" else scorer.model.text
        assert bridge.pool is not None and bridge.history.shape == (cd.n_users, 3)
        ndcg = evaluate_users(scorer, cd, "test", "ranking", resolve(CFG))["ndcg@5"].mean()
        assert ndcg > 0.85, f"{name} with attention pooling: NDCG@5 {ndcg:.3f}"


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
