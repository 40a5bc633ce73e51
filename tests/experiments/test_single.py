"""`cdtl run`: configs are checked before any work, results are complete, and the same seed repeats."""

from __future__ import annotations

import json

import pytest
import yaml

from cdtl.cli import main
from cdtl.experiments import ConfigError, format_table, resolve, run

TINY = {
    "name": "tiny",
    "dataset": {"name": "movielens-100k"},
    "model": {"name": "mf", "loss": "bpr", "dim": 16},
    "batches": {"batch_size": 4096},
    "train": {"epochs": 2, "lr": 0.01, "progress": False},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "bootstrap": 50},
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"modle": {}}, "unknown key 'modle'; valid keys: batches, dataset, evaluate, model, name, protocol, seed, train"),
        ({"train": {"learning_rate": 0.1}}, "unknown key train.'learning_rate'"),
        ({"model": {"name": "svd"}}, "unknown model 'svd' (str); valid choices: mf, popularity"),
        ({"model": {"loss": "hinge"}}, "unknown model.loss 'hinge' (str); valid choices: mse, bpr, softmax, sampled_softmax"),
        ({"evaluate": {"metrics": ["ndcg@ten"]}}, "unknown metric 'ndcg@ten'"),
        ({"evaluate": {"metrics": ["rmse"]}}, "rating metrics ['rmse'] need a model trained on ratings"),
        ({"protocol": {"name": "leave_one_out"}}, "unknown protocol 'leave_one_out' (str); valid choices: per_user, random, "
                                                  "cold_start"),
        ({"train": {"optimizer": "lion"}}, "unknown optimizer 'lion'"),
    ],
)
def test_bad_configs_fail_before_any_training(change, message):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    for section, values in change.items():
        if isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    with pytest.raises(ConfigError) as err:
        resolve(config)
    assert message in str(err.value)


@pytest.mark.slow
def test_rating_metrics_on_implicit_data_are_refused():
    config = dict(TINY, dataset={"name": "amazon-food-kitchen"}, model={"name": "mf", "loss": "mse"},
                  protocol={"name": "random"}, evaluate={"metrics": ["rmse"]})
    from cdtl.data.download import FetchError

    try:
        run(config)
    except FetchError as err:
        pytest.skip(f"the shared Amazon Food-Kitchen data is not on this machine: {err}")
    except ConfigError as err:
        assert "has no ratings" in str(err)
    else:
        pytest.fail("rmse on implicit data should be refused")


@pytest.mark.slow
def test_run_writes_complete_metrics_and_repeats_with_the_same_seed(tmp_path):
    first = run(TINY, tmp_path / "a")
    second = run(TINY, tmp_path / "b")
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["config"]["model"]["dim"] == 16 and saved["seed"] == 0
    assert {"torch", "python", "cdtl"} <= set(saved["versions"])
    assert saved["wall_seconds"] > 0 and saved["epochs_run"] == 2
    for name in ("recall@10", "ndcg@10"):
        m = saved["metrics"][name]
        assert 0.0 < m["low"] <= m["mean"] <= m["high"] < 1.0 and m["n"] == 943
        assert first["metrics"][name]["mean"] == second["metrics"][name]["mean"]
    assert "ndcg@10" in format_table(first)


@pytest.mark.slow
def test_bpr_beats_popularity_on_ml100k_after_a_little_training(tmp_path):
    pop = run(dict(TINY, model={"name": "popularity"}))
    bpr = run(dict(TINY, train={"epochs": 12, "lr": 0.01, "progress": False}))
    assert bpr["metrics"]["ndcg@10"]["mean"] > pop["metrics"]["ndcg@10"]["mean"]


@pytest.mark.slow
def test_cold_start_users_fall_back_to_popularity():
    base = {"dataset": {"name": "movielens-100k", "domains": "genre"},
            "protocol": {"name": "cold_start", "source": "action", "target": "comedy", "cold_ratio": 0.2},
            "evaluate": {"metrics": ["ndcg@10"], "bootstrap": 50}}
    pop = run(dict(base, model={"name": "popularity"}))
    mf = run(dict(base, model={"name": "mf", "loss": "bpr", "dim": 16}, train={"epochs": 2, "progress": False}))
    assert mf["counts"]["test_users_unseen_in_training"] == mf["metrics"]["ndcg@10"]["n"] == 93
    assert mf["metrics"]["ndcg@10"]["mean"] == pytest.approx(pop["metrics"]["ndcg@10"]["mean"])


@pytest.mark.slow
def test_cli_run_with_overrides(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert main(["run", str(config), "--set", "train.epochs=1", "--set", "model.dim=8", "--out", str(tmp_path / "o")]) == 0
    saved = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert saved["epochs_run"] == 1 and saved["config"]["model"]["dim"] == 8
    assert "recall@10" in capsys.readouterr().out
    assert main(["run", str(config), "--set", "model.name=svd"]) == 2


@pytest.mark.slow
def test_explicit_mf_reports_rating_errors_with_intervals_that_contain_them():
    config = {"dataset": {"name": "movielens-100k"}, "protocol": {"name": "random", "test": 0.1, "val": 0.05},
              "model": {"name": "mf", "loss": "mse", "dim": 16, "reg": 0.05},
              "train": {"epochs": 3, "lr": 0.005, "monitor": "rmse", "mode": "min", "progress": False},
              "evaluate": {"metrics": ["rmse", "mae", "like_f1"], "bootstrap": 100}}
    res = run(config)
    for name in ("rmse", "mae"):
        m = res["metrics"][name]
        assert m["low"] < m["mean"] < m["high"] and m["n"] == 10_000
    assert res["metrics"]["rmse"]["mean"] < 1.05  # the global-mean predictor scores about 1.12 here
    assert 0.0 < res["metrics"]["like_f1"]["mean"] < 1.0
