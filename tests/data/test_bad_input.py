"""Bad input as a new user makes it, on MovieLens 100K: own tables, protocols, the data cache and its variables.

Each probe must end in a clear error (naming the file, column, key or variable, with the fix)
or in the right result; never a raw library exception, a silent wrong result or a hang.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from probes import assert_clear, cli, cli_process, deadline

import cdtl.data as D
from cdtl.data import DataError
from cdtl.data.protocols import per_user_split, random_split


@pytest.fixture(scope="module")
def ml100k() -> D.RecData:
    return D.split_by_genre(D.load_movielens("movielens-100k"))


@pytest.fixture
def own(ml100k, tmp_path) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    """MovieLens 100K written out as a user's own two CSV tables."""
    inter = ml100k.interactions.head(4000).copy()
    items = ml100k.items[ml100k.items["item"].isin(inter["item"])][["item", "domain", "title"]].copy()
    paths = tmp_path / "ratings.csv", tmp_path / "movies.csv"
    inter.to_csv(paths[0], index=False)
    items.to_csv(paths[1], index=False)
    return paths[0], paths[1], inter, items


def _load(inter: Path, items: Path, **kwargs) -> D.RecData:
    with deadline(60):
        return D.load_tables(inter, items, rating_scale=(1, 5), **kwargs)


def _clear(exc: pytest.ExceptionInfo, *needles: str) -> None:
    assert_clear(str(exc.value), *needles, max_lines=3)


# -- own tables -----------------------------------------------------------------------------------------------------


def test_probe_empty_file(own):
    inter, items, *_ = own
    inter.write_bytes(b"")
    with pytest.raises(DataError) as err:
        _load(inter, items)
    _clear(err, "ratings.csv", "empty (0 bytes)")


def test_probe_table_not_utf8(own):
    inter, items, _, frame = own
    frame.loc[frame.index[0], "title"] = "Amélie (2001)"
    items.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    with pytest.raises(DataError) as err:
        _load(inter, items)
    _clear(err, "movies.csv", "not valid utf-8", "encoding=")
    assert _load(inter, items, encoding="latin-1").items["title"].str.contains("Amélie").any()


@pytest.mark.parametrize("suffix", [".parquet", ".csv.gz"])
def test_probe_garbled_file(own, tmp_path, suffix):
    _, items, *_ = own
    bad = tmp_path / f"ratings{suffix}"
    bad.write_bytes(b"\x1f\x8b\x08garbage" if suffix == ".csv.gz" else b"PAR1garbage")
    with pytest.raises(DataError) as err:
        _load(bad, items)
    _clear(err, bad.name, "cannot be read as")


def test_probe_repeated_pair_with_another_rating(own):
    inter, items, frame, _ = own
    again = frame.iloc[[0]].assign(rating=6 - frame["rating"].iloc[0], timestamp=frame["timestamp"].iloc[0] + 1)
    pd.concat([frame, again]).to_csv(inter, index=False)
    with pytest.raises(DataError) as err:
        _load(inter, items)
    _clear(err, "ratings.csv", "1 (user, item) pair(s) appear more than once", "duplicates='latest'")
    data = _load(inter, items, duplicates="latest")
    row = data.interactions[(data.interactions["user"] == frame["user"].iloc[0])
                            & (data.interactions["item"] == frame["item"].iloc[0])]
    assert len(row) == 1 and row["rating"].iloc[0] == 6 - frame["rating"].iloc[0]  # the later rating won
    assert data.notes["duplicates_dropped"] == 1


def test_probe_missing_domain_in_item_table(own):
    inter, items, _, frame = own
    frame.loc[frame.index[3], "domain"] = ""
    frame.to_csv(items, index=False)
    with pytest.raises(DataError) as err:
        _load(inter, items)
    _clear(err, "movies.csv", "column 'domain' has 1 missing value")


@pytest.mark.parametrize("case,needles", [
    ("missing-column", ("ratings.csv", "missing column(s) ['domain']")),
    ("rating-outside-scale", ("ratings.csv", "outside the declared scale [1, 5]")),
    ("unknown-item", ("ratings.csv", "not in the item table")),
    ("folder", ("is a folder",)),
    ("no-such-file", ("no such file",)),
])
def test_probe_other_table_mistakes(own, case, needles):
    inter, items, frame, _ = own
    if case == "missing-column":
        frame.drop(columns="domain").to_csv(inter, index=False)
    elif case == "rating-outside-scale":
        frame.assign(rating=frame["rating"] * 2).to_csv(inter, index=False)
    elif case == "unknown-item":
        frame.assign(item=frame["item"].where(frame.index != frame.index[0], "no-such-movie")).to_csv(inter, index=False)
    elif case == "folder":
        inter.unlink()
        inter.mkdir()
    else:
        inter.unlink()
    with pytest.raises((DataError, FileNotFoundError)) as err:
        _load(inter, items)
    _clear(err, *needles)


