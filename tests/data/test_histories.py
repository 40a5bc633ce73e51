"""Histories as arrays: every input shape gives one CSR layout, oldest first; padding keeps the latest items; empties caught."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch

from cdtl.data.histories import check_empty, history_csr, pad_histories

HISTORIES = [np.array([0, 1]), np.array([2]), np.array([3, 0, 2])]


def test_pad_histories_keeps_the_most_recent_items() -> None:
    items, mask = pad_histories(HISTORIES, max_len=2)
    assert items.tolist() == [[0, 1], [2, 0], [0, 2]]
    assert mask.tolist() == [[True, True], [True, False], [True, True]]


def test_a_list_a_csr_tuple_and_a_scipy_matrix_give_the_same_layout() -> None:
    indptr, indices = history_csr(HISTORIES)
    assert indptr.tolist() == [0, 2, 3, 6] and indices.tolist() == [0, 1, 2, 3, 0, 2]
    assert indptr.dtype == indices.dtype == np.int64
    again = history_csr((indptr, indices))
    assert all(np.array_equal(a, b) for a, b in zip(again, (indptr, indices)))
    matrix = scipy.sparse.csr_matrix((np.ones(6), indices, indptr), shape=(3, 4))
    matrix.sort_indices()  # a scipy matrix's rows sorted by item, not by time: read as stored
    assert history_csr(matrix)[1].tolist() == [0, 1, 2, 0, 2, 3]
    with pytest.raises(ValueError, match=r"expected \[0, 3\)"):
        history_csr(HISTORIES, n_items=3)
    with pytest.raises(ValueError, match="tuple must be \\(indptr, indices\\)"):
        history_csr((indptr, indices, indices))
    with pytest.raises(TypeError, match="histories must be a list of index arrays"):
        history_csr("0 1 2")
    with pytest.raises(TypeError, match=r"histories\[0\] must hold integer item indices"):
        history_csr([np.array([0.5])])


def test_empty_histories_are_counted_refused_or_padded_with_a_false_mask() -> None:
    indptr = np.array([0, 2, 2, 3])
    with pytest.raises(ValueError, match=r"1 of 3 users have an empty history, e.g. users \[1\]"):
        check_empty(indptr, "raise")
    assert check_empty(indptr, "zeros").tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="empty must be one of"):
        check_empty(indptr, "skip")
    items, mask = pad_histories([np.array([4, 5]), np.array([], dtype=np.int64)], empty="zeros")
    assert items.tolist() == [[4, 5], [0, 0]] and mask.tolist() == [[True, True], [False, False]]
    assert items.dtype == torch.int64 and mask.dtype == torch.bool
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        pad_histories(HISTORIES, max_len=0)
