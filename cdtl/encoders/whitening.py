"""Language-model embeddings crowd into a narrow cone; whitening spreads them out, fixed (PCA) or learned (UniSRec's MoE adaptor).

Two ways to make text embeddings fit a recommender better:

- ``PCAWhitening`` (BERT-whitening): subtract the mean and rotate/rescale by the covariance's
  eigendecomposition, ``z = (x - mu) @ V diag(1 / sqrt(lambda + eps))``, so the fitted data
  has zero mean and identity covariance; keeping the top ``dim`` components also shrinks
  the vectors. Nothing is learned by gradient: ``fit`` once, ``transform`` anything.
- ``MoEAdaptor`` (UniSRec, Hou et al., KDD 2022): ``n_experts`` *parametric whitening*
  experts ``(x - b_k) @ W_k``, each with a learned bias b_k and linear map W_k, mixed by
  a softmax gate computed from x. Trained with the recommender, it adapts one frozen text
  space to each domain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.tensorfile import load_tensors, read_header, save_tensors

FORMAT = "cdtl.PCAWhitening/1"


def _as_matrix(x: Tensor, name: str = "x") -> Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) tensor of embeddings, got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must hold floating-point embeddings, got dtype {x.dtype}")
    return x


class PCAWhitening:
    """Zero mean, identity covariance: ``transform(x) = (x - mean) @ matrix``, fitted by ``fit(x)``.

    ``matrix`` is (d, k): the covariance's top-k eigenvectors (largest variance first),
    each scaled by 1 / sqrt(eigenvalue + eps). ``dim=None`` keeps all d components; a
    smaller ``dim`` keeps the top ones, reducing the size (BERT-whitening finds k = d/4 or
    so often ranks as well). Fitting needs more rows than kept components (the covariance
    of n rows has rank at most n - 1). Statistics are computed in float64; the fitted
    tensors are float32 on the CPU and are moved to ``x``'s device on ``transform``.
    """

    def __init__(self, dim: int | None = None, eps: float = 1e-8) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive integer or None (keep all components), got {dim!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"eps must be a number >= 0, got {eps!r}")
        self.dim, self.eps = dim, float(eps)
        self.mean: Tensor | None = None  # (d,)
        self.matrix: Tensor | None = None  # (d, k)
        self.eigenvalues: Tensor | None = None  # (k,): the variance along each kept component, largest first

    def __repr__(self) -> str:
        shape = "unfitted" if self.matrix is None else f"{self.matrix.shape[0]} -> {self.matrix.shape[1]}"
        return f"PCAWhitening(dim={self.dim}, eps={self.eps}, {shape})"

    @property
    def fitted(self) -> bool:
        return self.matrix is not None

    def fit(self, x: Tensor) -> PCAWhitening:
        """Estimate the mean and the whitening matrix from the rows of ``x`` (n, d); returns self."""
        x = _as_matrix(x).detach().to("cpu", torch.float64)
        n, d = x.shape
        k = d if self.dim is None else self.dim
        if k > d:
            raise ValueError(f"dim={self.dim} exceeds the embedding size d={d}")
        if n <= k:
            raise ValueError(f"x has {n} rows, too few to whiten {k} components (needs more than {k}); "
                             f"pass more rows or dim < {n}")
        if not torch.isfinite(x).all():
            raise ValueError("x holds NaN or infinite values")
        mean = x.mean(0)
        centered = x - mean
        cov = centered.T @ centered / (n - 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
        eigenvalues, eigenvectors = eigenvalues.flip(0)[:k].clamp(min=0), eigenvectors.flip(1)[:, :k]
        self.mean = mean.float()
        self.matrix = (eigenvectors / torch.sqrt(eigenvalues + self.eps)).float().contiguous()  # as load() gives it
        self.eigenvalues = eigenvalues.float()
        return self

    def transform(self, x: Tensor) -> Tensor:
        """(n, k) whitened embeddings of ``x`` (n, d), on ``x``'s device, in float32 (or x's float64)."""
        if self.mean is None or self.matrix is None:
            raise RuntimeError("PCAWhitening is not fitted: call fit(x) (or load a saved one) first")
        x = _as_matrix(x)
        if x.shape[1] != self.matrix.shape[0]:
            raise ValueError(f"x has {x.shape[1]} columns, but this whitening was fitted on d={self.matrix.shape[0]}")
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        mean, matrix = self.mean.to(x.device, dtype), self.matrix.to(x.device, dtype)
        return (x.to(dtype) - mean) @ matrix

    def fit_transform(self, x: Tensor) -> Tensor:
        """``fit(x)``, then ``transform(x)``."""
        return self.fit(x).transform(x)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted statistics to a safetensors file (settings in its JSON header)."""
        if self.mean is None or self.matrix is None or self.eigenvalues is None:
            raise RuntimeError("PCAWhitening is not fitted: nothing to save")
        tensors = {"mean": self.mean, "matrix": self.matrix, "eigenvalues": self.eigenvalues}
        return save_tensors(path, {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                            {"format": FORMAT, "settings": json.dumps({"dim": self.dim, "eps": self.eps})})

    @classmethod
    def load(cls, path: str | os.PathLike) -> PCAWhitening:
        """The whitening written by ``save``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no PCAWhitening file at {path}")
        found = read_header(path, what="PCAWhitening file").get("format")
        if found != FORMAT:
            raise ValueError(f"{path} is not a PCAWhitening file (format {found!r}, expected {FORMAT!r})")
        tensors, header = load_tensors(path, what="PCAWhitening file", require_digest=False)
        settings = json.loads(header["settings"])
        whitening = cls(dim=settings["dim"], eps=settings["eps"])
        whitening.mean, whitening.matrix, whitening.eigenvalues = tensors["mean"], tensors["matrix"], tensors["eigenvalues"]
        return whitening


class MoEAdaptor(nn.Module):
    """UniSRec's mixture of parametric-whitening experts: ``sum_k g_k(x) (dropout(x) - b_k) @ W_k``.

    - expert k: a learned bias ``b_k`` (d_in,) subtracted from the (dropped-out) input,
      then a linear map ``W_k`` (d_in, d_out) without bias - whitening with learned
      statistics instead of PCA's fitted ones;
    - gate: ``g(x) = softmax(x @ G)`` over the experts, G (d_in, n_experts) starting at zero
      (all experts equal). With ``noisy_gating=True`` the gate logits get Gaussian noise
      of a learned, input-dependent scale ``softplus(x @ N) + noise_epsilon`` while
      training (never in eval mode), which spreads the load over the experts early on.

    Works on any leading shape: (..., d_in) -> (..., d_out). ``gate_weights(x)`` returns
    the gates (..., n_experts), as the current mode computes them.
    """

    def __init__(
        self,
        d_in: int,
        d_out: int | None = None,
        n_experts: int = 8,
        *,
        dropout: float = 0.2,
        noisy_gating: bool = False,
        noise_epsilon: float = 1e-2,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        d_out = d_in if d_out is None else d_out
        for name, value in (("d_in", d_in), ("d_out", d_out), ("n_experts", n_experts)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not noise_epsilon >= 0:
            raise ValueError(f"noise_epsilon must be >= 0, got {noise_epsilon!r}")
        self.d_in, self.d_out, self.n_experts = d_in, d_out, n_experts
        self.noisy_gating, self.noise_epsilon = bool(noisy_gating), float(noise_epsilon)
        self.drop = nn.Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(n_experts, d_in))  # b_k
        self.weight = nn.Parameter(torch.randn(n_experts, d_in, d_out) * init_std)  # W_k
        self.gate = nn.Parameter(torch.zeros(d_in, n_experts))  # G
        self.noise = nn.Parameter(torch.zeros(d_in, n_experts)) if self.noisy_gating else None  # N

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_out={self.d_out}, n_experts={self.n_experts}, noisy_gating={self.noisy_gating}"

    def _check(self, x: Tensor) -> None:
        if x.dim() < 1 or x.shape[-1] != self.d_in:
            raise ValueError(f"x must end in d_in={self.d_in} features, got shape {tuple(x.shape)}")

    def gate_weights(self, x: Tensor) -> Tensor:
        """(..., n_experts) softmax gates for ``x``, noisy only when training with ``noisy_gating``."""
        self._check(x)
        logits = x @ self.gate
        if self.noise is not None and self.training:
            scale = F.softplus(x @ self.noise) + self.noise_epsilon
            logits = logits + torch.randn_like(logits) * scale
        return torch.softmax(logits, dim=-1)

    def experts(self, x: Tensor) -> Tensor:
        """(..., n_experts, d_out): every expert's output ``(dropout(x) - b_k) @ W_k``."""
        self._check(x)
        # (dropout(x) - b_k) @ W_k = dropout(x) @ W_k - b_k @ W_k: one product with every expert's map side by side,
        # never the (..., K, d_in) tensor of centred copies (eight copies of a whole catalogue's text vectors).
        maps = self.weight.permute(1, 0, 2).reshape(self.d_in, self.n_experts * self.d_out)  # (d_in, K * d_out)
        mapped = (self.drop(x) @ maps).unflatten(-1, (self.n_experts, self.d_out))
        return mapped - torch.einsum("ki,kio->ko", self.bias, self.weight)

    def forward(self, x: Tensor) -> Tensor:
        """(..., d_out): the gate-weighted sum of the experts."""
        gates = self.gate_weights(x)
        return (gates.unsqueeze(-1) * self.experts(x)).sum(-2)


__all__ = ["MoEAdaptor", "PCAWhitening"]
