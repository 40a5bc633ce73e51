"""The multitask kind's data: the cold split by task and domain, trivial predictors scored as by hand, errors relative to them."""

from __future__ import annotations

import numpy as np
import pytest
from own_data import CONFIGS
from toy_data import two_domains

from cdtl.experiments import multitask
from cdtl.experiments.multitask_data import prepare, primary, relative_error, task_scores, trivial_scorers


@pytest.fixture(scope="module")
def prepared():
    cfg = multitask.resolve(CONFIGS["multitask"])
    return cfg, prepare(cfg, two_domains(ratings=True, per_group=8))


def test_each_task_trains_on_its_domain_and_no_test_user_trains_in_the_target(prepared):
    _, data = prepared
    counts = data.counts()
    assert counts["train"] == {str(d): len(f) for d, f in data.train.items()}
    users, items, ratings = data.examples("target_rating")
    assert len(users) == len(items) == len(ratings) == len(data.train[1]) and ratings.dtype == np.float32
    assert items.max() < data.n_items[1] and data.examples("source_rating")[1].max() < data.n_items[0]
    tested = set(data.held["test"][1]["u"]) | set(data.held["val"][1]["u"])
    assert tested and not tested & set(data.train[1]["u"])  # cold users: none of their target history trains


def test_the_mean_predictor_is_scored_as_computed_by_hand(prepared):
    cfg, data = prepared
    predict, _ = trivial_scorers(data, "target_rating")
    metrics, per_user = task_scores(cfg, data, "target_rating", "test", predict=predict)
    held = data.held["test"][1]
    by_hand = np.sqrt(np.mean((held["rating"].to_numpy() - data.train[1]["rating"].mean()) ** 2))
    assert metrics["rmse"]["mean"] == pytest.approx(by_hand, rel=1e-5) and metrics["rmse"]["n"] == len(held)
    assert set(per_user["user"]) <= set(data.cd.users.ids)  # user ids decoded
    _, popularity = trivial_scorers(data, "target_click")
    clicks, _ = task_scores(cfg, data, "target_click", "test", score_all=popularity)
    assert 0.0 <= clicks["ndcg@5"]["low"] <= clicks["ndcg@5"]["mean"] <= clicks["ndcg@5"]["high"] <= 1.0


def test_tasks_are_chosen_on_rmse_or_ndcg_and_errors_are_relative_to_the_trivial_one():
    assert primary("target_rating", [5, 10]) == ("rmse", "min")
    assert primary("target_click", [5, 10]) == ("ndcg@5", "max")
    assert relative_error("target_rating", 0.9, 1.0) == pytest.approx(0.9)
    assert relative_error("target_click", 0.5, 0.25) == pytest.approx(2 / 3)  # 1 - NDCG, relative
