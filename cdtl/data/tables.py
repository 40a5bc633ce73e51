"""The one table layout every loader returns, and the checks that keep bad input out of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cdtl.configfile import preview
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
            if col != "domain":
                check_id_types(out, col, where)
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
        _refuse_outside_int64(ts, out["timestamp"], where)
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


ID_TYPES = {"string": "text", "integer": "whole numbers", "floating": "numbers", "boolean": "true/false",
            "bytes": "bytes", "empty": "nothing"}


def id_kind(values: pd.Series) -> str:
    """What an id column holds: ``text``, ``whole numbers``, ``numbers``... or ``mixed`` (e.g. 7 and "7" together)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if pd.api.types.is_bool_dtype(values.dtype):
        return "true/false"
    if pd.api.types.is_integer_dtype(values.dtype):
        return "whole numbers"
    if pd.api.types.is_float_dtype(values.dtype):
        return "numbers"
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return "text"
    return ID_TYPES.get(pd.api.types.infer_dtype(values, skipna=True), "mixed")


def _value_kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true/false"
    if isinstance(value, (int, np.integer)):
        return "whole numbers"
    if isinstance(value, (float, np.floating)):
        return "numbers"
    return "text" if isinstance(value, str) else type(value).__name__


def show_row(df: pd.DataFrame, row: Any, col: str) -> str:
    """``row 3 (domain 'B'): '7' (str)``: one value of ``col`` as an error names it, with its row and domain."""
    domain = f" (domain {str(df.at[row, 'domain'])[:40]!r})" if "domain" in df.columns and col != "domain" else ""
    return f"row {row}{domain}: {preview(df.at[row, col], 40)}"


def check_id_types(df: pd.DataFrame, col: str, where: str) -> None:
    """Refuse an id column whose values mix types (7 in one domain, "7" in another), naming two example rows.

    Ids become text; were the types mixed, the integer 7 and the text "7" would become one
    user (or item), inventing a link that is not in the data. Convert the column yourself
    (``df[col].astype(str)``) if they are meant to be the same.
    """
    if id_kind(df[col]) != "mixed":
        return
    kinds = df[col].map(_value_kind)
    first = df.index[0]
    other = df.index[(kinds != kinds.loc[first]).to_numpy()][0]
    raise DataError(f"{where}: column {col!r} mixes value types ({kinds.loc[first]} and {kinds.loc[other]}): "
                    f"{show_row(df, first, col)}; {show_row(df, other, col)}. Ids become text, so 7 and '7' would be "
                    f"one id: give the column one type, e.g. df[{col!r}] = df[{col!r}].astype(str) if they are the same")


def _refuse_outside_int64(ts: pd.Series, given: pd.Series, where: str) -> None:
    """Fail naming the first row whose timestamp is not finite or does not fit a 64-bit integer (it would wrap).

    ``ts`` is ``given`` read as numbers; a whole number given as such (or as text) is compared
    exactly, since reading it as a float rounds it (-2**63 - 1 would become -2**63).
    """
    low, high = -(2**63), 2**63 - 1
    if pd.api.types.is_signed_integer_dtype(ts.dtype) and given.dtype != object:
        return
    if pd.api.types.is_unsigned_integer_dtype(ts.dtype):
        outside = ts.to_numpy() > np.uint64(high)
    elif given.dtype == object:
        outside = np.array([_outside(raw, num, low, high) for raw, num in zip(given, ts)], dtype=bool)
    else:
        values = ts.to_numpy(np.float64)
        outside = ~np.isfinite(values) | (values < -(2.0**63)) | (values >= 2.0**63)
    if outside.any():
        row = ts.index[outside][0]
        raise DataError(f"{where}: column 'timestamp' has {int(outside.sum())} value(s) outside the 64-bit integer "
                        f"range [-2**63, 2**63 - 1], e.g. row {row}: {preview(given.loc[row], 40)}; a timestamp is a whole "
                        "number (seconds, or any ordering key) that fits 64 bits")


def _outside(raw: Any, number: Any, low: int, high: int) -> bool:
    """Whether one timestamp (as given, and as read) falls outside [low, high]; whole numbers compared exactly."""
    if isinstance(raw, str) and raw.strip().lstrip("+-").isdigit():
        raw = int(raw.strip())
    if isinstance(raw, (int, np.integer)) and not isinstance(raw, (bool, np.bool_)):
        return not low <= int(raw) <= high
    number = float(number)
    return not (np.isfinite(number) and -(2.0**63) <= number < 2.0**63)


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
    check_id_types(out, "item", where)
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
