"""Models index embedding tables by 0..n-1, so string user and item ids are mapped to contiguous integers here."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse


def _string_array(ids: Iterable[str], what: str) -> np.ndarray:
    """A 1-D object array of str, or a TypeError naming ``what`` and the offending value."""
    if isinstance(ids, str):
        raise TypeError(f"{what} must be a collection of string ids, got a single string {ids!r}")
    array = np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Series, pd.Index)) else ids, dtype=object)
    if array.ndim != 1:
        raise TypeError(f"{what} must be 1-D, got shape {array.shape}")
    if array.size and pd.api.types.infer_dtype(array, skipna=False) != "string":
        bad = next(x for x in array if not isinstance(x, str))
        raise TypeError(
            f"{what} must hold string ids (RecData ids are strings), got {type(bad).__name__} {bad!r}; "
            "convert with .astype(str) first"
        )
    return array


class IdMap:
    """A bijection between string ids and 0..len-1, in sorted id order.

    >>> users = IdMap.fit(["b", "a", "b"])
    >>> users.encode(["a", "b"]).tolist(), users.decode([1]).tolist()
    ([0, 1], ['b'])

    ``encode`` raises KeyError for ids it was not fitted on; pass ``missing="ignore"`` to
    get -1 for them instead (e.g. to drop test rows whose item never appears in training).
    """

    def __init__(self, ids: Iterable[str]) -> None:
        """Map already sorted, unique ``ids``; use ``IdMap.fit`` for arbitrary input."""
        array = _string_array(ids, "ids")
        index = pd.Index(array, dtype=object)
        if not (index.is_monotonic_increasing and index.is_unique):
            raise ValueError("ids must be sorted and unique; use IdMap.fit(ids) to build a map from any ids")
        self._ids = array
        self._index = index

    @classmethod
    def fit(cls, ids: Iterable[str]) -> IdMap:
        """The map of the sorted unique values of ``ids``."""
        array = _string_array(ids, "ids")
        return cls(np.array(sorted(pd.unique(array)), dtype=object))

    def __len__(self) -> int:
        return int(self._ids.size)

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self._ids[:3])
        return f"IdMap({len(self)} ids: {head}{', ...' if len(self) > 3 else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self._ids, other._ids)

    @property
    def ids(self) -> np.ndarray:
        """The ids in index order (a copy)."""
        return self._ids.copy()

    def encode(self, ids: Iterable[str], missing: Literal["raise", "ignore"] = "raise") -> np.ndarray:
        """int64 indices of ``ids``; unknown ids raise KeyError, or become -1 with ``missing="ignore"``."""
        if missing not in ("raise", "ignore"):
            raise ValueError(f"missing must be 'raise' or 'ignore', got {missing!r}")
        array = _string_array(ids, "ids")
        idx = self._index.get_indexer(array).astype(np.int64)
        if missing == "raise" and (idx < 0).any():
            unknown = pd.unique(array[idx < 0])
            raise KeyError(
                f"{len(unknown)} id(s) not in this IdMap of {len(self)} ids, e.g. {list(unknown[:3])}; "
                "pass missing='ignore' to map them to -1"
            )
        return idx

    def decode(self, idx: Iterable[int] | np.ndarray) -> np.ndarray:
        """The string ids at indices ``idx`` (an object array)."""
        array = np.asarray(idx)
        if array.size == 0:
            return np.zeros(0, dtype=object)
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"idx must hold integer indices, got dtype {array.dtype}")
        if array.min() < 0 or array.max() >= len(self):
            bad = array[(array < 0) | (array >= len(self))][:3].tolist()
            raise IndexError(f"idx must lie in [0, {len(self)}), got e.g. {bad}")
        return self._ids[array]

    def to_json(self) -> str:
        """The map as a JSON text (a list of ids in index order)."""
        return json.dumps({"ids": self._ids.tolist()})

    @classmethod
    def from_json(cls, text: str) -> IdMap:
        """The map saved by ``to_json``."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("ids"), list):
            raise ValueError('IdMap JSON must be an object {"ids": [...]} as written by IdMap.to_json')
        return cls(data["ids"])


def interaction_matrix(
    users_idx: np.ndarray,
    items_idx: np.ndarray,
    n_users: int,
    n_items: int,
) -> scipy.sparse.csr_matrix:
    """The binary (n_users, n_items) CSR matrix with a 1 at each (user, item) pair; duplicates count once."""
    users = np.asarray(users_idx)
    items = np.asarray(items_idx)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(f"users_idx and items_idx must be 1-D of equal length, got shapes {users.shape} and {items.shape}")
    for name, values, n in (("users_idx", users, n_users), ("items_idx", items, n_items)):
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"{name} must hold integer indices, got dtype {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= n):
            raise ValueError(f"{name} must lie in [0, {n}), got values in [{values.min()}, {values.max()}]")
    matrix = scipy.sparse.csr_matrix(
        (np.ones(users.size, dtype=np.float32), (users.astype(np.int64), items.astype(np.int64))),
        shape=(int(n_users), int(n_items)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix
