"""The cold-start protocol: invariants, ratios, determinism, bad arguments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from movielens_domains import ml100k_domains  # noqa: F401  (fixture)

from cdtl.data import (
    DataError,
    RecData,
    check_split,
    cold_start_split,
    load_tables,
    split_checks,
)


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.8])
def test_cold_users_target_history_never_reaches_training(ml100k_domains, ratio):
    split = cold_start_split(ml100k_domains, "action", "comedy", ratio, seed=3)
    checks = check_split(split)  # the checks chapter 01 shows
    assert checks["leaked_interactions"] == 0 and checks["cold_share"] == pytest.approx(ratio, abs=1 / 936)
    cold = set(split.cold_users)
    train_target = split.domain_train("comedy")
    assert not cold.intersection(train_target["user"])
    assert set(split.val["user"]) == set(split.val_users)
    assert set(split.test["user"]) == set(split.test_users)
    assert not set(split.val_users) & set(split.test_users)
    assert not set(split.warm_users) & cold
    overlap = len(split.warm_users) + len(cold)
    assert overlap == 936
    assert abs(len(cold) - ratio * overlap) <= 1
    # every interaction is in exactly one of train / val / test
    assert len(split.train) + len(split.val) + len(split.test) == len(ml100k_domains.interactions)
    # cold users keep their source history in training: that is the bridge
    assert set(split.source_history()["user"]) == cold
    assert (split.val["domain"] == "comedy").all() and (split.test["domain"] == "comedy").all()


def test_same_seed_same_split_other_seed_other_split(ml100k_domains):
    a = cold_start_split(ml100k_domains, "action", "comedy", 0.2, seed=7)
    b = cold_start_split(ml100k_domains, "action", "comedy", 0.2, seed=7)
    c = cold_start_split(ml100k_domains, "action", "comedy", 0.2, seed=8)
    assert np.array_equal(a.test_users, b.test_users) and np.array_equal(a.val_users, b.val_users)
    pd.testing.assert_frame_equal(a.train, b.train)
    assert not np.array_equal(a.test_users, c.test_users)


def _two_domains(users_a, users_b) -> RecData:
    inter = pd.DataFrame(
        [(u, f"a{i}", "A") for u in users_a for i in range(3)] + [(u, f"b{i}", "B") for u in users_b for i in range(3)],
        columns=["user", "item", "domain"],
    )
    items = pd.DataFrame({"item": [f"a{i}" for i in range(3)] + [f"b{i}" for i in range(3)],
                          "domain": ["A"] * 3 + ["B"] * 3, "title": [f"t{i}" for i in range(6)]})
    return load_tables(inter, items, name="toy")


def test_bad_ratios_and_disjoint_domains_fail_clearly():
    data = _two_domains(["u1", "u2", "u3", "u4"], ["u1", "u2", "u3", "u4"])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        cold_start_split(data, "A", "B", 1.0)
    with pytest.raises(ValueError, match="leaves no warm users"):
        cold_start_split(data, "A", "B", 0.9)
    with pytest.raises(ValueError, match="too few to split"):
        cold_start_split(data, "A", "B", 0.1)
    with pytest.raises(ValueError, match="unknown domain 'C'"):
        cold_start_split(data, "A", "C", 0.5)
    disjoint = _two_domains(["u1", "u2"], ["u3", "u4"])
    with pytest.raises(DataError, match="share no users"):
        cold_start_split(disjoint, "A", "B", 0.5)


def test_split_on_tiny_data_is_exact():
    data = _two_domains([f"u{i}" for i in range(10)], [f"u{i}" for i in range(10)])
    split = cold_start_split(data, "A", "B", 0.4, seed=0)
    assert (len(split.warm_users), len(split.val_users), len(split.test_users)) == (6, 2, 2)
    assert len(split.test) == 2 * 3 and len(split.val) == 2 * 3


@pytest.mark.parametrize("kwargs,match", [
    ({"cold_ratio": "0.2"}, r"cold_ratio must be a number between 0 and 1 \(e\.g\. 0\.2\), got '0\.2' \(str\)"),
    ({"cold_ratio": True}, r"cold_ratio must be a number .* got True \(bool\)"),
    ({"seed": 1.5}, r"seed must be a non-negative integer, got 1\.5 \(float\)"),
    ({"seed": "0"}, r"seed must be a non-negative integer, got '0' \(str\)"),
    ({"val_fraction": None}, r"val_fraction must be a number"),
    ({"source": 1}, r"source must be a domain name \(str\), got 1 \(int\)"),
])
def test_argument_types_are_checked_by_name(kwargs, match):
    data = _two_domains([f"u{i}" for i in range(10)], [f"u{i}" for i in range(10)])
    args = {"source": "A", "target": "B", "cold_ratio": 0.4, "seed": 0, **kwargs}
    with pytest.raises(TypeError, match=match):
        cold_start_split(data, **args)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        cold_start_split(data, "A", "B", 0.4, seed=-1)
    with pytest.raises(TypeError, match="data must be a RecData"):
        cold_start_split(data.interactions, "A", "B", 0.4)
    assert len(cold_start_split(data, "A", "B", np.float32(0.4), seed=np.int64(0)).test_users) == 2


def test_split_checks_catch_a_leak_and_a_lost_interaction(ml100k_domains):
    split = cold_start_split(ml100k_domains, "action", "comedy", 0.2, seed=0)
    held = split.test.iloc[:3]
    leaky = dataclasses.replace(split, train=pd.concat([split.train, held]), test=split.test.iloc[3:])
    assert split_checks(leaky)["leaked_interactions"] == 3
    with pytest.raises(ValueError, match="leaked_interactions \\(3 held-out"):
        check_split(leaky)
    lossy = dataclasses.replace(split, test=split.test.iloc[1:])
    assert split_checks(lossy)["nothing_lost"] is False
    with pytest.raises(ValueError, match="nothing_lost"):
        check_split(lossy)
