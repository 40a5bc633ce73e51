"""The fine-tuning kind: its config checked before any data, sized by the profile, histories sampled and kept in time order."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

import cdtl
from cdtl.experiments import ConfigError, finetune


@pytest.mark.parametrize("change, message", [
    ({"protocol": {"cold_ratio": 1.0}}, "protocol.cold_ratio must be > 0 and < 1"),
    ({"batches": {"max_users": 0}}, r"batches.max_users must be an integer >= 1 or null, got 0"),
    ({"batches": {"max_users": "all"}}, r"batches.max_users must be an integer >= 1 or null"),
    ({"batches": {"users": 256}}, r"batches.users was renamed to batches.max_users \(null: every user"),
    ({"batches": {"batch_size": 0}}, "batches.batch_size must be >= 1, got 0"),
    ({"batches": {"batch_size": True}}, "batches.batch_size must be an integer, got True"),
    ({"evaluate": {"whiten_dim": 0}}, "evaluate.whiten_dim must be a positive integer"),
    ({"evaluate": {"metrics": ["ndcg@ten"]}}, "unknown metric 'ndcg@ten'"),
    ({"modle": {}}, "unknown key"),
])
def test_a_bad_config_is_refused_by_key(change, message):
    with pytest.raises(ConfigError, match=message):
        finetune.resolve(change)


def test_the_profile_sizes_the_tuning_and_the_result_still_resolves():
    smoke = cdtl.profile("smoke")
    sized = finetune.size({"model": {"dropout": 0.2}}, smoke)
    assert sized["model"] == {"dropout": 0.2, "freeze_layers": smoke.finetune_freeze_layers,
                              "max_history": smoke.finetune_max_history}
    assert sized["batches"]["max_users"] == smoke.finetune_users and sized["train"]["epochs"] == smoke.finetune_epochs
    assert sized["text"]["max_length"] == smoke.max_length and sized["evaluate"]["bootstrap"] == smoke.bootstrap
    cfg = finetune.resolve(sized)
    assert cfg["model"]["dropout"] == 0.2 and cfg["model"]["user_pooling"] == "mean"  # the rest: the tower's defaults


def test_training_histories_are_in_time_order_and_sampled_by_the_seed():
    items = pd.DataFrame({"item": ["a", "b", "c", "d"]})
    train = pd.DataFrame({"user": ["u1", "u1", "u2", "u3", "u3", "u4"], "item": ["c", "a", "d", "b", "a", "c"],
                          "timestamp": [5, 1, 3, 9, 2, 4]})
    split = SimpleNamespace(train=train, data=SimpleNamespace(items=items))
    every = finetune.training_histories(split, users=0, seed=0)
    assert [h.tolist() for h in every] == [[0, 2], [3], [0, 1], [2]]  # rows of the item table, oldest first
    sample = finetune.training_histories(split, users=2, seed=1)
    assert len(sample) == 2 and all(any(h.tolist() == e.tolist() for e in every) for h in sample)
    assert [h.tolist() for h in finetune.training_histories(split, users=2, seed=1)] == [h.tolist() for h in sample]
    assert len(finetune.training_histories(split, users=10, seed=0)) == 4  # more than there are: every user
