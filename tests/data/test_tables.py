"""The checks on every table: columns, ratings, duplicates, domains, id types and timestamps, each error naming the file."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from own_tables import COLUMNS, _tables

from cdtl.data import DataError, load_tables


def test_missing_column_names_file_and_column(tmp_path):
    inter, items = _tables(tmp_path, inter__domain=None)
    with pytest.raises(DataError, match=r"inter\.csv: missing column\(s\) \['domain'\]"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_rating_outside_scale(tmp_path):
    inter, items = _tables(tmp_path, inter__rating=[5, 4, 3, 2, 9])
    with pytest.raises(DataError, match=r"inter\.csv: column 'rating'.*outside the declared scale \[1, 5\].*9"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_ratings_without_a_scale_are_refused(tmp_path):
    inter, items = _tables(tmp_path)
    with pytest.raises(DataError, match="rating_scale"):
        load_tables(inter, items, columns=COLUMNS)


def test_duplicate_rows(tmp_path):
    inter, items = _tables(tmp_path, inter__item_id=["m1", "m1", "m2", "b1", "b2"], inter__rating=[5, 5, 3, 2, 1],
                           inter__user_id=["u1", "u1", "u2", "u2", "u3"], inter__domain=["movies"] * 3 + ["books"] * 2)
    with pytest.raises(DataError, match=r"inter\.csv: 1 duplicate row"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_empty_domain(tmp_path):
    inter, items = _tables(tmp_path, inter__domain=["movies", "movies", "movies", "movies", "movies"],
                           inter__item_id=["m1", "m2", "m2", "m1", "m2"], inter__user_id=["u1", "u2", "u3", "u4", "u5"])
    with pytest.raises(DataError, match="domain 'books' of the item table has no interactions"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_unknown_item_and_wrong_domain(tmp_path):
    inter, items = _tables(tmp_path, inter__item_id=["m1", "b1", "m2", "b1", "zz"])
    with pytest.raises(DataError, match=r"not in the item table.*zz"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))
    inter, items = _tables(tmp_path, inter__domain=["books", "books", "movies", "books", "books"])
    with pytest.raises(DataError, match="a domain other than their item's"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_duplicate_item_ids(tmp_path):
    inter, items = _tables(tmp_path, items__item_id=["m1", "m1", "b1", "b2"])
    with pytest.raises(DataError, match=r"items\.csv: column 'item' has 1 duplicated id"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_missing_domain_in_the_item_table_blames_the_item_table(tmp_path):
    inter, items = _tables(tmp_path, items__domain=["movies", "", "books", "books"])
    with pytest.raises(DataError, match=r"items\.csv: column 'domain' has 1 missing value\(s\), e\.g\. rows \[1\]"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


# --------------------------------------------------------------------------- ids that cannot be confused, timestamps that fit


def _frames(users: list, items_in_inter: list | None = None, item_ids: list | None = None):
    inter = pd.DataFrame({"user": users, "item": items_in_inter or ["m1", "b1", "m2", "b2"],
                          "domain": ["movies", "books", "movies", "books"]})
    items = pd.DataFrame({"item": item_ids or ["m1", "m2", "b1", "b2"], "domain": ["movies", "movies", "books", "books"]})
    return inter, items


def test_a_user_id_typed_differently_in_two_domains_is_refused_naming_both_rows():
    inter, items = _frames([7, "7", 8, "8"])  # 7 (a number) watched films, "7" (text) read books
    with pytest.raises(DataError) as caught:
        load_tables(inter, items)
    message = str(caught.value)
    assert message.startswith("interactions table: column 'user' mixes value types (whole numbers and text)")
    assert "row 0 (domain 'movies'): 7 (int); row 1 (domain 'books'): '7' (str)" in message
    assert "astype(str)" in message


def test_ids_of_one_type_still_load_as_text():
    inter, items = _frames([7, 7, 8, 8])
    data = load_tables(inter, items)
    assert data.interactions["user"].tolist() == ["7", "7", "8", "8"] and data.summary()["overlap_users"] == 2
    inter, items = _frames(["u7", "u7", "u8", "u8"], [1, 3, 2, 4], [1, 2, 3, 4])
    assert load_tables(inter, items).items["item"].tolist() == ["1", "2", "3", "4"]


def test_an_item_id_column_that_mixes_types_is_refused_in_the_item_table():
    inter, items = _frames(["u1", "u1", "u2", "u2"], [1, 3, 2, 4], [1, "2", 3, 4])
    with pytest.raises(DataError, match=r"items table: column 'item' mixes value types \(whole numbers and text\): "
                                        r"row 0 \(domain 'movies'\): 1 \(int\); row 1 \(domain 'movies'\): '2' \(str\)"):
        load_tables(inter, items)


def test_item_ids_typed_differently_in_the_two_files_are_refused(tmp_path):
    inter, items = _frames(["u1", "u1", "u2", "u2"], [1, 3, 2, 4], ["1", "2", "3", "4"])
    inter.to_parquet(tmp_path / "inter.parquet")
    items.to_parquet(tmp_path / "items.parquet")
    with pytest.raises(DataError, match=r"column 'item' holds whole numbers in .*inter\.parquet \(row 0 .*: 1 \(int\)\) "
                                        r"but text in .*items\.parquet \(row 0 .*: '1' \(str\)\)"):
        load_tables(tmp_path / "inter.parquet", tmp_path / "items.parquet")
    inter.to_csv(tmp_path / "inter.csv", index=False)  # a CSV has no types: its ids are text, as the item table's
    assert load_tables(tmp_path / "inter.csv", tmp_path / "items.parquet").interactions["item"].tolist() == ["1", "3",
                                                                                                          "2", "4"]


@pytest.mark.parametrize("value,shown", [(2**70, "1180591620717411303424 (int)"), (2.0**70, "1.1805916207174113e+21"),
                                         (2**64 - 1, "18446744073709551615"), (float("inf"), "inf (float)"),
                                         (-(2**63) - 1, "-9223372036854775809 (int)")])
def test_a_timestamp_outside_64_bits_is_refused_never_wrapped(value, shown):
    inter, items = _frames(["u1", "u1", "u2", "u2"])
    inter["timestamp"] = pd.Series([1, 2, value, 3], dtype=object)
    with pytest.raises(DataError, match=r"interactions table: column 'timestamp' has 1 value\(s\) outside the 64-bit "
                                        rf"integer range .*, e\.g\. row 2: {re.escape(shown)}"):
        load_tables(inter, items)


def test_a_huge_timestamp_in_a_csv_is_refused(tmp_path):
    inter, items = _frames(["u1", "u1", "u2", "u2"])
    inter["timestamp"] = ["1", "2", str(2**70), "3"]
    inter.to_csv(tmp_path / "inter.csv", index=False)
    with pytest.raises(DataError, match=r"inter\.csv: column 'timestamp' has 1 value\(s\) outside the 64-bit .*row 2"):
        load_tables(tmp_path / "inter.csv", items)


def test_timestamps_at_the_ends_of_64_bits_are_kept_exactly():
    inter, items = _frames(["u1", "u1", "u2", "u2"])
    inter["timestamp"] = pd.Series([-(2**63), 0, 2**63 - 1, 5], dtype=object)
    assert load_tables(inter, items).interactions["timestamp"].tolist() == [-(2**63), 0, 2**63 - 1, 5]
