"""Tests of the Amazon Reviews 2023 loader on the invented fixtures in data/fixtures/amazon2023."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from cdtl.data.amazon import amazon2023_urls, load_amazon2023
from cdtl.data.tables import DataError

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures" / "amazon2023"
CATS = ["All_Beauty", "Video_Games"]
USER1 = "AFAKEUSER01XAMPLEQZ"


@pytest.fixture(scope="module")
def data():
    return load_amazon2023(CATS, FIXTURES)


def _copy_fixtures(tmp_path: Path) -> Path:
    target = tmp_path / "amazon"
    shutil.copytree(FIXTURES, target)
    return target


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_counts_per_domain_and_shared_users(data):
    s = data.summary()
    assert s["name"] == "amazon2023:All_Beauty+Video_Games"
    assert (s["users"], s["items"], s["interactions"]) == (6, 16, 19)
    assert s["domains"]["All_Beauty"]["users"] == 4
    assert s["domains"]["All_Beauty"]["interactions"] == 9
    assert s["domains"]["Video_Games"]["users"] == 5
    assert s["domains"]["Video_Games"]["interactions"] == 10
    assert s["domains"]["All_Beauty"]["items"] == s["domains"]["Video_Games"]["items"] == 8
    assert s["overlap_users"] == 3
    assert data.domains == CATS
    assert data.rating_scale == (1.0, 5.0) and data.users is None
    assert list(data.interactions.columns) == ["user", "item", "rating", "timestamp", "domain"]
    assert list(data.items.columns) == ["item", "title", "text", "domain", "categories", "store"]


def test_text_order_and_html_unescaped(data):
    items = data.items.set_index("item")
    oil = items.loc["B0AB000001"]
    assert oil["title"] == "Rose & Oud Hair Oil"
    assert oil["store"] == "Petal & Stem"
    assert oil["text"] == (
        "Rose & Oud Hair Oil. Brand: Petal & Stem. Features: Cold-pressed argan oil, 30 ml glass bottle. "
        "Description: A light oil for dry ends"
    )
    pad = items.loc["B0VG000001"]
    assert pad["title"] == "Wireless Controller \u2013 Midnight Blue"
    assert pad["categories"] == "Video Games, PC, Accessories, Controllers"
    text = pad["text"]
    positions = [text.index(s) for s in ("Wireless Controller", "Brand: PlayForge", "Categories: Video Games",
                                         "Features: Rechargeable", "Description: Works")]
    assert positions == sorted(positions)
    assert "&amp;" not in " ".join(data.items["text"]) and "<b>" not in " ".join(data.items["text"])


def test_text_truncated_to_max_chars():
    short = load_amazon2023(CATS, FIXTURES, max_text_chars=30).items.set_index("item")
    assert all(len(t) <= 30 for t in short["text"])
    assert short.loc["B0VG000001", "text"].startswith("Wireless Controller")
    full = load_amazon2023(CATS, FIXTURES, max_text_chars=None).items
    assert full["text"].str.len().max() > 100


def test_timestamps_in_seconds(data):
    ts = data.interactions.set_index(["user", "item"])["timestamp"]
    assert ts.loc[(USER1, "B0VG000001")] == 1610000000  # 1610000000123 ms
    assert ts.loc[(USER1, "B0AB000002")] == 1590000000  # 1590000000999 ms, floored
    assert data.interactions["timestamp"].between(1_500_000_000, 2_000_000_000).all()
    assert str(data.interactions["timestamp"].dtype) == "int64"


def test_repeated_review_keeps_latest(data):
    rows = data.interactions[(data.interactions["user"] == USER1) & (data.interactions["item"] == "B0AB000001")]
    assert len(rows) == 1
    assert rows["rating"].iloc[0] == 4.0 and rows["timestamp"].iloc[0] == 1600000000
    assert data.notes["repeated_reviews_collapsed"] == 1


def test_notes_counts_and_items_without_metadata(data):
    assert data.notes["items_without_metadata"] == 1
    assert data.notes["metadata_items_without_reviews"] == 1
    assert data.notes["users_below_min_interactions"] == 0
    items = data.items.set_index("item")
    assert items.loc["B0AB000099", "title"] == "" and items.loc["B0AB000099", "text"] == ""
    assert "B0AB000008" not in items.index  # metadata only, never reviewed


def test_min_user_interactions_and_domain_names():
    d = load_amazon2023(CATS, FIXTURES, min_user_interactions=2, domain_names=["beauty", "games"])
    assert d.domains == ["beauty", "games"]
    assert d.notes["users_below_min_interactions"] == 1
    assert d.notes["items_only_reviewed_by_dropped_users"] == 1
    assert d.summary()["users"] == 5 and len(d.interactions) == 18
    assert "B0VG000008" not in set(d.items["item"])
    assert d.interactions.groupby("user").size().min() >= 2


def test_missing_file_message(tmp_path):
    shutil.copy(FIXTURES / "All_Beauty.jsonl", tmp_path / "All_Beauty.jsonl")
    with pytest.raises(FileNotFoundError) as err:
        load_amazon2023(["All_Beauty"], tmp_path)
    msg = str(err.value)
    assert "meta_All_Beauty.jsonl or meta_All_Beauty.jsonl.gz" in msg
    assert "All_Beauty.jsonl or" not in msg.replace("meta_All_Beauty.jsonl or", "")  # the reviews file was found
    assert "https://amazon-reviews-2023.github.io/" in msg and str(tmp_path) in msg
    assert amazon2023_urls("All_Beauty")["meta"] in msg


def test_urls():
    urls = amazon2023_urls("Video_Games")
    assert urls == {
        "reviews": "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw/review_categories/Video_Games.jsonl.gz",
        "meta": "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw/meta_categories/meta_Video_Games.jsonl.gz",
    }


def test_malformed_line_names_file_and_line(tmp_path):
    root = _copy_fixtures(tmp_path)
    path = root / "Video_Games.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    lines[2] = '{"rating": 5.0, "user_id": \n'
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(lines)
    with pytest.raises(DataError, match=r"Video_Games\.jsonl\.gz: line 3 is not valid JSON"):
        load_amazon2023(CATS, root)


def test_missing_key_names_file_line_and_key(tmp_path):
    root = _copy_fixtures(tmp_path)
    path = root / "All_Beauty.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    del records[4]["user_id"]
    _write_jsonl(path, records)
    with pytest.raises(DataError, match=r"All_Beauty\.jsonl: line 5: missing required key 'user_id'"):
        load_amazon2023(CATS, root)

    meta = root / "meta_All_Beauty.jsonl"
    _write_jsonl(path, records[:4])
    _write_jsonl(meta, [{"title": "No id here"}])
    with pytest.raises(DataError, match=r"meta_All_Beauty\.jsonl: line 1: missing required key 'parent_asin'"):
        load_amazon2023(["All_Beauty"], root)


def test_same_item_in_two_categories(tmp_path):
    root = _copy_fixtures(tmp_path)
    review = {"rating": 3.0, "title": "", "text": "", "images": [], "asin": "B0AB000003", "parent_asin": "B0AB000003",
              "user_id": USER1, "timestamp": 1620000000000, "helpful_vote": 0, "verified_purchase": True}
    _write_jsonl(root / "Handmade_Products.jsonl", [review])
    _write_jsonl(root / "meta_Handmade_Products.jsonl", [])
    with pytest.raises(DataError) as err:
        load_amazon2023(["All_Beauty", "Handmade_Products"], root)
    msg = str(err.value)
    assert "'B0AB000003'" in msg and "'All_Beauty'" in msg and "'Handmade_Products'" in msg


def test_bad_arguments():
    with pytest.raises(ValueError, match="domain_names"):
        load_amazon2023(CATS, FIXTURES, domain_names=["only_one"])
    with pytest.raises(ValueError, match="item_key"):
        load_amazon2023(CATS, FIXTURES, item_key="title")
