"""Whitening: PCA whitening gives zero mean and identity covariance; the MoE adaptor gates, shapes and trains."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from cdtl.encoders.whitening import MoEAdaptor, PCAWhitening
from cdtl.train import TrainConfig, fit


def _anisotropic(n: int = 2000, d: int = 16, seed: int = 0) -> Tensor:
    """Correlated data in a narrow cone: a large shared offset and very unequal variances."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g) * torch.logspace(0, -1, d)
    return torch.randn(n, d, generator=g) @ mixing + 5.0


def _covariance(z: Tensor) -> Tensor:
    z = z.double()
    centered = z - z.mean(0)
    return centered.T @ centered / (len(z) - 1)


def test_whitened_training_data_has_zero_mean_and_identity_covariance() -> None:
    x = _anisotropic()
    assert (_covariance(x) - torch.eye(16, dtype=torch.float64)).abs().max() > 0.5  # far from white before
    z = PCAWhitening().fit_transform(x)
    assert z.shape == x.shape and z.dtype == torch.float32
    assert z.mean(0).abs().max() < 1e-3
    torch.testing.assert_close(_covariance(z), torch.eye(16, dtype=torch.float64), atol=2e-3, rtol=0)


def test_dim_keeps_the_top_components() -> None:
    x = _anisotropic()
    full = PCAWhitening().fit(x)
    top = PCAWhitening(dim=4).fit(x)
    z = top.transform(x)
    assert z.shape == (2000, 4)
    torch.testing.assert_close(_covariance(z), torch.eye(4, dtype=torch.float64), atol=2e-3, rtol=0)
    assert (top.eigenvalues[:-1] >= top.eigenvalues[1:]).all()  # largest variance first
    torch.testing.assert_close(top.eigenvalues, full.eigenvalues[:4])
    # the kept components are the same directions as the first 4 of the full whitening (up to sign)
    torch.testing.assert_close(z.abs(), full.transform(x)[:, :4].abs(), atol=1e-3, rtol=1e-3)


def test_transform_applies_the_training_statistics_to_new_data() -> None:
    x, new = _anisotropic(seed=0), _anisotropic(n=5, seed=1)
    w = PCAWhitening().fit(x)
    expected = (new.double() - x.double().mean(0)) @ w.matrix.double()
    torch.testing.assert_close(w.transform(new).double(), expected, atol=1e-4, rtol=1e-4)
    assert w.transform(new.double()).dtype == torch.float64


def test_save_load_round_trip(tmp_path) -> None:
    x = _anisotropic()
    w = PCAWhitening(dim=6, eps=1e-6).fit(x)
    path = w.save(tmp_path / "sub" / "whitening.safetensors")
    loaded = PCAWhitening.load(path)
    assert (loaded.dim, loaded.eps) == (6, 1e-6)
    assert torch.equal(loaded.transform(x), w.transform(x))
    assert path.read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle
    with pytest.raises(FileNotFoundError):
        PCAWhitening.load(tmp_path / "missing.safetensors")


def test_whitening_errors_name_the_problem() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        PCAWhitening().transform(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="too few to whiten 16 components"):
        PCAWhitening().fit(torch.randn(10, 16))
    with pytest.raises(ValueError, match="dim=20 exceeds the embedding size d=16"):
        PCAWhitening(dim=20).fit(torch.randn(100, 16))
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        PCAWhitening(dim=0)
    w = PCAWhitening().fit(torch.randn(100, 4))
    with pytest.raises(ValueError, match="fitted on d=4"):
        w.transform(torch.randn(3, 5))


def test_moe_gates_sum_to_one_and_shapes_follow_the_input() -> None:
    torch.manual_seed(0)
    moe = MoEAdaptor(12, 6)  # default 8 experts
    assert moe.n_experts == 8
    nn.init.normal_(moe.gate)  # non-uniform gates
    x = torch.randn(5, 3, 12)
    gates = moe.gate_weights(x)
    assert gates.shape == (5, 3, 8)
    torch.testing.assert_close(gates.sum(-1), torch.ones(5, 3))
    assert moe(x).shape == (5, 3, 6) and moe(x[0, 0]).shape == (6,)
    moe.eval()  # no dropout: the output is the gate-weighted sum of (x - b_k) @ W_k
    x2 = x.reshape(-1, 12)
    expected = sum(moe.gate_weights(x2)[:, k : k + 1] * ((x2 - moe.bias[k]) @ moe.weight[k]) for k in range(8))
    torch.testing.assert_close(moe(x2), expected)
    with pytest.raises(ValueError, match="d_in=12"):
        moe(torch.randn(2, 11))


