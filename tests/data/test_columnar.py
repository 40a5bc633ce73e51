"""The memory-bounded data path: Arrow reading into codes, CSR in one sort, chunked ranking, sharded batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cdtl.data import DataError, load_tables
from cdtl.data.columnar import csr_matrix, read_interactions
from cdtl.data.ids import IdMap, interaction_matrix
from cdtl.evaluate import chunk_users, evaluate_ranking, group_items
from cdtl.models.batches import bpr_batches, rating_batches
from cdtl.models.transfer.emcdr import user_batches


def _write(tmp_path, inter: pd.DataFrame, items: pd.DataFrame, suffix: str = ".parquet"):
    paths = tmp_path / f"inter{suffix}", tmp_path / f"items{suffix}"
    for df, path in zip((inter, items), paths):
        df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    return paths


INTER = pd.DataFrame({"user": ["u2", "u1", "u1", "u3", "u2"], "item": ["b1", "m1", "b1", "b2", "m2"],
                      "domain": ["books", "movies", "books", "books", "movies"]})
ITEMS = pd.DataFrame({"item": ["m1", "m2", "b1", "b2", "m3"], "domain": ["movies", "movies", "books", "books", "movies"],
                      "title": ["Alien", "Heat", "Dune", "Emma", "Up"]})


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_columnar_codes_match_the_pandas_loader(tmp_path, suffix):
    inter_path, items_path = _write(tmp_path, INTER, ITEMS, suffix)
    data = read_interactions(inter_path, items_path)
    ref = load_tables(inter_path, items_path)
    assert data.users == IdMap.fit(ref.interactions["user"]) and data.items == IdMap.fit(ref.items["item"])
    np.testing.assert_array_equal(data.u, data.users.encode(ref.interactions["user"]))
    np.testing.assert_array_equal(data.i, data.items.encode(ref.interactions["item"]))
    assert data.u.dtype == np.int32 and data.i.dtype == np.int32
    assert data.domains == ("books", "movies")
    assert [data.domains[d] for d in data.domain] == INTER["domain"].tolist()
    assert data.items.decode(np.flatnonzero(data.item_domain == 1)).tolist() == ["m1", "m2", "m3"]  # m3: no interactions
    assert len(data.in_domain("books")) == 3
    ref_csr = interaction_matrix(data.u, data.i, len(data.users), len(data.items))
    assert (data.matrix() != ref_csr).nnz == 0


def test_columnar_refuses_bad_tables_naming_file_and_column(tmp_path):
    inter_path, items_path = _write(tmp_path, INTER.assign(item=["b1", "m1", "b1", "zz", "m2"]), ITEMS)
    with pytest.raises(DataError, match=r"inter.parquet.*1 item value\(s\) are not in the item table.*zz"):
        read_interactions(inter_path, items_path)
    inter_path, _ = _write(tmp_path, pd.concat([INTER, INTER.head(1)]), ITEMS)
    with pytest.raises(DataError, match=r"1 repeated \(user, item\) pair"):
        read_interactions(inter_path)
    inter_path, _ = _write(tmp_path, INTER.assign(user=["u1", None, "u2", "u3", "u4"]), ITEMS)
    with pytest.raises(DataError, match=r"column 'user' has 1 missing value"):
        read_interactions(inter_path)
    inter_path, _ = _write(tmp_path, INTER.drop(columns="item"), ITEMS)
    with pytest.raises(DataError, match=r"missing column 'item'"):
        read_interactions(inter_path)
    inter_path, items_path = _write(tmp_path, INTER.assign(domain=["movies"] + INTER["domain"].tolist()[1:]), ITEMS)
    with pytest.raises(DataError, match=r"1 interaction\(s\) name a domain other than their item's"):
        read_interactions(inter_path, items_path)


def test_csr_matrix_equals_the_reference_builder_with_duplicates():
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 50, 2000), rng.integers(0, 80, 2000)
    fast, ref = csr_matrix(u, i, 60, 80), interaction_matrix(u, i, 60, 80)
    assert fast.shape == ref.shape and fast.nnz == ref.nnz
    np.testing.assert_array_equal(fast.indptr, ref.indptr)
    np.testing.assert_array_equal(fast.indices, ref.indices)
    assert (fast.data == 1).all()


def test_chunked_ranking_equals_one_chunk_and_respects_the_budget():
    torch.manual_seed(0)
    emb_u, emb_i = torch.randn(300, 8), torch.randn(500, 8)
    rng = np.random.default_rng(0)
    train = interaction_matrix(rng.integers(0, 300, 3000), rng.integers(0, 500, 3000), 300, 500)
    users, relevant = group_items(rng.integers(0, 300, 900), rng.integers(0, 500, 900))
    calls = []

    def score_all(u):
        calls.append(len(u))
        return emb_u[u] @ emb_i.T

    whole = evaluate_ranking(score_all, users, relevant, train, (10,), batch_size=10_000, memory_budget=2**40)
    assert calls == [len(users)]
    calls.clear()
    budget = 12 * 500 * 7  # room for 7 users' scores
    chunked = evaluate_ranking(score_all, users, relevant, train, (10,), batch_size=10_000, memory_budget=budget)
    assert max(calls) == 7 == chunk_users(500, 10_000, budget) and sum(calls) == len(users)
    for name in whole:
        np.testing.assert_array_equal(whole[name], chunked[name])
    with pytest.raises(ValueError, match="memory_budget"):
        chunk_users(500, 10, 0)


def test_sharded_batches_split_each_batch_of_one_process_between_ranks():
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 40, 203), rng.integers(0, 30, 203)
    keep = np.unique(u * 30 + i, return_index=True)[1]
    u, i = u[keep], i[keep]
    maker = rating_batches(u, i, np.ones(len(u)), batch_size=16)
    one = list(maker(0, torch.Generator().manual_seed(5)))
    shards = [list(maker.sharded(r, 2)(0, torch.Generator().manual_seed(5))) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(maker.sharded(0, 2))
    for k, (a, b) in enumerate(zip(*shards)):
        assert len(a["user"]) == len(b["user"]) >= 1
        pairs = torch.cat([a["user"] * 100 + a["item"], b["user"] * 100 + b["item"]])
        full = one[k]["user"] * 100 + one[k]["item"]
        assert set(pairs.tolist()) <= set(full.tolist())  # the two halves of the one-process batch
    seen = sum(len(b["user"]) for shard in shards for b in shard)
    assert seen == len(u) - len(u) % 2
    with pytest.raises(ValueError, match="batch_size 16 does not divide over 3 processes"):
        maker.sharded(0, 3)
    with pytest.raises(ValueError, match="cannot be shared by 500 processes"):
        rating_batches(u[:3], i[:3], np.ones(3), batch_size=500).sharded(0, 500)
    assert len(list(user_batches(np.arange(10), 4).sharded(1, 2)(0, torch.Generator().manual_seed(0)))) == 3


def test_sharded_bpr_ranks_draw_their_own_valid_negatives():
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 50, 400), rng.integers(0, 60, 400)
    keep = np.unique(u * 60 + i, return_index=True)[1]
    u, i = u[keep], i[keep]
    train = interaction_matrix(u, i, 50, 60)
    maker = bpr_batches(u, i, 60, 32, train, n_negatives=3)
    negs = []
    for r in (0, 1):
        batches = list(maker.sharded(r, 2)(0, torch.Generator().manual_seed(9)))
        again = list(maker.sharded(r, 2)(0, torch.Generator().manual_seed(9)))
        assert all(torch.equal(x["neg"], y["neg"]) for x, y in zip(batches, again))  # seeded
        for b in batches:
            assert b["neg"].shape == (len(b["user"]), 3)
            assert not maker.is_positive(b["user"].unsqueeze(1).expand(-1, 3), b["neg"]).any()
        negs.append(torch.cat([b["neg"] for b in batches]))
    assert not torch.equal(negs[0], negs[1])  # each rank its own draws
