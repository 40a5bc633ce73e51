"""MovieLens parsing: both source formats give the same tables; the real data has the published counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdtl.data import DataError, load_movielens
from cdtl.data.movielens import GENRES_100K, parse_movielens


def _flags(*genres: str) -> str:
    return "|".join("1" if g in genres else "0" for g in GENRES_100K)


def _write(directory: Path, files: dict[str, str], encoding: str = "utf-8") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode(encoding))
    return directory


@pytest.fixture
def ml100k_both(tmp_path: Path) -> tuple[Path, Path]:
    """The same three movies, two users and four ratings in the publisher's and the mirror's format."""
    zip_dir = _write(tmp_path / "zip", {
        "u.data": "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t888550871\n2\t3\t1\t888551000\n",
        "u.item": (f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags('Animation', 'Children', 'Comedy')}\n"
                   f"2|GoldenEye (1995)|01-Jan-1995||http://x|{_flags('Action', 'Adventure', 'Thriller')}\n"
                   f"3|Café au lait (1994)|01-Jan-1994||http://x|{_flags('Comedy')}\n").replace("'Children'", ""),
        "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n",
    }, encoding="latin-1")
    wheel_dir = _write(tmp_path / "wheel", {
        "ml-100k.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                         "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t888550871\n2\t3\t1\t888551000\n",
        "ml-100k.item": "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                        "1\tToy Story\t1995\tAnimation Comedy\n2\tGoldenEye\t1995\tAction Adventure Thriller\n"
                        "3\tCafé au lait\t1994\tComedy\n",
        "ml-100k.user": "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                        "1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t94043\n",
    })
    return zip_dir, wheel_dir


def test_100k_sources_normalise_to_identical_tables(ml100k_both):
    zip_dir, wheel_dir = ml100k_both
    a = parse_movielens("movielens-100k", zip_dir, "zip")
    b = parse_movielens("movielens-100k", wheel_dir, "wheel")
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert a.items.loc[2, "title"] == "Café au lait"  # latin-1 decoded
    assert a.items.loc[0, "text"] == "Toy Story (1995). Genres: Animation, Comedy"
    assert a.items.loc[1, "genres"] == ["Action", "Adventure", "Thriller"]


def test_1m_sources_normalise_to_identical_tables(tmp_path):
    zip_dir = _write(tmp_path / "zip", {
        "ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
        "movies.dat": "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
                      "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n",
        "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
    }, encoding="latin-1")
    wheel_dir = _write(tmp_path / "wheel", {
        "ml-1m.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                       "1m_1\tOne Flew Over the Cuckoo's Nest (1975)\t5\t978300760\n"
                       "1m_1\tJames and the Giant Peach (1996)\t3\t978302109\n"
                       "1m_2\tOne Flew Over the Cuckoo's Nest (1975)\t4\t978298413\n",
        "ml-1m.item": "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\n"
                      "James and the Giant Peach (1996)\tJames and the Giant Peach\t1996\tAnimation Children's Musical\n"
                      "One Flew Over the Cuckoo's Nest (1975)\tOne Flew Over the Cuckoo's Nest\t1975\tDrama\n",
        "ml-1m.user": "user_id:token\tage:float\tgender:token\toccupation:float\tzip_code:token\n"
                      "1m_1\t1\tF\t10\t48067\n1m_2\t56\tM\t16\t70072\n",
    })
    a = parse_movielens("movielens-1m", zip_dir, "zip")
    b = parse_movielens("movielens-1m", wheel_dir, "wheel")
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert a.users["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert a.items.loc[0, "year"] == 1996.0


def test_rating_outside_scale_names_file_and_column(ml100k_both):
    _, wheel_dir = ml100k_both
    inter = wheel_dir / "ml-100k.inter"
    inter.write_text(inter.read_text().replace("\t5\t", "\t7\t"))
    with pytest.raises(DataError, match=r"movielens-100k.*wheel.*'rating'.*\[1.0, 5.0\]"):
        parse_movielens("movielens-100k", wheel_dir, "wheel")


def test_missing_column_names_the_file(ml100k_both):
    _, wheel_dir = ml100k_both
    item = wheel_dir / "ml-100k.item"
    item.write_text(item.read_text().replace("class:token_seq", "genre:token_seq"))
    with pytest.raises(DataError, match=r"ml-100k.item: missing column\(s\) \['class'\]"):
        parse_movielens("movielens-100k", wheel_dir, "wheel")


@pytest.mark.parametrize(
    "name, users, rated_items, catalogue, ratings",
    [("movielens-100k", 943, 1682, 1682, 100_000), ("movielens-1m", 6040, 3706, 3883, 1_000_209)],
)
@pytest.mark.slow
def test_real_movielens_has_the_published_counts(name, users, rated_items, catalogue, ratings):
    data = load_movielens(name)
    inter = data.interactions
    assert inter["user"].nunique() == users
    assert inter["item"].nunique() == rated_items
    assert len(data.items) == catalogue
    assert len(inter) == ratings
    assert data.users is not None and len(data.users) == users
    assert set(np.unique(inter["rating"])) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert data.items["text"].str.len().min() > 0
    assert not inter.duplicated(["user", "item"]).any()


def test_unknown_movielens_name():
    with pytest.raises(ValueError, match="movielens-100k, movielens-1m"):
        load_movielens("movielens-25m")
