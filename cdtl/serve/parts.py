"""The bundle's models rebuilt for serving: the bridge from its own class, the fusion gate, and per-scorer score statistics.

Serving ranks by one inner product. Each scorer k scores item j as ``v_k(u) . x_k(j)``:

- MF: ``v = [u, 1]``, ``x_j = [w_j, c_j]`` (the user bias and global bias are the same for
  every item, so they change no ranking);
- the language-model bridge: the same with the bridge's user vector and item vectors;
- popularity: ``v = [1]``, ``x_j = [count_j]``.

The per-user geometric fusion of chapter 07 ranks items by ``sum_k w_k(u) z_k(u, j) / T_k``
where ``z_k`` is scorer k's score standardised over the catalogue for that user. The
catalogue mean of ``v . x_j`` is ``v . mean_j x_j`` and its variance ``v^T C_k v`` with
``C_k`` the covariance of the rows ``x_j``, so the fused score is again one inner
product, ``q(u) . [x_1(j), x_2(j), x_3(j)]`` minus a per-user constant, with
``q = concat_k a_k v_k`` and ``a_k = w_k / (T_k sd_k)``. ``BlockStats`` keeps each
block's mean and covariance (updated when an item is added); ``Gate`` computes w(u).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from cdtl.serve.bundle import BundleError

MIN_SD = 1e-6  # SoftmaxFusion's clamp on a score row's deviation


def build_bridge(tensors: dict[str, torch.Tensor], settings: dict[str, Any], target_text: torch.Tensor) -> Any:
    """The bundle's ``LMBridge`` (its own class, so serving runs the code that was trained), in eval mode."""
    from cdtl.models.transfer import LMBridge

    transformed = target_text.float() @ tensors["input.matrix"] + tensors["input.offset"]
    bridge = LMBridge(transformed, torch.zeros(1, transformed.shape[1]), dim=settings["dim"], hidden=settings["hidden"],
                      adaptor=settings["adaptor"], n_experts=settings["n_experts"], dropout=settings["dropout"],
                      item_bias=settings["item_bias"], whiten=False, loss=settings["loss"])
    learned = {k: v for k, v in tensors.items() if not k.startswith("input.")}
    missing, unexpected = bridge.load_state_dict(learned, strict=False)
    buffers = {"item_text", "user_text", "global_bias"}
    if unexpected or set(missing) - buffers:
        raise BundleError(f"bridge.safetensors does not fit the bridge it describes: missing {sorted(set(missing) - buffers)}, "
                          f"unexpected {sorted(unexpected)}")
    bridge.item_text = transformed  # the exact centred input, not the constructor's re-centred copy
    return bridge.eval()


