"""Batches of (history, next item) examples for the two-tower model, tokenised once, with optional log-Q correction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cdtl.encoders.users import history_csr
from cdtl.models.two_tower.model import TARGETS, TwoTower


class TwoTowerBatches:
    """Batches of (history, next item) examples for ``TwoTower.loss``; build with ``two_tower_batches``."""

    def __init__(
        self, tokens: Tensor, lengths: Tensor, indptr: np.ndarray, indices: np.ndarray, batch_size: int,
        max_history: int, targets: str, log_q: np.ndarray | None,
    ) -> None:
        self.tokens, self.lengths = tokens, lengths
        self.indices, self.max_history, self.targets, self.batch_size = indices, max_history, targets, batch_size
        self.log_q = log_q
        self.user_start, counts = indptr[:-1], np.diff(indptr)
        self.eligible = np.flatnonzero(counts >= 2)  # a next item needs at least one item before it
        self.user_count = counts
        is_first = np.zeros(indices.size, dtype=bool)
        is_first[self.user_start[counts > 0]] = True
        self.all_positions = np.flatnonzero(~is_first)  # every position after a user's first, into indices
        self.n = self.all_positions.size if targets == "all" else self.eligible.size

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def _positions(self, generator: torch.Generator) -> np.ndarray:
        """This epoch's examples as flat positions of their next item in ``indices``."""
        if self.targets == "all":
            return self.all_positions
        users, counts = self.eligible, self.user_count[self.eligible]
        if self.targets == "last":
            return self.user_start[users] + counts - 1
        draws = torch.rand(len(users), generator=generator, dtype=torch.float64).numpy()
        return self.user_start[users] + 1 + np.minimum((draws * (counts - 1)).astype(np.int64), counts - 2)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        positions = self._positions(generator)
        perm = torch.randperm(len(positions), generator=generator).numpy()
        for start in range(0, len(positions), self.batch_size):
            yield self.batch(positions[perm[start : start + self.batch_size]])

    def batch(self, positions: np.ndarray) -> dict[str, Tensor]:
        """The batch of the examples whose next items sit at ``positions`` of ``indices``."""
        indices, L = self.indices, self.max_history
        user_start = self.user_start[np.searchsorted(self.user_start, positions, side="right") - 1]
        first = np.maximum(user_start, positions - L)
        n_hist = positions - first  # >= 1
        offsets = np.arange(int(n_hist.max()))
        valid = offsets < n_hist[:, None]
        hist_items = indices[np.where(valid, first[:, None] + offsets, 0)]
        targets = indices[positions]
        candidates, label = np.unique(targets, return_inverse=True)  # the distinct next items come first in U
        others = np.setdiff1d(hist_items[valid], candidates)
        items = np.concatenate([candidates, others])  # U: every distinct item of the batch
        order = np.argsort(items)
        row_of = lambda x: order[np.searchsorted(items[order], x)]  # noqa: E731 - item index -> row of U
        history = np.where(valid, row_of(hist_items), 0)
        seen = np.zeros((len(positions), len(candidates)), dtype=bool)
        in_cand = valid & (history < len(candidates))
        seen[np.nonzero(in_cand)[0], history[in_cand]] = True
        seen[np.arange(len(positions)), label] = False  # a re-consumed positive stays the positive
        lengths = self.lengths[items]
        width = int(lengths.max())
        batch = {
            "input_ids": self.tokens[items, :width],
            "attention_mask": (torch.arange(width) < lengths.unsqueeze(1)).long(),
            "history": torch.from_numpy(history),
            "history_mask": torch.from_numpy(valid),
            "candidate": torch.arange(len(candidates)),
            "label": torch.from_numpy(label.reshape(-1)),
            "seen": torch.from_numpy(seen),
        }
        if self.log_q is not None:
            batch["log_q"] = torch.from_numpy(self.log_q[candidates])
        return batch


def two_tower_batches(
    model: TwoTower,
    item_texts: Sequence[str],
    histories: Any,
    batch_size: int = 64,
    *,
    targets: str = "random",
    timestamps: Any = None,
    logq: bool = False,
) -> TwoTowerBatches:
    """Shuffled in-batch-softmax batches for ``model``: every item text is tokenised once, here.

    ``histories`` holds each user's training items as indices into ``item_texts``, oldest
    first (a list of arrays, CSR-like, or any order given ``timestamps``; see
    ``cdtl.encoders.users``). An example is a user's item at some position (the target)
    with up to ``model.max_history`` items before it (the history). ``targets`` picks
    them: ``"random"`` one random position per user, redrawn every epoch (the default:
    the cost of ``"last"``, the variety of ``"all"``); ``"last"`` each user's last item;
    ``"all"`` every position after the first (the most data per epoch). Users with fewer
    than 2 items have no example. ``logq=True`` adds the log-Q correction (``log_q``: each
    candidate's share of all training interactions).
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower (its tokenizer, max_length and max_history), got {type(model).__name__}")
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    tokens, lengths = model.tokenize(item_texts)
    indptr, indices = history_csr(histories, len(lengths), timestamps)
    log_q = None
    if logq:
        counts = np.bincount(indices, minlength=len(lengths)).astype(np.float64)
        with np.errstate(divide="ignore"):
            log_q = np.log(counts / counts.sum()).astype(np.float32)  # -inf only for items never seen, never candidates
    batches = TwoTowerBatches(tokens, lengths, indptr, indices, batch_size, model.max_history, targets, log_q)
    if batches.n == 0:
        raise ValueError(f"no training example: all {len(indptr) - 1} users have fewer than 2 items in their history")
    return batches
