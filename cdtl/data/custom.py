"""Bring your own two-domain data: interaction and item tables from CSV or Parquet."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cdtl.data.tables import (
    DataError,
    RecData,
    check_items_cover,
    id_kind,
    require_columns,
    show_row,
    validate_interactions,
    validate_items,
)


def read_table(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV/TSV (optionally .gz, in ``encoding``) or Parquet file, chosen by its suffix.

    An empty file, text in another encoding, or a file that does not parse fails with a
    ``DataError`` naming the file and what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected a .csv, .csv.gz, .tsv or .parquet file")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not suffixes.endswith((".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        raise DataError(f"{path}: unsupported file type {suffixes!r}; expected .csv, .csv.gz, .tsv or .parquet")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); expected a table with a header row")
    try:
        if suffixes.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        sep = "\t" if ".tsv" in suffixes else ","
        return pd.read_csv(path, sep=sep, dtype={"user": str, "item": str}, keep_default_na=False, na_values=[""],
                           encoding=encoding)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not valid {encoding} text (byte {err.object[err.start:err.start + 1]!r} at offset {err.start}); "
            f"save it as UTF-8, or pass the file's encoding, e.g. encoding='latin-1'"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no columns to read (only blank lines?); expected a table with a header row") from None
    except (pd.errors.ParserError, ValueError, OSError, EOFError) as err:  # pyarrow's ArrowInvalid is a ValueError
        kind = "Parquet" if suffixes.endswith((".parquet", ".pq")) else "CSV"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: cannot be read as {kind} ({first}); is it truncated or another format?") from None


def _suffixes(path: str | os.PathLike[str]) -> str:
    return "".join(Path(path).suffixes[-2:]).lower()


def _same_item_type(inter: pd.DataFrame, inter_where: str, items: pd.DataFrame, items_where: str) -> None:
    """Refuse item ids of one type in the interactions and another in the item table (7 there, "7" here)."""
    theirs, ours = id_kind(inter["item"]), id_kind(items["item"])
    if "mixed" in (theirs, ours) or theirs == ours or not len(inter) or not len(items):
        return  # a column that mixes types is refused, with its rows, by the table's own check
    raise DataError(f"column 'item' holds {theirs} in {inter_where} ({show_row(inter, inter.index[0], 'item')}) but "
                    f"{ours} in {items_where} ({show_row(items, items.index[0], 'item')}); ids become text, so 7 and "
                    "'7' would be one item: give both tables' item column one type")


def _read_named(table: str | os.PathLike[str] | pd.DataFrame, kind: str, columns: dict[str, str],
                encoding: str) -> tuple[pd.DataFrame, str]:
    """One table (a copy of a frame, or read from a file) with its columns renamed to ours, and where it came from."""
    where = f"{kind} table" if isinstance(table, pd.DataFrame) else str(table)
    df = table.copy() if isinstance(table, pd.DataFrame) else read_table(table, encoding=encoding)
    rename = {theirs: ours for ours, theirs in columns.items() if theirs in df.columns}
    df = df.rename(columns=rename)
    needed = ("user", "item", "domain") if kind == "interactions" else ("item", "domain")
    require_columns(df, needed, where)
    return df, where


def _refuse_empty_domains(inter: pd.DataFrame, items: pd.DataFrame, inter_where: str) -> None:
    """Refuse a domain of the item table that no interaction belongs to."""
    for dom in pd.unique(items["domain"]):
        if not (inter["domain"] == dom).any():
            raise DataError(f"{inter_where}: domain {dom!r} of the item table has no interactions (empty domain)")


def load_tables(
    interactions: str | os.PathLike[str] | pd.DataFrame,
    items: str | os.PathLike[str] | pd.DataFrame,
    *,
    name: str | None = None,
    columns: dict[str, str] | None = None,
    rating_scale: tuple[float, float] | None = None,
    duplicates: str = "refuse",
    encoding: str = "utf-8",
) -> RecData:
    """Load two-domain data from an interaction table and an item table.

    Interactions need ``user``, ``item`` and ``domain`` columns, optionally ``rating`` and
    ``timestamp`` (any ordering key, e.g. a position). Items need ``item`` and ``domain``,
    optionally ``title`` and ``text`` (the text a language model reads; defaults to the
    title). ``columns`` renames the file's columns to these names, e.g.
    ``{"user": "user_id", "item": "item_id", "timestamp": "position"}``. Ratings are
    checked against ``rating_scale`` when given; without it the data is implicit feedback.

    A (user, item) pair must appear once: ``duplicates="refuse"`` (default) fails with the
    count and examples, ``"latest"`` keeps each pair's latest row by timestamp and records
    how many it dropped in ``notes["duplicates_dropped"]``. CSV files are read in ``encoding``.

    Ids are read as text. An id column whose values mix types (the integer 7 and the text
    "7", in one table or between the two tables, which would silently become one id) is
    refused, naming two example rows; CSV ids are text by construction. A timestamp outside
    the 64-bit integer range is refused, never wrapped.
    """
    columns = columns or {}
    inter, inter_where = _read_named(interactions, "interactions", columns, encoding)
    item_df, item_where = _read_named(items, "items", columns, encoding)
    typed = [isinstance(t, pd.DataFrame) or _suffixes(t).endswith((".parquet", ".pq")) for t in (interactions, items)]
    if all(typed):
        _same_item_type(inter, inter_where, item_df, item_where)
    if "rating" in inter.columns and rating_scale is None:
        raise DataError(f"{inter_where}: has a 'rating' column but no rating_scale was given; pass e.g. rating_scale=(1, 5)")
    keep = [c for c in ("user", "item", "rating", "timestamp", "domain") if c in inter.columns]
    n_rows = len(inter)
    inter = validate_interactions(inter[keep], inter_where, rating_scale, duplicates)
    item_df = validate_items(item_df, item_where)
    item_df["domain"] = item_df["domain"].astype(str)
    _refuse_empty_domains(inter, item_df, inter_where)
    check_items_cover(inter, item_df, f"{inter_where} against {item_where}")
    default_name = "tables" if isinstance(interactions, pd.DataFrame) else Path(interactions).name.split(".")[0]
    return RecData(
        name=name or default_name,
        interactions=inter,
        items=item_df,
        users=None,
        rating_scale=rating_scale,
        notes={"duplicates_dropped": n_rows - len(inter)} if duplicates == "latest" else {},
    )