def test_noisy_gating_only_in_training_mode() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 10)
    noisy = MoEAdaptor(10, 10, 4, noisy_gating=True)
    noisy.train()
    assert not torch.equal(noisy.gate_weights(x), noisy.gate_weights(x))
    noisy.eval()
    clean = torch.softmax(x @ noisy.gate, dim=-1)
    assert torch.equal(noisy.gate_weights(x), noisy.gate_weights(x))
    torch.testing.assert_close(noisy.gate_weights(x), clean)
    plain = MoEAdaptor(10, 10, 4).train()
    assert plain.noise is None and torch.equal(plain.gate_weights(x), plain.gate_weights(x))
    # the noise scale is learnable: it gets a gradient in training mode
    noisy.train()
    (noisy.gate_weights(x)[:, 0]).sum().backward()
    assert noisy.noise.grad is not None and noisy.noise.grad.abs().sum() > 0


class _Regression(nn.Module):
    """A toy task for the shared loop: y = A_c x, with a different map A_c for each of two clusters of x."""

    def __init__(self) -> None:
        super().__init__()
        self.adaptor = MoEAdaptor(8, 8, 4, dropout=0.0, noisy_gating=True)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        return ((self.adaptor(batch["x"]) - batch["y"]) ** 2).sum(-1).mean()


class _ToyBatches:
    def __init__(self, x: Tensor, y: Tensor, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __call__(self, epoch: int, generator: torch.Generator):
        perm = torch.randperm(len(self.x), generator=generator)
        for start in range(0, len(self.x), self.batch_size):
            idx = perm[start : start + self.batch_size]
            yield {"x": self.x[idx], "y": self.y[idx]}


def test_moe_adaptor_trains_under_the_shared_loop() -> None:
    g = torch.Generator().manual_seed(0)
    n = 512
    cluster = torch.randint(2, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + torch.where(cluster.unsqueeze(1) == 1, 3.0, -3.0)
    maps = torch.randn(2, 8, 8, generator=g) * 0.5
    y = torch.einsum("ni,nio->no", x, maps[cluster])
    torch.manual_seed(0)
    model = _Regression()
    config = TrainConfig(epochs=6, lr=0.05, device="cpu", progress=False, seed=0)
    result = fit(model, _ToyBatches(x, y, 64), config)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.1 * losses[0]
    # the gate learned to route the two clusters differently
    model.eval()
    with torch.no_grad():
        gates = model.adaptor.gate_weights(x)
    assert (gates[cluster == 0].mean(0) - gates[cluster == 1].mean(0)).abs().max() > 0.2


def test_moe_experts_equal_centring_each_copy_before_its_map() -> None:
    """``dropout(x) @ W_k - b_k @ W_k`` is ``(dropout(x) - b_k) @ W_k``, in values and in gradients."""
    torch.manual_seed(0)
    adaptor = MoEAdaptor(12, 5, n_experts=3, dropout=0.0)
    with torch.no_grad():
        adaptor.bias.normal_()
    x = torch.randn(7, 12)
    fast = adaptor.experts(x)
    (fast ** 2).sum().backward()
    fast_grads = [adaptor.weight.grad.clone(), adaptor.bias.grad.clone()]
    adaptor.zero_grad()
    slow = torch.einsum("nki,kio->nko", x.unsqueeze(-2) - adaptor.bias, adaptor.weight)
    (slow ** 2).sum().backward()
    assert fast.shape == (7, 3, 5)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast_grads[0], adaptor.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast_grads[1], adaptor.bias.grad, rtol=1e-5, atol=1e-6)