class BridgeInput:
    """Raw encoder vectors to the bridge: ``raw @ matrix + offset``, then the user tower or the item side.

    The user tower runs once per cold request, so it is evaluated with numpy from the
    tower's own layers (Linear, ReLU, Dropout: the identity at inference) when it has
    only those, and with torch otherwise; an identity ``matrix`` is skipped.
    """

    def __init__(self, bridge: Any, tensors: dict[str, torch.Tensor]) -> None:
        self.bridge = bridge
        self.matrix, self.offset = tensors["input.matrix"].float(), tensors["input.offset"].float()
        self._identity = bool(torch.equal(self.matrix, torch.eye(self.matrix.shape[0], self.matrix.shape[1])))
        self._np_matrix, self._np_offset = self.matrix.numpy(), self.offset.numpy()
        self._layers = _numpy_layers(bridge.user_tower)

    def _transform(self, raw: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(raw, dtype=np.float32)
        return (x if self._identity else x @ self._np_matrix) + self._np_offset

    def users(self, mean_raw: np.ndarray) -> np.ndarray:
        """(B, dim) user vectors from (B, D) mean raw source vectors."""
        x = self._transform(mean_raw)
        if self._layers is None:
            with torch.inference_mode():
                return self.bridge.user_tower(torch.from_numpy(x)).numpy()
        for kind, weight, bias in self._layers:
            x = x @ weight + bias if kind == "linear" else np.maximum(x, 0.0)
        return x

    @torch.inference_mode()
    def items(self, raw: np.ndarray, item_bias: np.ndarray | None = None) -> np.ndarray:
        """(B, dim + 1) item rows ``[w_j, c_j]`` from (B, D) raw vectors; new items have no learned bias (0)."""
        e = torch.from_numpy(self._transform(raw))
        w = self.bridge.adaptor(e)
        c = self.bridge.text_bias(e).squeeze(-1)
        if item_bias is not None:
            c = c + torch.from_numpy(item_bias)
        return torch.cat([w, c[:, None]], dim=1).numpy()


def _numpy_layers(module: torch.nn.Module) -> list[tuple[str, np.ndarray | None, np.ndarray | None]] | None:
    """[(kind, weight^T, bias)] of a Sequential of Linear, ReLU and Dropout layers, or None for anything else."""
    if not isinstance(module, torch.nn.Sequential):
        return None
    out: list[tuple[str, np.ndarray | None, np.ndarray | None]] = []
    for layer in module:
        if isinstance(layer, torch.nn.Linear):
            bias = layer.bias.detach().numpy() if layer.bias is not None else np.zeros(layer.out_features, np.float32)
            out.append(("linear", np.ascontiguousarray(layer.weight.detach().numpy().T), bias))
        elif isinstance(layer, torch.nn.ReLU):
            out.append(("relu", None, None))
        elif not isinstance(layer, torch.nn.Dropout):
            return None
    return out


class Gate:
    """The fusion's mixing weights w(u) for any user, from the same features the fusion was trained on."""

    def __init__(self, tensors: dict[str, torch.Tensor], settings: dict[str, Any]) -> None:
        self.mode, self.names = settings["mode"], list(settings["scorers"])
        self.standardize = bool(settings["standardize"])
        self.temperatures = tensors["log_temperature"].double().exp().numpy()
        if self.mode == "global":
            self.logits = tensors["logits"].double().numpy()
        if self.mode == "user":
            self.mean, self.sd = tensors["feature_mean"].double().numpy(), tensors["feature_std"].double().numpy()
            self.w1, self.b1 = tensors["gate.0.weight"].double().numpy(), tensors["gate.0.bias"].double().numpy()
            self.w2, self.b2 = tensors["gate.2.weight"].double().numpy(), tensors["gate.2.bias"].double().numpy()

    def weights(self, source_len: float, target_len: float, can_serve: np.ndarray) -> np.ndarray:
        """(K,) weights: a softmax over the scorers that can serve, 0 for the others (``SoftmaxFusion.weights``)."""
        if self.mode == "uniform":
            logits = np.zeros(len(self.names))
        elif self.mode == "global":
            logits = self.logits.copy()
        else:
            features = np.concatenate([[np.log1p(source_len), np.log1p(target_len)], can_serve.astype(np.float64)])
            hidden = np.maximum(self.w1 @ ((features - self.mean) / self.sd) + self.b1, 0.0)
            logits = self.w2 @ hidden + self.b2
        logits = np.where(can_serve, logits, -np.inf)
        logits = logits - logits[can_serve].max()
        out = np.exp(logits)
        return out / out.sum()


class BlockStats:
    """Mean and covariance (n - 1 denominator) of each scorer's block of item columns, updated as items are added."""

    def __init__(self, matrix: np.ndarray, slices: dict[str, slice]) -> None:
        self.slices = slices
        self._lock = threading.Lock()
        x = matrix.astype(np.float64)
        self._n = len(x)
        self._sum = x.sum(0)
        self._outer = {name: x[:, s].T @ x[:, s] for name, s in slices.items()}
        self.current = self._moments()

    def _moments(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        n, out = self._n, {}
        for name, s in self.slices.items():
            mean = self._sum[s] / n
            cov = (self._outer[name] - n * np.outer(mean, mean)) / max(1, n - 1)
            out[name] = (mean, cov)
        return out

    def add(self, rows: np.ndarray) -> None:
        """Fold new item rows into the statistics; readers see the old or the new moments, never a mix."""
        x = np.atleast_2d(rows).astype(np.float64)
        with self._lock:
            self._n += len(x)
            self._sum = self._sum + x.sum(0)
            self._outer = {name: o + x[:, self.slices[name]].T @ x[:, self.slices[name]] for name, o in self._outer.items()}
            self.current = self._moments()


def query(parts: dict[str, np.ndarray], weights: dict[str, float], temperatures: dict[str, float],
          moments: dict[str, tuple[np.ndarray, np.ndarray]], slices: dict[str, slice], dim: int,
          standardize: bool) -> tuple[np.ndarray, float]:
    """(q, offset): the fused score of item row x is ``q . x - offset`` (see the module docstring)."""
    q = np.zeros(dim, dtype=np.float64)
    offset = 0.0
    for name, v in parts.items():
        w = weights.get(name, 0.0)
        if w <= 0.0:
            continue
        mean, cov = moments[name]
        scale = w / temperatures.get(name, 1.0)
        if standardize:
            scale /= max(float(np.sqrt(max(v @ cov @ v, 0.0))), MIN_SD)
            offset += scale * float(v @ mean)
        q[slices[name]] = scale * v
    return q.astype(np.float32), offset


__all__ = ["BlockStats", "BridgeInput", "Gate", "build_bridge", "query"]
