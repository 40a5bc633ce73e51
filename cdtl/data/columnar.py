"""Large interaction tables read through Arrow into integer codes and CSR matrices, with no Python object per row.

``load_tables`` gives pandas frames of string ids: right for MovieLens and the Amazon pair,
too heavy for tens of millions of rows (each id a Python string). ``read_interactions`` reads
a Parquet or CSV file with Arrow, maps ids to codes with Arrow's vectorised kernels (sort the
distinct ids once, then one hash lookup per row) and keeps only int32 arrays: 10 million rows
cost about 100 MB instead of gigabytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq
import scipy.sparse

from cdtl.data.ids import IdMap
from cdtl.data.tables import DataError


@dataclass
class Interactions:
    """One row per (user, item) pair as codes: row r is user ``users.decode(u[r])`` with item ``items.decode(i[r])``.

    ``domain[r]`` indexes ``domains`` (``None`` for single-domain data); ``item_domain[j]`` is
    item j's domain code when an item table was read.
    """

    users: IdMap
    items: IdMap
    u: np.ndarray  # int32
    i: np.ndarray  # int32
    domain: np.ndarray | None = None  # int8
    domains: tuple[str, ...] = ()
    item_domain: np.ndarray | None = None  # int8, one per item of ``items``
    source: str = "table"

    def __len__(self) -> int:
        return int(self.u.size)

    def select(self, mask: np.ndarray) -> Interactions:
        """The rows where ``mask`` is true (same id maps)."""
        dom = None if self.domain is None else self.domain[mask]
        return Interactions(self.users, self.items, self.u[mask], self.i[mask], dom, self.domains,
                            self.item_domain, self.source)

    def in_domain(self, name: str) -> Interactions:
        """The rows of one domain (same id maps, so codes stay comparable across domains)."""
        if name not in self.domains:
            raise ValueError(f"{self.source}: unknown domain {name!r}; domains: {list(self.domains)}")
        return self.select(self.domain == self.domains.index(name))

    def matrix(self) -> scipy.sparse.csr_matrix:
        """The binary (n_users, n_items) CSR matrix of these rows."""
        return csr_matrix(self.u, self.i, len(self.users), len(self.items))

    def frame(self) -> pd.DataFrame:
        """A frame of integer columns ``u``, ``i`` (and ``domain``), e.g. for ``cdtl.data.protocols.per_user_split``."""
        columns: dict[str, np.ndarray] = {"u": self.u, "i": self.i}
        if self.domain is not None:
            columns["domain"] = self.domain
        return pd.DataFrame(columns, copy=False)


def csr_matrix(u: np.ndarray, i: np.ndarray, n_users: int, n_items: int) -> scipy.sparse.csr_matrix:
    """The binary (n_users, n_items) CSR matrix of (u, i) codes in one sort, with int32 indices when they fit.

    Equal to ``cdtl.data.ids.interaction_matrix`` (duplicates count once, columns sorted within
    rows), built without a COO intermediate: one argsort of the row-major codes.
    """
    u, i = np.asarray(u), np.asarray(i)
    if u.shape != i.shape or u.ndim != 1:
        raise ValueError(f"u and i must be 1-D of equal length, got shapes {u.shape} and {i.shape}")
    if u.size and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
        raise ValueError(f"codes must lie in [0, {n_users}) x [0, {n_items})")
    codes = np.unique(u.astype(np.int64) * int(n_items) + i.astype(np.int64))  # sorted row-major, duplicates once
    index_dtype = np.int32 if max(n_users, n_items, codes.size) < 2**31 else np.int64
    rows = codes // int(n_items)
    indptr = np.zeros(int(n_users) + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=int(n_users)), out=indptr[1:])
    indices = (codes - rows * int(n_items)).astype(index_dtype)
    del rows, codes
    matrix = scipy.sparse.csr_matrix((np.ones(indices.size, dtype=np.float32), indices, indptr),
                                     shape=(int(n_users), int(n_items)))
    matrix.has_sorted_indices = True
    return matrix


def _read_arrow(path: Path, columns: list[str] | None = None) -> Any:

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".parquet", ".pq")):
        available = pq.read_schema(path).names
        wanted = None if columns is None else [c for c in columns if c in available]
        return pq.read_table(path, columns=wanted)
    if suffixes.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        options = pv.ParseOptions(delimiter="\t" if ".tsv" in suffixes else ",")
        table = pv.read_csv(path, parse_options=options)
        return table if columns is None else table.select([c for c in columns if c in table.column_names])
    raise DataError(f"{path}: unsupported file type {suffixes!r}; expected .parquet, .csv, .csv.gz or .tsv")


def _string_column(table: Any, name: str, where: str) -> Any:
    """A column as one Arrow string array (ints are cast: ids are strings), refusing missing values."""

    if name not in table.column_names:
        raise DataError(f"{where}: missing column {name!r}; found columns {table.column_names}")
    column = table[name]
    if column.null_count:
        raise DataError(f"{where}: column {name!r} has {column.null_count} missing value(s)")
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    return column.combine_chunks()


def _sorted_unique(column: Any) -> Any:

    distinct = pc.unique(column)
    return pc.take(distinct, pc.sort_indices(distinct))  # byte order = Python's str order for UTF-8


def _codes(column: Any, ids: Any, where: str, name: str, against: str = "the item table") -> np.ndarray:
    """int32 codes of ``column`` in the sorted ``ids``; a value outside them is a DataError with examples."""

    codes = pc.index_in(column, value_set=ids)
    if codes.null_count:
        unknown = pc.unique(pc.filter(column, pc.is_null(codes))).to_pylist()
        raise DataError(f"{where}: {len(unknown)} {name} value(s) are not in {against}, e.g. {unknown[:3]}")
    return codes.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def _id_map(ids: Any) -> IdMap:
    return IdMap(ids.to_numpy(zero_copy_only=False).astype(object))


def _item_table(path: Path, rename: dict[str, str], has_domain: bool) -> tuple[Any, np.ndarray | None, tuple]:
    """(item ids sorted, each item's domain code or None, the domain names) from an item file; ids must be unique."""

    item_table = _read_arrow(path)
    item_table = item_table.rename_columns([rename.get(c, c) for c in item_table.column_names])
    item_ids = _string_column(item_table, "item", str(path))
    if pc.count_distinct(item_ids).as_py() != len(item_ids):
        raise DataError(f"{path}: column 'item' has duplicated ids; item ids must be unique")
    order = pc.sort_indices(item_ids)
    item_ids = pc.take(item_ids, order)
    if not has_domain:
        return item_ids, None, ()
    dom_col = pc.take(_string_column(item_table, "domain", str(path)), order)
    domains = tuple(sorted(pc.unique(dom_col).to_pylist()))
    return item_ids, _codes(dom_col, _sorted_unique(dom_col), str(path), "domain").astype(np.int8), domains


def read_interactions(
    interactions: str | os.PathLike[str],
    items: str | os.PathLike[str] | None = None,
    *,
    columns: dict[str, str] | None = None,
) -> Interactions:
    """Interactions (and optionally the item table) from Parquet or CSV, as integer codes.

    The interaction file needs ``user`` and ``item`` columns, optionally ``domain``; the item
    file ``item`` and, with domains, ``domain``. ``columns`` renames the file's columns, e.g.
    ``{"user": "user_id"}``. With an item table, items are coded in the table's sorted order
    (items nobody interacted with keep a code) and an interaction whose item is not in it is
    refused; without one, items are the distinct interacted ids. A repeated (user, item) pair is
    refused (the model sees each pair once). Only int32 arrays and the distinct ids remain in memory.
    """

    rename = {theirs: ours for ours, theirs in (columns or {}).items()}
    path = Path(interactions)
    table = _read_arrow(path, [rename.get(c, c) for c in ("user", "item", "domain")] if not rename else None)
    table = table.rename_columns([rename.get(c, c) for c in table.column_names])
    where = str(path)
    if len(table) == 0:
        raise DataError(f"{where}: no interactions (the table is empty)")
    user_col, item_col = _string_column(table, "user", where), _string_column(table, "item", where)
    has_domain = "domain" in table.column_names
    item_domain, domains = None, ()
    if items is not None:
        item_ids, item_domain, domains = _item_table(Path(items), rename, has_domain)
    else:
        item_ids = _sorted_unique(item_col)
    user_ids = _sorted_unique(user_col)
    u = _codes(user_col, user_ids, where, "user")
    del user_col
    i = _codes(item_col, item_ids, where, "item")
    del item_col
    domain = None
    if has_domain:
        dom_col = _string_column(table, "domain", where)
        names = _sorted_unique(dom_col)
        domains = domains or tuple(names.to_pylist())
        domain = _codes(dom_col, pa.array(list(domains), pa.string()), where, "domain", "the item table's domains")
        domain = domain.astype(np.int8)
        if item_domain is not None and np.any(item_domain[i] != domain):
            bad = int(np.count_nonzero(item_domain[i] != domain))
            raise DataError(f"{where}: {bad} interaction(s) name a domain other than their item's")
    del table
    n_pairs = np.unique(u.astype(np.int64) * len(item_ids) + i).size
    if n_pairs != u.size:
        raise DataError(f"{where}: {u.size - n_pairs} repeated (user, item) pair(s); keep one row per pair")
    return Interactions(_id_map(user_ids), _id_map(item_ids), u, i, domain, domains, item_domain, where)


__all__ = ["Interactions", "csr_matrix", "read_interactions"]
