"""NextItemModel and PositionalItems: scores, the full and log-Q sampled softmax, positions counted from the most recent item."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.models.sequential.base import NextItemModel, PositionalItems

N_ITEMS, DIM = 6, 4


class Lookup(NextItemModel):
    """The smallest next-item model: a position's vector is its own item's embedding."""

    def __init__(self, normalize: bool = False, temperature: float = 1.0) -> None:
        super().__init__()
        self.table = nn.Embedding(N_ITEMS + 1, DIM)
        self.normalize, self.temperature = normalize, temperature

    def encode(self, seq: Tensor, items: Tensor | None = None) -> Tensor:
        return self.table(seq)

    def item_vectors(self) -> Tensor:
        return self.table.weight[1:]


def _batch() -> dict[str, Tensor]:
    return {"seq": torch.tensor([[0, 1, 2, 3], [4, 5, 6, 1]]), "pos": torch.tensor([[0, 2, 3, 4], [5, 6, 1, 0]])}


def test_scores_are_dot_products_or_cosines_over_the_temperature():
    torch.manual_seed(0)
    model = Lookup()
    seq = torch.tensor([[0, 2, 5]])
    torch.testing.assert_close(model.score_histories(seq), model.table.weight[5:6] @ model.item_vectors().T)
    cosine = Lookup(normalize=True, temperature=0.1)
    cosine.load_state_dict(model.state_dict())
    expected = F.normalize(model.table.weight[5:6], dim=-1) @ F.normalize(model.item_vectors(), dim=-1).T / 0.1
    torch.testing.assert_close(cosine.score_histories(seq), expected)


def test_the_full_softmax_loss_counts_every_position_with_a_next_item():
    torch.manual_seed(0)
    model, batch = Lookup(), _batch()
    keep = batch["pos"] > 0
    logits = model.table(batch["seq"])[keep] @ model.item_vectors().T
    torch.testing.assert_close(model.loss(batch), F.cross_entropy(logits, batch["pos"][keep] - 1))


def test_a_sampled_softmax_over_every_item_with_uniform_q_is_the_full_softmax():
    torch.manual_seed(0)
    model, batch = Lookup(), _batch()
    full = model.loss(batch)
    sampled = model.loss({**batch, "negatives": torch.arange(N_ITEMS), "log_q": torch.full((N_ITEMS,), -1.7)})
    torch.testing.assert_close(sampled, full)  # the target among the negatives is masked, a constant log q cancels
    skewed = torch.log(torch.tensor([0.5, 0.1, 0.1, 0.1, 0.1, 0.1]))
    assert not torch.allclose(model.loss({**batch, "negatives": torch.arange(N_ITEMS), "log_q": skewed}), full)


def test_positions_count_back_from_the_most_recent_item_and_padding_is_zero():
    torch.manual_seed(0)
    layer = PositionalItems(DIM, max_len=5, dropout=0.0)
    table = torch.randn(N_ITEMS + 1, DIM)
    long = layer(torch.tensor([[1, 2, 3, 4, 5]]), table)
    short = layer(torch.tensor([[0, 4, 5]]), table)
    torch.testing.assert_close(short[0, 1:], long[0, 3:])  # the same item, the same distance from the end
    assert torch.equal(short[0, 0], torch.zeros(DIM))
    with pytest.raises(ValueError, match="exceeds max_len=5"):
        layer(torch.ones(1, 6, dtype=torch.long), table)
