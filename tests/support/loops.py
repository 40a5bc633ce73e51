"""A plain Adam loop for unit tests that train a model's ``loss(batch)`` without the full training loop."""

from __future__ import annotations

import torch


def adam_epochs(model: torch.nn.Module, batches, epochs: int, lr: float) -> list[float]:
    """Train ``epochs`` epochs of ``batches(epoch, generator)`` with Adam; return each epoch's mean loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    history = []
    for epoch in range(epochs):
        total = 0.0
        for batch in batches(epoch, gen):
            opt.zero_grad()
            loss = model.loss(batch)
            loss.backward()
            opt.step()
            total += loss.item()
        history.append(total / len(batches))
    return history
