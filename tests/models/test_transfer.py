"""Cross-domain models on a tiny two-domain set where transfer must help: each user's taste is the same in both domains."""

from __future__ import annotations

import pytest
import torch
from toy_data import text_vectors, two_domains
from transfer_toy import CFG

from cdtl.data import cold_start_split
from cdtl.data.crossdomain import encode_split
from cdtl.experiments.transfer import MODELS, fit_model, resolve
from cdtl.experiments.transfer_models import evaluate_users

toy = two_domains  # the hand-made two-domain set of tests/toy_data.py


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


def test_lm_bridge_source_task_runs_in_the_comparison(implicit):
    cd, text = implicit
    model = fit_model("lm_bridge", cd, {**CFG, "lm_bridge": {**CFG["lm_bridge"], "source_task": True}}, text=text)
    ndcg = evaluate_users(model, cd, "test", "ranking", resolve(CFG))["ndcg@5"].mean()
    assert ndcg > 0.85


def test_lm_bridge_attention_pooling_runs_in_the_comparison(implicit):
    cd, text = implicit
    cfg = {**CFG, "lm_bridge": {**CFG["lm_bridge"], "pooling": "attention", "max_history": 3}}
    for name in ("lm_bridge", "ptupcdr_lm"):
        scorer = fit_model(name, cd, cfg, text=text)
        bridge = scorer.model if name == "lm_bridge" else scorer.model.text
        assert bridge.pool is not None and bridge.history.shape == (cd.n_users, 3)
        ndcg = evaluate_users(scorer, cd, "test", "ranking", resolve(CFG))["ndcg@5"].mean()
        assert ndcg > 0.85, f"{name} with attention pooling: NDCG@5 {ndcg:.3f}"
