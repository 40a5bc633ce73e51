"""mlp: the layer sizes asked for, ReLU and dropout between layers only, after the last one only when asked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cdtl.models.layers import mlp


def _kinds(net: nn.Sequential) -> list[str]:
    return [type(layer).__name__ for layer in net]


def test_layers_have_the_sizes_asked_for_with_relu_between_them():
    net = mlp([6, 4, 3, 2])
    assert _kinds(net) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    linears = [layer for layer in net if isinstance(layer, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(6, 4), (4, 3), (3, 2)]
    assert net(torch.randn(5, 6)).shape == (5, 2)


def test_the_last_layer_is_linear_unless_it_feeds_another_network():
    assert _kinds(mlp([4, 3])) == ["Linear"]
    assert _kinds(mlp([4, 3], last_activation=True)) == ["Linear", "ReLU"]
    torch.manual_seed(0)
    x = torch.randn(50, 4)
    assert (mlp([4, 3])(x) < 0).any()  # an output layer can go negative
    assert (mlp([4, 3], last_activation=True)(x) >= 0).all()  # a hidden block's output is rectified


def test_dropout_follows_each_relu_when_asked():
    assert _kinds(mlp([4, 3, 2], dropout=0.5)) == ["Linear", "ReLU", "Dropout", "Linear"]
    assert _kinds(mlp([4, 3, 2], dropout=0.5, last_activation=True)) == [
        "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout"]
    assert all(layer.p == 0.5 for layer in mlp([4, 3, 2], dropout=0.5) if isinstance(layer, nn.Dropout))


@pytest.mark.parametrize("sizes", [[], [8]])
def test_fewer_than_two_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match="at least one output size"):
        mlp(sizes)
