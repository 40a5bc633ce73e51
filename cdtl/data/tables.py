"""The one table layout every loader returns, and the checks that keep bad input out of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cdtl.data.text import clean_text

#: columns of the normalised interaction table (rating, timestamp and domain may be absent)
INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp", "domain")
#: columns of the normalised item table (year, genres and domain may be absent)
ITEM_COLUMNS = ("item", "title", "year", "genres", "text", "domain")
#: what to do with a (user, item) pair that appears more than once (see ``validate_interactions``)
DUPLICATE_POLICIES = ("refuse", "latest")


class DataError(ValueError):
    """Bad input data: the message names the file (or table), the column and what was expected."""


@dataclass
class RecData:
    """Interactions, items and (optionally) users of one dataset, with ids as strings.

    ``interactions``: user, item, [rating], [timestamp], [domain] - one row per event.
    ``items``: item, title, text, [year], [genres], [domain] - one row per item.
    ``users``: user plus whatever demographics the source has, or ``None``.
    ``rating_scale``: (low, high) for explicit ratings, ``None`` for implicit feedback.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    rating_scale: tuple[float, float] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def has_ratings(self) -> bool:
        """Whether the interactions carry explicit ratings."""
        return "rating" in self.interactions.columns and self.rating_scale is not None

    @property
    def domains(self) -> list[str]:
        """Domain names in order of appearance, or [] for single-domain data."""
        if "domain" not in self.interactions.columns:
            return []
        return list(pd.unique(self.items["domain"]))

    def summary(self) -> dict[str, Any]:
        """Counts per domain and the users active in more than one domain (JSON-ready)."""
        inter = self.interactions
        out: dict[str, Any] = {
            "name": self.name,
            "users": int(inter["user"].nunique()),
            "items": int(len(self.items)),
            "items_with_interactions": int(inter["item"].nunique()),
            "interactions": int(len(inter)),
            "rating_scale": list(self.rating_scale) if self.rating_scale else None,
        }
        if self.domains:
            per: dict[str, Any] = {}
            for dom in self.domains:
                part = inter[inter["domain"] == dom]
                per[dom] = {
                    "users": int(part["user"].nunique()),
                    "items": int((self.items["domain"] == dom).sum()),
                    "items_with_interactions": int(part["item"].nunique()),
                    "interactions": int(len(part)),
                    "density": float(len(part) / max(1, part["user"].nunique() * part["item"].nunique())),
                }
            out["domains"] = per
            domains_per_user = inter.groupby("user")["domain"].nunique()
            out["overlap_users"] = int((domains_per_user == len(self.domains)).sum())  # users in every domain
        out.update(self.notes)
        return out


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] | list[str], where: str) -> None:
    """Fail with the missing column names, the file and what it does have."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; found columns {list(df.columns)}")


def validate_interactions(
    df: pd.DataFrame,
    where: str,
    rating_scale: tuple[float, float] | None = None,
    duplicates: str = "refuse",
) -> pd.DataFrame:
    """Check and normalise an interaction table; return it with string ids and clean dtypes.

    A (user, item) pair may appear once: otherwise one copy could be trained on while
    another is tested. ``duplicates="refuse"`` (the default) fails with the count and
    examples; ``"latest"`` keeps each pair's row with the largest timestamp (the later
    row in the table on a tie, or without a timestamp column) and drops the others.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    require_columns(df, ("user", "item"), where)
    if len(df) == 0:
        raise DataError(f"{where}: no interactions (the table is empty)")
    out = df.copy()
    for col in ("user", "item", "domain"):
        if col in out.columns:
            _refuse_missing(out, col, where)
            out[col] = out[col].astype(str)
    if "rating" in out.columns:
        ratings = pd.to_numeric(out["rating"], errors="coerce")
        if ratings.isna().any():
            bad = out.loc[ratings.isna(), "rating"].head(3).tolist()
            raise DataError(f"{where}: column 'rating' has non-numeric or missing values, e.g. {bad}")
        out["rating"] = ratings.astype("float32")
        if rating_scale is not None:
            low, high = rating_scale
            outside = (out["rating"] < low) | (out["rating"] > high)
            if outside.any():
                bad = out.loc[outside, "rating"].head(3).tolist()
                raise DataError(
                    f"{where}: column 'rating' has {int(outside.sum())} value(s) outside the declared scale "
                    f"[{low}, {high}], e.g. {bad}"
                )
    if "timestamp" in out.columns:
        ts = pd.to_numeric(out["timestamp"], errors="coerce")
        if ts.isna().any():
            raise DataError(f"{where}: column 'timestamp' has {int(ts.isna().sum())} non-numeric or missing value(s)")
        out["timestamp"] = ts.astype("int64")
    out = out.reset_index(drop=True)
    if duplicates == "refuse":
        dup = out.duplicated()
        if dup.any():
            example = out[dup].head(2).to_dict("records")
            raise DataError(f"{where}: {int(dup.sum())} duplicate row(s), e.g. {example}; remove them before loading, "
                            "or pass duplicates='latest' to keep one")
        check_unique_pairs(out, where)
        return out
    return out.loc[_latest_rows(out)].reset_index(drop=True)


