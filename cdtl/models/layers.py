"""The building block several models share: a small multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(sizes: Sequence[int], dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ...``, with ReLU (and dropout when > 0) between them.

    With ``last_activation`` the last layer is followed by ReLU (and dropout) too, as a hidden
    block whose output feeds another network.
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes must name an input and at least one output size, got {list(sizes)}")
    layers: list[nn.Module] = []
    for n, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or n < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
