"""pack_bundle and the bridge's input transform: trained models become a bundle only in a form the service reproduces."""

from __future__ import annotations

import pytest
import torch
from servekit import toy_trained

from cdtl.serve.bundle import BundleError
from cdtl.serve.pack import pack_bundle


def test_the_bridge_input_is_rebuilt_from_raw_vectors_and_checked():
    from cdtl.models.transfer import LMBridge
    from cdtl.serve.pack import bridge_input_transform

    g = torch.Generator().manual_seed(0)
    items, users = torch.randn(300, 16, generator=g), torch.randn(40, 16, generator=g)
    for whiten in (False, True):
        bridge = LMBridge(items, users, dim=4, hidden=8, whiten=whiten)
        matrix, offset = bridge_input_transform(bridge, items, whiten)
        torch.testing.assert_close(items @ matrix + offset, bridge.item_text, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(users @ matrix + offset, bridge.user_text, atol=1e-4, rtol=1e-4)
        with pytest.raises(BundleError, match=f"whiten={not whiten}"):
            bridge_input_transform(bridge, items, not whiten)


def test_a_mixture_fusion_cannot_be_served_by_one_inner_product(tmp_path):
    with pytest.raises(BundleError, match="geometric"):
        pack_bundle(tmp_path / "mixture", toy_trained(pooling="mixture"))