def _refuse_missing(df: pd.DataFrame, col: str, where: str) -> None:
    """Fail naming the table, the column and the first rows where ``col`` has no value."""
    missing = df[col].isna()
    if missing.any():
        bad = df.index[missing][:5].tolist()
        raise DataError(f"{where}: column {col!r} has {int(missing.sum())} missing value(s), e.g. rows {bad}")


def repeated_pairs(interactions: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows whose (user, item) pair occurs more than once."""
    return interactions.duplicated(["user", "item"], keep=False)


def check_unique_pairs(out: pd.DataFrame, where: str) -> None:
    """Fail with the count and examples when a (user, item) pair appears more than once in ``out``."""
    repeated = repeated_pairs(out)
    if not repeated.any():
        return
    rows = out[repeated]
    n_pairs = int(rows.groupby(["user", "item"]).ngroups)
    examples = []
    for (user, item), group in list(rows.groupby(["user", "item"], sort=False))[:2]:
        shown = group.drop(columns=["user", "item"]).to_dict("records")
        examples.append(f"user {user!r} item {item!r} at rows {group.index.tolist()} {shown}")
    raise DataError(
        f"{where}: {n_pairs} (user, item) pair(s) appear more than once with different values ({len(rows)} rows), "
        f"e.g. {'; '.join(examples)}. A pair must appear once, or one copy could be trained on and another tested: "
        "remove the repeats, or load with duplicates='latest' to keep each pair's latest row (by timestamp)"
    )


def _latest_rows(out: pd.DataFrame) -> pd.Index:
    """Index of each (user, item) pair's latest row: largest timestamp, then last in the table (row order kept)."""
    ordered = out.sort_values("timestamp", kind="stable") if "timestamp" in out.columns else out
    return ordered.drop_duplicates(["user", "item"], keep="last").index.sort_values()


def validate_items(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check and normalise an item table: unique string ids, a title and a text for every item."""
    require_columns(df, ("item",), where)
    if len(df) == 0:
        raise DataError(f"{where}: no items (the table is empty)")
    out = df.copy()
    for col in ("item", "domain"):
        if col in out.columns:
            _refuse_missing(out, col, where)
    out["item"] = out["item"].astype(str)
    dup = out["item"].duplicated()
    if dup.any():
        raise DataError(
            f"{where}: column 'item' has {int(dup.sum())} duplicated id(s), e.g. {out.loc[dup, 'item'].head(3).tolist()}; "
            "item ids must be unique (across domains too)"
        )
    if "title" not in out.columns:
        out["title"] = ""
    out["title"] = out["title"].fillna("").astype(str)
    if "text" not in out.columns:  # the language model reads the title, HTML entities unescaped
        out["text"] = out["title"].map(clean_text)
    out["text"] = out["text"].fillna("").astype(str)
    return out.reset_index(drop=True)


def check_items_cover(interactions: pd.DataFrame, items: pd.DataFrame, where: str) -> None:
    """Every interacted item must be described in the item table (and in the same domain)."""
    known = set(items["item"])
    unknown = pd.unique(interactions.loc[~interactions["item"].isin(known), "item"])
    if len(unknown):
        raise DataError(
            f"{where}: {len(unknown)} item id(s) in the interactions are not in the item table, e.g. {list(unknown[:3])}"
        )
    if "domain" in interactions.columns and "domain" in items.columns:
        dom = items.set_index("item")["domain"]
        mismatch = interactions["domain"].to_numpy() != dom.reindex(interactions["item"]).to_numpy()
        if np.any(mismatch):
            rows = interactions[mismatch].head(2).to_dict("records")
            raise DataError(f"{where}: {int(mismatch.sum())} interaction(s) name a domain other than their item's, e.g. {rows}")
