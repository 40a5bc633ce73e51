"""Causal self-attention: the mask lets position t read positions up to t (and never padding), outputs obey it."""

from __future__ import annotations

import pytest
import torch

from cdtl.models.sequential.transformer import CausalBlock, CausalTransformer, causal_mask


def test_the_mask_allows_earlier_items_and_the_query_itself():
    mask = causal_mask(torch.tensor([[0, 0, 5, 6]]))
    assert mask.shape == (1, 1, 4, 4) and mask.dtype == torch.bool
    assert mask[0, 0].tolist() == [
        [True, False, False, False],  # a padded query attends to itself only
        [False, True, False, False],
        [False, False, True, False],
        [False, False, True, True],  # the last item reads itself and the item before, never the padding
    ]


def test_an_output_reads_neither_later_positions_nor_padding():
    torch.manual_seed(0)
    model = CausalTransformer(dim=8, layers=2, heads=2, dropout=0.0).eval()
    seq = torch.tensor([[0, 3, 4, 5]])
    x = torch.randn(1, 4, 8)
    out = model(x, seq)
    later = x.clone()
    later[0, 3] = torch.randn(8)  # not a constant shift, which layer norm would remove
    changed = model(later, seq)
    torch.testing.assert_close(changed[0, :3], out[0, :3])
    assert not torch.allclose(changed[0, 3], out[0, 3])
    padding = x.clone()
    padding[0, 0] = 100.0  # whatever sits at a padded position
    torch.testing.assert_close(model(padding, seq)[0, 1:], out[0, 1:])
    assert torch.isfinite(out).all()


def test_heads_must_divide_the_dimension():
    with pytest.raises(ValueError, match="divisible by heads"):
        CausalBlock(dim=10, heads=3, dropout=0.0)
