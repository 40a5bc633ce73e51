"""Your own tables from CSV, gzip or Parquet: loaded with their texts cleaned, and a file that cannot be read named."""

from __future__ import annotations

import pytest
from own_tables import COLUMNS, _tables

from cdtl.data import DataError, load_tables


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".csv.gz"])
def test_own_tables_load_from_csv_and_parquet(tmp_path, suffix):
    inter, items = _tables(tmp_path, suffix)
    data = load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5), name="mine")
    summary = data.summary()
    assert summary["domains"]["books"]["interactions"] == 3
    assert summary["overlap_users"] == 2
    assert data.items.set_index("item").loc["m1", "text"] == "Alien & co"  # entities unescaped for the LM
    assert data.has_ratings


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "inter.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_tables(path, path)


def test_empty_file_names_the_file(tmp_path):
    inter, items = _tables(tmp_path)
    inter.write_bytes(b"")
    with pytest.raises(DataError, match=r"inter\.csv: the file is empty \(0 bytes\)"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_text_in_another_encoding_names_the_file_and_the_encoding(tmp_path):
    inter, items = _tables(tmp_path)
    items.write_bytes("item_id,domain,title\nm1,movies,Amélie\nm2,movies,Heat\nb1,books,Dune\nb2,books,Emma\n"
                      .encode("latin-1"))
    with pytest.raises(DataError, match=r"items\.csv: not valid utf-8 text .* encoding='latin-1'"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))
    data = load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5), encoding="latin-1")
    assert data.items.set_index("item").loc["m1", "title"] == "Amélie"


@pytest.mark.parametrize("suffix,payload", [(".parquet", b"PAR1 not really"), (".csv.gz", b"\x1f\x8b\x08 cut")])
def test_garbled_files_name_the_file(tmp_path, suffix, payload):
    inter, items = _tables(tmp_path, suffix)
    inter.write_bytes(payload)
    with pytest.raises(DataError, match=rf"inter{suffix.replace('.', '[.]')}: cannot be read as"):
        load_tables(inter, items, columns=COLUMNS, rating_scale=(1, 5))


def test_a_folder_instead_of_a_table(tmp_path):
    inter, items = _tables(tmp_path)
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match=r"folder\.csv is a folder"):
        load_tables(tmp_path / "folder.csv", items, columns=COLUMNS, rating_scale=(1, 5))
