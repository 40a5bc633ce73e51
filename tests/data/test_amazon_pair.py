"""Preparing the Amazon pair from the release's files: headerless ratings read, shared users kept, what is left out counted."""

from __future__ import annotations

import gzip
import io

import pandas as pd


def test_preparation_reads_headerless_ratings_keeps_shared_users_and_counts_what_it_leaves(tmp_path):
    from cdtl.data import amazon_pair

    kitchen = "U1,K1,5.0,30\nU1,K2,4.0,10\nU2,K1,3.0,5\nU3,K2,5.0,7\nU1,K2,4.0,11\n"  # no header; U1 repeats K2
    food = "user_id,parent_asin,rating,timestamp\nU1,F1,5.0,20\nU4,F1,2.0,1\nU5,K1,5.0,2\n"  # K1 is a kitchen item
    meta = '{"title": "Pan", "parent_asin": "K1"}\n{"parent_asin": "K2", "title": "Pot"}\n'
    files = {name: tmp_path / name for name in ("k.csv", "f.csv", "mk.jsonl", "mf.jsonl")}
    for (name, path), text in zip(files.items(), (kitchen, food, meta, '{"parent_asin": "F1", "title": "Tea"}\n')):
        path.write_text(text)
    settings = {"domains": {"kitchen": {"ratings": "k.csv", "meta": "mk.jsonl"},
                            "food": {"ratings": "f.csv", "meta": "mf.jsonl"}}, "max_users": 3}
    tables, counts = amazon_pair.prepare(files, settings)
    inter = pd.read_csv(io.BytesIO(gzip.decompress(tables["interactions.csv.gz"])))
    assert counts["items_in_both_categories_kept_in_first"] == 1 and counts["repeated_pairs_dropped"] == 1
    assert counts["users_in_both"] == 1 and counts["users"] == 3 and counts["single_category_users_left_out"] == 1
    assert "U1" in set(inter["user_id"])  # the shared user is always kept
    u1 = inter[inter["user_id"] == "U1"].sort_values("position")
    assert u1["item_id"].tolist() == ["K2", "F1", "K1"]  # order in time across both categories
    items = pd.read_csv(io.BytesIO(gzip.decompress(tables["items.csv.gz"])))
    assert dict(zip(items["item_id"], items["title"])) == {"F1": "Tea", "K1": "Pan", "K2": "Pot"}
    again, _ = amazon_pair.prepare(files, settings)
    assert again == tables  # the same files give the same bytes
