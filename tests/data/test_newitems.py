"""The new-item and no-shared-users protocols on toy data where the right split is known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dated_items import toy

from cdtl.data import cold_start_split
from cdtl.data.fewshot import few_shot_split
from cdtl.data.newitems import check_item_texts, choose_new_items, new_item_split
from cdtl.data.tables import DataError, RecData


def test_new_items_are_the_newest_by_year_and_by_first_interaction():
    data = toy()
    assert choose_new_items(data, "tgt", 0.2, by="year").tolist() == ["t16", "t17", "t18", "t19"]
    first = data.interactions[data.interactions["domain"] == "tgt"].groupby("item")["timestamp"].min()
    assert choose_new_items(data, "tgt", 0.1, by="first_interaction").tolist() == sorted(first.nlargest(2).index)


def test_random_new_items_are_seeded_and_sized_by_the_ratio():
    data = toy()
    for ratio, n in ((0.1, 2), (0.2, 4), (0.5, 10)):
        a, b = choose_new_items(data, "tgt", ratio, seed=3), choose_new_items(data, "tgt", ratio, seed=3)
        assert len(a) == n and a.tolist() == b.tolist()
    assert choose_new_items(data, "tgt", 0.5, seed=3).tolist() != choose_new_items(data, "tgt", 0.5, seed=4).tolist()


@pytest.mark.parametrize("by", ["random", "year", "first_interaction"])
@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.5])
def test_no_interaction_with_a_new_item_reaches_training(by, ratio):
    data = toy()
    split = new_item_split(data, "tgt", ratio, source="src", by=by, cold_ratio=0.3, seed=1)
    assert not split.train["item"].isin(split.new_items).any()
    held = pd.concat([split.val, split.test])
    new_rows = data.interactions[data.interactions["item"].isin(split.new_items)]
    assert len(held[held["item_kind"] == "new"]) == len(new_rows)  # every one of them is held out (and scored)
    # cold users' target history never trains; warm users keep most of their old items in training
    target_train = split.train[split.train["domain"] == "tgt"]
    assert not target_train["user"].isin(split.cold_users).any()
    assert set(target_train["user"]) == set(split.warm_users)
    # the parts are a partition of the interactions
    cols = ["user", "item", "domain"]
    parts = pd.concat([split.train[cols], held[cols]])
    assert len(parts) == len(data.interactions) and not parts.duplicated().any()
    assert set(map(tuple, parts.to_numpy())) == set(map(tuple, data.interactions[cols].to_numpy()))


def test_validation_and_test_users_are_apart_and_labelled_by_cell():
    data = toy()
    split = new_item_split(data, "tgt", 0.2, source="src", by="year", cold_ratio=0.3, seed=0)
    assert not set(split.val_users) & set(split.test_users)
    assert set(split.val["user"]) == set(split.val_users) and set(split.test["user"]) == set(split.test_users)
    cold = cold_start_split(data, "src", "tgt", 0.3, seed=0)  # the same cold users as chapter 04's protocol
    assert set(cold.cold_users) <= set(split.cold_users)
    for frame in (split.val, split.test):
        assert set(frame.loc[frame["item_kind"] == "new", "item"]) <= set(split.new_items)
        assert (frame["user_kind"] == np.where(frame["user"].isin(split.warm_users), "warm", "cold")).all()
    cells = split.summary()["held_out"]
    assert all(cells[c]["test"] > 0 for c in ("warm/old", "warm/new", "cold/old", "cold/new")), cells


def test_a_user_whose_target_items_are_all_new_is_cold():
    data = toy()
    extra = pd.DataFrame({"user": "u99", "item": ["t18", "t19", "s0"], "timestamp": [5, 6, 7], "domain": ["tgt", "tgt", "src"]})
    split = new_item_split(RecData("toy", pd.concat([data.interactions, extra], ignore_index=True), data.items),
                           "tgt", 0.2, by="year", seed=0)  # new items: t16..t19
    assert "u99" in split.cold_users and "u99" not in split.warm_users
    mine = pd.concat([split.val, split.test]).query("user == 'u99'")
    assert sorted(mine["item"]) == ["t18", "t19"] and set(mine["user_kind"]) == {"cold"}


@pytest.mark.parametrize("ratio, cause", [(0.01, "leaves no new item"), (0.99, "leaves no training item")])
def test_a_ratio_that_leaves_no_new_or_no_training_items_fails_clearly(ratio, cause):
    with pytest.raises(DataError, match=cause):
        new_item_split(toy(), "tgt", ratio)


def test_bad_choices_fail_with_the_cause():
    data = toy()
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        choose_new_items(data, "tgt", 1.0)
    with pytest.raises(DataError, match="needs a 'year' column"):
        choose_new_items(RecData("toy", data.interactions, data.items.drop(columns="year")), "tgt", 0.2, by="year")
    with pytest.raises(DataError, match="needs a 'timestamp' column"):
        choose_new_items(RecData("toy", data.interactions.drop(columns="timestamp"), data.items), "tgt", 0.2,
                         by="first_interaction")
    with pytest.raises(ValueError, match="need a source domain"):
        new_item_split(data, "tgt", 0.2, cold_ratio=0.2)


def test_a_target_domain_with_no_users_fails_clearly():
    data = toy()
    items = pd.concat([data.items, pd.DataFrame({"item": ["x1"], "title": ["x"], "text": ["x"], "domain": ["empty"]})])
    empty = RecData("toy", data.interactions, items)
    with pytest.raises(DataError, match="'empty' has no users"):
        new_item_split(empty, "empty", 0.2)
    with pytest.raises(DataError, match="'empty' has no users"):
        few_shot_split(empty, "src", "empty")


def test_items_without_text_fail_naming_them():
    items = toy().items.copy()
    items.loc[items["item"] == "t03", "text"] = "  "
    with pytest.raises(DataError, match=r"1 item\(s\) have no text, e\.g\. \['t03'\]"):
        check_item_texts(items, "toy items")
