"""Load two or more Amazon Reviews 2023 categories as one cross-domain RecData whose users are shared by user_id."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cdtl.data.tables import DataError, RecData, check_items_cover, validate_interactions, validate_items
from cdtl.data.text import clean_text, compose_item_text

HOMEPAGE = "https://amazon-reviews-2023.github.io/"
_RAW = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/raw"
RATING_SCALE = (1.0, 5.0)
ITEM_COLUMNS = ["item", "title", "text", "domain", "categories", "store"]


def amazon2023_urls(category: str) -> dict[str, str]:
    """The official download URLs of one category's review and metadata files (nothing is downloaded)."""
    return {
        "reviews": f"{_RAW}/review_categories/{category}.jsonl.gz",
        "meta": f"{_RAW}/meta_categories/meta_{category}.jsonl.gz",
    }


def _locate(categories: Sequence[str], directory: Path) -> dict[str, tuple[Path, Path]]:
    """Each category's (reviews, metadata) file, plain or gzipped; one error listing every file missing."""
    found: dict[str, tuple[Path, Path]] = {}
    looked: list[str] = []
    urls: list[str] = []
    for cat in categories:
        pair = []
        for stem, url in ((cat, amazon2023_urls(cat)["reviews"]), (f"meta_{cat}", amazon2023_urls(cat)["meta"])):
            names = [f"{stem}.jsonl", f"{stem}.jsonl.gz"]
            path = next((directory / n for n in names if (directory / n).is_file()), None)
            if path is None:
                looked.append(" or ".join(names))
                urls.append(url)
            pair.append(path)
        found[cat] = (pair[0], pair[1])
    if looked:
        raise FileNotFoundError(
            f"Amazon Reviews 2023 file(s) not found in {directory}: looked for {'; '.join(looked)}. "
            f"The files come from {HOMEPAGE} (the raw review_categories and meta_categories files, "
            f"e.g. {', '.join(urls)}); download them and place them in {directory} (plain .jsonl or .jsonl.gz)."
        )
    return found


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, object) from a plain or gzipped JSONL file; blank lines are skipped."""
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    lineno = 0
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}: line {lineno} is a JSON {type(record).__name__}, expected an object")
                yield lineno, record
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the file after line {lineno}: {exc}") from exc


def _required(record: dict[str, Any], key: str, path: Path, lineno: int) -> Any:
    value = record.get(key)
    if value is None or value == "":
        raise DataError(f"{path}: line {lineno}: missing required key {key!r} (found keys {sorted(record)})")
    return value


def _read_reviews(path: Path, domain: str, item_key: str) -> list[tuple[str, str, float, int, str]]:
    """(user, item, rating, timestamp in seconds, domain) for every review line."""
    rows = []
    for lineno, rec in _read_jsonl(path):
        user, item, rating, ts = (_required(rec, k, path, lineno) for k in ("user_id", item_key, "rating", "timestamp"))
        try:
            rows.append((str(user), str(item), float(rating), int(ts) // 1000, domain))
        except (TypeError, ValueError):
            raise DataError(f"{path}: line {lineno}: 'rating' and 'timestamp' must be numbers, got {rating!r}, {ts!r}") from None
    return rows


def _describe(rec: dict[str, Any], item: str, domain: str, max_text_chars: int | None) -> dict[str, str]:
    """One item-table row from a metadata record: text is title, brand, categories, features, description."""
    title, store, cats = clean_text(rec.get("title")), clean_text(rec.get("store")), clean_text(rec.get("categories"))
    fields = [("Title", title), ("Brand", store), ("Categories", cats),
              ("Features", rec.get("features")), ("Description", rec.get("description"))]
    text = compose_item_text(fields, max_text_chars)
    return {"item": item, "title": title, "text": text, "domain": domain, "categories": cats, "store": store}


def _read_meta(path: Path, domain: str, wanted: set[str],
               max_text_chars: int | None) -> tuple[dict[str, dict[str, str]], set[str], int]:
    """Rows for the wanted (reviewed) items, every id in the file, and how many repeated ids were ignored."""
    rows: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    repeated = 0
    for lineno, rec in _read_jsonl(path):
        item = str(_required(rec, "parent_asin", path, lineno))
        if item in seen:
            repeated += 1  # keep the first description of an item
            continue
        seen.add(item)
        if item in wanted:
            rows[item] = _describe(rec, item, domain, max_text_chars)
    return rows, seen, repeated


def _check_names(categories: list[str], domains: list[str], item_key: str) -> None:
    """Refuse repeated or missing categories, domain names that do not pair with them, and an unknown item key."""
    if not categories or len(set(categories)) != len(categories):
        raise ValueError(f"categories must be non-empty and distinct, got {categories}")
    if len(domains) != len(categories) or len(set(domains)) != len(domains):
        raise ValueError(f"domain_names must be {len(categories)} distinct names (one per category), got {domains}")
    if item_key not in ("parent_asin", "asin"):
        raise ValueError(f"item_key must be 'parent_asin' or 'asin', got {item_key!r}")


@dataclass
class _Read:
    """Every category's review rows and described items, with the counts of what was left out on the way."""

    rows: list[tuple[str, str, float, int, str]] = field(default_factory=list)
    described: dict[str, dict[str, str]] = field(default_factory=dict)
    unreviewed: int = 0
    meta_repeats: int = 0


