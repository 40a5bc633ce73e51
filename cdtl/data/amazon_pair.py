"""Turn two Amazon Reviews 2023 categories (5-core ratings + metadata) into the offline pair's two tables.

The offline folder (C2DSR's Food-Kitchen split) and the public release end in the same
files, ``interactions.csv.gz`` (``user_id, item_id, domain, position``) and
``items.csv.gz`` (``item_id, domain, title``), read by the same loader. Preparation keeps
every user active in both categories and, up to ``max_users`` in all, the single-category
users whose sha256 of the user id is smallest (the same users on every machine); a user's
``position`` is the order of their reviews in time across both categories. Every count,
including what was left out and why, is returned and stored beside the tables.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from cdtl.data.tables import DataError

RATING_COLUMNS = ["user_id", "parent_asin", "rating", "timestamp"]
_ASIN = re.compile(r'"parent_asin"\s*:\s*"([^"]+)"')


def read_ratings(path: Path, domain: str) -> pd.DataFrame:
    """A 5-core ``rating_only`` CSV (with or without its header row) as ``user_id, item_id, timestamp, domain``."""
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    header = first.strip().split(",")[:1] == ["user_id"]
    frame = pd.read_csv(path, header=0 if header else None, names=None if header else RATING_COLUMNS,
                        usecols=["user_id", "parent_asin", "timestamp"], dtype={"user_id": str, "parent_asin": str})
    missing = int(frame.isna().any(axis=1).sum())
    if missing:
        raise DataError(f"{path}: {missing} row(s) lack a user_id, parent_asin or timestamp; expected the columns "
                        f"{', '.join(RATING_COLUMNS)}")
    return frame.rename(columns={"parent_asin": "item_id"}).assign(domain=domain)


def read_titles(path: Path, wanted: set[str]) -> dict[str, str]:
    """Titles of the wanted items from a metadata JSONL file, parsing only the lines of wanted items."""
    titles: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            found = _ASIN.search(line)
            if found is None or found.group(1) not in wanted or found.group(1) in titles:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
            titles[found.group(1)] = str(record.get("title") or "").strip()
    return titles


def _keep_users(inter: pd.DataFrame, max_users: int | None) -> tuple[pd.Index, int]:
    """Every user of both categories, then single-category users by sha256 of their id, up to ``max_users``."""
    domains = inter.groupby("user_id")["domain"].nunique()
    both = domains.index[domains > 1]
    single = domains.index[domains == 1]
    room = len(single) if max_users is None else max(0, max_users - len(both))
    ranked = sorted(single, key=lambda u: hashlib.sha256(u.encode("utf-8")).hexdigest())
    return both.append(pd.Index(ranked[:room])), len(single) - min(room, len(single))


def _gzip_csv(frame: pd.DataFrame) -> bytes:
    """CSV bytes gzipped without a timestamp, so the same tables give the same file."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(frame.to_csv(index=False).encode("utf-8"))
    return buffer.getvalue()


def prepare(files: Mapping[str, Path], settings: Mapping[str, Any]) -> tuple[dict[str, bytes], dict[str, int]]:
    """The two tables' bytes from the downloaded files, and the counts of what was kept and left out.

    ``settings["domains"]`` maps each domain to its ``{"ratings": name, "meta": name}`` among ``files``.
    """
    frames, owners = [], {}
    dropped_shared_items = read = 0
    for domain, names in settings["domains"].items():
        frame = read_ratings(files[names["ratings"]], domain)
        read += len(frame)
        clash = frame["item_id"].isin(owners)
        dropped_shared_items += int(frame.loc[clash, "item_id"].nunique())
        frame = frame[~clash]  # an item listed in both categories stays in the first one
        owners.update(dict.fromkeys(frame["item_id"].unique(), domain))
        frames.append(frame)
    inter = pd.concat(frames, ignore_index=True)
    rows = len(inter)
    inter = inter.drop_duplicates(["user_id", "item_id"], keep="first")
    deduped = len(inter)
    keep, left_out = _keep_users(inter, settings.get("max_users"))
    inter = inter[inter["user_id"].isin(keep)]
    inter = inter.sort_values(["user_id", "timestamp", "domain", "item_id"], kind="stable")
    inter["position"] = inter.groupby("user_id").cumcount()
    titles: dict[str, str] = {}
    for domain, names in settings["domains"].items():
        wanted = set(inter.loc[inter["domain"] == domain, "item_id"])
        titles.update(read_titles(files[names["meta"]], wanted))
    items = inter[["item_id", "domain"]].drop_duplicates().sort_values(["domain", "item_id"], kind="stable")
    items["title"] = items["item_id"].map(titles).fillna("")
    counts = {"ratings_read": read, "repeated_pairs_dropped": rows - deduped,
              "users": int(inter["user_id"].nunique()), "users_in_both": int((inter.groupby("user_id")["domain"]
                                                                             .nunique() > 1).sum()),
              "single_category_users_left_out": int(left_out), "items": len(items),
              "items_without_title": int((items["title"] == "").sum()),
              "items_in_both_categories_kept_in_first": dropped_shared_items, "interactions": len(inter)}
    tables = {"interactions.csv.gz": _gzip_csv(inter[["user_id", "item_id", "domain", "position"]]),
              "items.csv.gz": _gzip_csv(items)}
    return tables, counts
