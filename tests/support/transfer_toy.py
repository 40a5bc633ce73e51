"""The small, fast settings of every transfer model that the tests of the transfer kind train on the hand-made set."""

from __future__ import annotations

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
