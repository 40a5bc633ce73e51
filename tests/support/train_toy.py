"""A linear regression the training-loop tests learn: known true weights, seeded data and batches, weight comparisons."""

from __future__ import annotations

import torch
from torch import nn

from cdtl.train import TrainConfig, set_seed

TRUE_W = torch.tensor([1.5, -2.0, 0.5, 3.0])
TRUE_B = 0.7


class LinearRegression(nn.Module):
    """y = w.x + b with a squared-error loss: the smallest model that follows the loop's contract."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x)).squeeze(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.mse_loss(self(batch["x"]), batch["y"])


def make_model(dropout: float = 0.0, seed: int = 0) -> LinearRegression:
    set_seed(seed)
    return LinearRegression(dropout)


def make_data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = x @ TRUE_W + TRUE_B + 0.1 * torch.randn(n, generator=generator)
    return x, y


def make_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int = 32):
    """A batches(epoch, generator) function that shuffles with the loop's generator."""

    def batches(epoch: int, generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
        order = torch.randperm(len(x), generator=generator)
        return [{"x": x[idx], "y": y[idx]} for idx in order.split(batch_size)]

    return batches


def quick(**overrides) -> TrainConfig:
    settings = {"epochs": 4, "lr": 0.05, "progress": False, "device": "cpu"}
    settings.update(overrides)
    return TrainConfig(**settings)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[key], b[key]) for key in a)


def equal_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


DATA = make_data()
BATCHES = make_batches(*DATA)


def validation_mse(model: nn.Module) -> dict[str, float]:
    x, y = make_data(64, seed=1)
    return {"mse": float(nn.functional.mse_loss(model(x), y))}
