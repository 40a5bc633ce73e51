"""Ids as indices: IdMap round-trips sorted ids and JSON, unknown ids raise or map to -1; interaction matrices are binary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from cdtl.data.ids import IdMap, interaction_matrix


def test_idmap_round_trip_sorted_and_json():
    ids = ["b10", "a", "b2", "a", "zz"]
    m = IdMap.fit(ids)
    assert len(m) == 4 and m.ids.tolist() == ["a", "b10", "b2", "zz"]
    idx = m.encode(ids)
    assert idx.dtype == np.int64 and idx.tolist() == [1, 0, 2, 0, 3]
    assert m.decode(idx).tolist() == ids
    text = m.to_json()
    assert json.loads(text) == {"ids": ["a", "b10", "b2", "zz"]}
    assert IdMap.from_json(text) == m
    assert IdMap.fit(pd.Series(ids)) == m  # pandas string columns work too


def test_idmap_unknown_ids_raise_or_map_to_minus_one():
    m = IdMap.fit(["a", "b"])
    with pytest.raises(KeyError, match=r"4 id\(s\).*\['x', 'y', 'z'\];"):
        m.encode(["a", "x", "y", "z", "w", "x"])
    assert m.encode(["a", "x", "b"], missing="ignore").tolist() == [0, -1, 1]
    with pytest.raises(ValueError, match="missing"):
        m.encode(["a"], missing="drop")  # type: ignore[arg-type]
    with pytest.raises(IndexError, match=r"\[0, 2\)"):
        m.decode([0, 2])
    with pytest.raises(TypeError, match="string ids"):
        IdMap.fit([1, 2, 3])
    with pytest.raises(ValueError, match="sorted and unique"):
        IdMap(["b", "a"])
    with pytest.raises(ValueError, match="IdMap.to_json"):
        IdMap.from_json("[1, 2]")


def test_interaction_matrix_is_binary_and_collapses_duplicates():
    users = np.array([0, 0, 2, 2, 2, 1])
    items = np.array([1, 1, 0, 3, 0, 2])
    m = interaction_matrix(users, items, n_users=4, n_items=5)
    assert isinstance(m, scipy.sparse.csr_matrix) and m.shape == (4, 5)
    dense = np.zeros((4, 5))
    dense[[0, 2, 2, 1], [1, 0, 3, 2]] = 1
    np.testing.assert_array_equal(m.toarray(), dense)
    assert m.nnz == 4 and m.has_sorted_indices
    with pytest.raises(ValueError, match=r"items_idx must lie in \[0, 5\)"):
        interaction_matrix(users, items + 3, 4, 5)
    with pytest.raises(ValueError, match="same length|equal length"):
        interaction_matrix(users, items[:2], 4, 5)
