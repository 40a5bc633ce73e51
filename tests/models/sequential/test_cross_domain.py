"""CrossDomainSASRec: shapes, a domain embedding that changes the scores, only target items ranked, a within-domain
softmax, and training on merged toy histories that learns what popularity cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cdtl.data.sequential import left_pad
from cdtl.models.sequential import CrossDomainSASRec, SequencePopularity, next_item_batches
from cdtl.models.sequential.cross_domain import SOURCE, TARGET
from cdtl.train import TrainConfig, fit, set_seed

N_SOURCE, N_TARGET, MAX_LEN = 6, 6, 8
IS_TARGET = np.array([False] * N_SOURCE + [True] * N_TARGET)  # items 0-5 source, 6-11 target


def _model(**kw) -> CrossDomainSASRec:
    set_seed(0)
    return CrossDomainSASRec(IS_TARGET, 16, max_len=MAX_LEN, dropout=0.0, **kw).eval()


def _merged(n_users: int = 60) -> list[np.ndarray]:
    """Merged histories where source item k is always followed by target item 6 + k, then by source item (k + 1) % 6.

    The next target item is fixed by the source item before it: only a model that reads the
    merged order finds it; every target item is equally popular.
    """
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n_users):
        start, steps = int(rng.integers(N_SOURCE)), int(rng.integers(2, 6))
        seq = []
        for t in range(steps):
            k = (start + t) % N_SOURCE
            seq += [k, N_SOURCE + k]
        out.append(np.array(seq))
    return out


def test_shapes_and_item_vectors():
    model = _model()
    seq = torch.tensor([[0, 0, 1, 7], [3, 9, 2, 8]])
    assert model.encode(seq).shape == (2, 4, 16)
    assert model.item_vectors().shape == (N_SOURCE + N_TARGET, 16)
    assert model.score_histories(seq).shape == (2, N_SOURCE + N_TARGET)
    table = model.input_table()
    assert torch.equal(table[0], torch.zeros(16))  # padding stays zero
    torch.testing.assert_close(table[1] - model.embedding.weight[1], model.domain.weight[SOURCE])
    torch.testing.assert_close(table[-1] - model.embedding.weight[-1], model.domain.weight[TARGET])


def test_only_target_items_are_scored():
    scores = _model().score_histories(torch.tensor([[0, 1, 2, 8], [0, 0, 0, 0]]))
    assert torch.isinf(scores[:, :N_SOURCE]).all() and (scores[:, :N_SOURCE] < 0).all()
    assert torch.isfinite(scores[:, N_SOURCE:]).all()
    assert set(scores.topk(N_TARGET, dim=1).indices.flatten().tolist()) <= set(range(N_SOURCE, N_SOURCE + N_TARGET))


def test_the_domain_embedding_changes_the_scores():
    model = _model()
    seq = torch.tensor([[0, 2, 7, 3, 9]])
    with torch.no_grad():
        before = model.score_histories(seq)
        # move the source vector only (not along (1, ..., 1), which the input layer norm removes): same items, new reading
        model.domain.weight[SOURCE] += torch.randn(16, generator=torch.Generator().manual_seed(1))
        after = model.score_histories(seq)
    assert not torch.allclose(before[:, N_SOURCE:], after[:, N_SOURCE:])
    without = _model(domain_embedding=False)
    assert without.domain is None and torch.equal(without.input_table(), without.embedding.weight)


def test_each_position_is_a_softmax_over_its_next_items_domain():
    model = _model()
    batch = {"seq": torch.tensor([[0, 1, 7, 2]]), "pos": torch.tensor([[1, 7, 2, 8]])}  # next: 0(src) 6(tgt) 1(src) 7(tgt)
    hidden = model.encode(batch["seq"])[0]
    items = model.item_vectors()
    src = F.cross_entropy(hidden[[0, 2]] @ items[:N_SOURCE].T, torch.tensor([0, 1]), reduction="sum")
    tgt = F.cross_entropy(hidden[[1, 3]] @ items[N_SOURCE:].T, torch.tensor([0, 1]), reduction="sum")
    torch.testing.assert_close(model.loss(batch), (src + tgt) / 4)
    only_target = _model(source_loss_weight=0.0)
    torch.testing.assert_close(only_target.loss(batch), tgt / 2)
    assert only_target.loss({"seq": torch.tensor([[0, 7]]), "pos": torch.tensor([[1, 2]])}).item() == 0.0  # no target next


def test_training_on_merged_histories_beats_popularity():
    histories = _merged()
    set_seed(0)
    model = CrossDomainSASRec(IS_TARGET, 16, max_len=MAX_LEN, dropout=0.0)
    batches = next_item_batches(histories, MAX_LEN, 16)
    with torch.no_grad():
        before = float(model.loss(next(iter(batches(0, torch.Generator().manual_seed(0))))))
    result = fit(model, batches, TrainConfig(epochs=30, lr=1e-2, progress=False, seed=0))
    model.eval()
    assert result.history[-1]["train_loss"] < 0.5 * before
    # after source item k the next target item is 6 + k: the model ranks it first, popularity cannot (all alike)
    seq = torch.from_numpy(left_pad([np.array([2, 8, 3])], MAX_LEN)[0])  # source 2, target 8, source 3: next is 9
    assert int(model.score_histories(seq).argmax()) == N_SOURCE + 3
    popularity = SequencePopularity(histories, N_SOURCE + N_TARGET).score_histories(seq)[0, N_SOURCE:]
    assert popularity.max() - popularity.min() <= 0.25 * popularity.max()  # nearly flat: no signal to find 9


@pytest.mark.parametrize("kwargs, message", [
    ({"is_target": np.zeros(4, bool)}, "no item"),
    ({"is_target": np.zeros(0, bool)}, "is_target"),
    ({"is_target": IS_TARGET, "source_loss_weight": 2.0}, "source_loss_weight"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossDomainSASRec(**kwargs)