# -- protocols ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,error,needle", [
    ({"cold_ratio": "0.2"}, TypeError, "cold_ratio must be a number between 0 and 1 (e.g. 0.2), got '0.2' (str)"),
    ({"seed": 1.5}, TypeError, "seed must be a non-negative integer, got 1.5 (float)"),
    ({"cold_ratio": 1.0}, ValueError, "strictly between 0 and 1"),
    ({"target": "drama"}, ValueError, "unknown domain 'drama'"),
])
def test_probe_cold_start_split_arguments(ml100k, kwargs, error, needle):
    args = {"source": "action", "target": "comedy", "cold_ratio": 0.2, "seed": 0, **kwargs}
    with pytest.raises(error) as err, deadline(60):
        D.cold_start_split(ml100k, **args)
    _clear(err, needle)


def test_probe_repeated_pairs_never_reach_both_sides_of_a_split(ml100k):
    doubled = pd.concat([ml100k.interactions.head(500), ml100k.interactions.head(3).assign(rating=1.0)])
    for split in (per_user_split, random_split):
        with pytest.raises(DataError) as err:
            split(doubled)
        _clear(err, "3 (user, item) pair(s) appear more than once")


# -- the data cache, downloads and variables -------------------------------------------------------------------------


def test_probe_data_dir_is_a_file(capsys, monkeypatch, tmp_path):
    (tmp_path / "cache").write_text("oops")
    monkeypatch.setenv("CDTL_DATA_DIR", str(tmp_path / "cache"))
    cli(capsys, ["data", "fetch", "movielens-100k"], "CDTL_DATA_DIR=", "is a file, not a folder")


def test_probe_offline_with_an_empty_cache(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CDTL_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("CDTL_OFFLINE", "yes")
    err = cli(capsys, ["data", "fetch", "movielens-100k"], "could not obtain dataset 'movielens-100k'",
              "ml-100k.zip", "recbole==1.2.1", "Place one of these files by hand", max_lines=10)
    assert err.count("offline") >= 2


@pytest.mark.parametrize("var,value,needle", [
    ("CDTL_OFFLINE", "maybe", "CDTL_OFFLINE='maybe' is not a yes/no value"),
    ("CDTL_DOWNLOAD_TIMEOUT", "soon", "CDTL_DOWNLOAD_TIMEOUT='soon' is not a number of seconds"),
    ("CDTL_PROGRESS", "loud", "CDTL_PROGRESS='loud' is not a progress mode"),
])
def test_probe_bad_variables(capsys, monkeypatch, tmp_path, var, value, needle):
    monkeypatch.setenv("CDTL_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv(var, value)
    cli(capsys, ["data", "fetch", "movielens-100k"], needle)


def test_probe_hand_placed_file_with_the_wrong_hash(capsys, monkeypatch, tmp_path):
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "ml-100k.zip").write_bytes(b"an older copy")
    monkeypatch.setenv("CDTL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CDTL_OFFLINE", "1")
    with pytest.warns(UserWarning, match="hash mismatch"):
        cli(capsys, ["data", "fetch", "movielens-100k"], "hash mismatch", "moved it aside", max_lines=10)
    assert [p.read_bytes() for p in downloads.glob("ml-100k.zip.hash-mismatch-*")] == [b"an older copy"]


def test_probe_edited_cached_file_is_fetched_again(capsys, monkeypatch, tmp_path):
    """An edited cache file is never used: the verified archive is extracted again (the right result)."""
    import shutil

    source = Path(os.environ["CDTL_DATA_DIR"])
    cache = tmp_path / "cache"
    shutil.copytree(source / "downloads", cache / "downloads")
    monkeypatch.setenv("CDTL_DATA_DIR", str(cache))
    monkeypatch.setenv("CDTL_OFFLINE", "1")
    folder = Path(cli(capsys, ["data", "fetch", "movielens-100k"], code=0).strip())
    inter = next(folder.glob("*.inter"), None) or folder / "u.data"
    original = inter.read_bytes()
    inter.write_bytes(original[:-100])
    assert Path(cli(capsys, ["data", "fetch", "movielens-100k"], code=0).strip()) == folder
    assert inter.read_bytes() == original


def test_probe_unknown_dataset_in_a_real_process(tmp_path):
    result = cli_process(["data", "info", "movielens-10m"], {**os.environ})
    assert result.returncode == 2
    assert_clear(result.stderr, "unknown dataset 'movielens-10m'", "movielens-1m")