def _read_categories(files: dict[str, tuple[Path, Path]], categories: list[str], domains: list[str], item_key: str,
                     max_text_chars: int | None, where: str) -> _Read:
    """Read each category's reviews and metadata in turn; an item id found in two categories is refused."""
    read = _Read()
    owner: dict[str, str] = {}  # item id -> the category it belongs to
    for cat, dom in zip(categories, domains):
        review_path, meta_path = files[cat]
        cat_rows = _read_reviews(review_path, dom, item_key)
        reviewed = {r[1] for r in cat_rows}
        meta, meta_ids, repeats = _read_meta(meta_path, dom, reviewed, max_text_chars)
        ids = reviewed | meta_ids
        clash = sorted(ids.intersection(owner))
        if clash:
            raise DataError(f"{where}: item {clash[0]!r} appears in both categories {owner[clash[0]]!r} and {cat!r} "
                            f"({len(clash)} shared id(s)); item ids must belong to one category")
        owner.update(dict.fromkeys(ids, cat))
        read.rows += cat_rows
        read.described.update(meta)
        read.unreviewed += len(meta_ids - reviewed)
        read.meta_repeats += repeats
    return read


def _latest_reviews(rows: list[tuple[str, str, float, int, str]],
                    min_user_interactions: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per (user, item, domain), the latest review, for users with enough reviews; the counts dropped."""
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", "domain"])
    latest = inter.sort_values("timestamp", kind="stable").drop_duplicates(["user", "item", "domain"], keep="last")
    collapsed = len(inter) - len(latest)
    inter = latest.sort_index()
    enough = inter.groupby("user")["item"].transform("size") >= min_user_interactions
    dropped_users = inter.loc[~enough, "user"].nunique()
    items_before = inter["item"].nunique()
    inter = inter[enough]
    return inter, {"collapsed": collapsed, "dropped_users": dropped_users, "items_before": items_before}


def _item_table(inter: pd.DataFrame, described: dict[str, dict[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The item table of every reviewed (item, domain), empty text where no metadata describes it; and those pairs."""
    pairs = inter[["item", "domain"]].drop_duplicates()
    empty = {"title": "", "text": "", "categories": "", "store": ""}
    items = pd.DataFrame(
        [described.get(item) or {"item": item, "domain": dom, **empty} for item, dom in pairs.itertuples(index=False)],
        columns=ITEM_COLUMNS,
    )
    return items, pairs


def load_amazon2023(
    categories: Sequence[str],
    directory: str | Path,
    *,
    domain_names: Sequence[str] | None = None,
    item_key: str = "parent_asin",
    min_user_interactions: int = 1,
    max_text_chars: int | None = 512,
) -> RecData:
    """Load the reviews and metadata of ``categories`` from ``directory``, one domain per category.

    Users are shared across domains by ``user_id``. A user's repeated review of an item keeps the
    latest; reviewed items without metadata stay with an empty title and text; metadata items
    nobody reviewed are dropped; users with fewer than ``min_user_interactions`` reviews (all
    domains together) are dropped with the items only they reviewed. Every count lands in ``notes``.
    Metadata is keyed by ``parent_asin``, so ``item_key="asin"`` leaves most variants undescribed.
    """
    categories = list(categories)
    domains = list(domain_names) if domain_names is not None else categories
    _check_names(categories, domains, item_key)
    directory = Path(directory)
    where = f"amazon2023 files in {directory}"
    files = _locate(categories, directory)
    read = _read_categories(files, categories, domains, item_key, max_text_chars, where)
    inter, dropped = _latest_reviews(read.rows, min_user_interactions)
    items, pairs = _item_table(inter, read.described)
    notes = {
        "items_without_metadata": int((~pairs["item"].isin(read.described.keys())).sum()),
        "metadata_items_without_reviews": int(read.unreviewed),
        "repeated_reviews_collapsed": int(dropped["collapsed"]),
        "users_below_min_interactions": int(dropped["dropped_users"]),
        "items_only_reviewed_by_dropped_users": int(dropped["items_before"] - len(pairs)),
        "metadata_repeated_ids_ignored": int(read.meta_repeats),
    }
    inter = validate_interactions(inter, where, rating_scale=RATING_SCALE)
    items = validate_items(items, where)
    check_items_cover(inter, items, where)
    return RecData(
        name="amazon2023:" + "+".join(categories),
        interactions=inter,
        items=items,
        users=None,
        rating_scale=RATING_SCALE,
        notes=notes,
    )
