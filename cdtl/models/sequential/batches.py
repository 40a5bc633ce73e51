"""Training batches of next-item prediction: each history shifted by one (input, next item), left-padded, shuffled per epoch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from cdtl.data.sequential import left_pad


def next_item_batches(histories: list[np.ndarray], max_len: int, batch_size: int = 256, *, n_items: int | None = None,
                      n_negatives: int = 0, item_counts: np.ndarray | None = None) -> Callable:
    """``batches(epoch, generator)`` for ``cdtl.train.fit``: dicts of ``seq`` (input) and ``pos`` (next items), (B, max_len).

    Each history of two or more items gives one row: its items but the last as input and its
    items but the first as targets, both keeping the ``max_len`` most recent. With
    ``n_negatives`` every batch also carries ``negatives`` drawn from the items' training
    frequency (``item_counts``, smoothed by one) and ``log_q``, their log probability, for
    the log-Q corrected sampled softmax.
    """
    usable = [np.asarray(h, dtype=np.int64) for h in histories if len(h) >= 2]
    if not usable:
        raise ValueError("no history has two or more items: nothing to learn a next item from")
    seq, _ = left_pad([h[:-1] for h in usable], max_len)
    pos, _ = left_pad([h[1:] for h in usable], max_len)
    seq_t, pos_t = torch.from_numpy(seq), torch.from_numpy(pos)
    q = log_q = None
    if n_negatives:
        if item_counts is None or n_items is None:
            raise ValueError("a sampled softmax needs n_items and item_counts (the sampling distribution)")
        q = torch.as_tensor(np.asarray(item_counts, dtype=np.float64) + 1.0)
        q = (q / q.sum()).float()
        log_q = q.log()

    class Epoch:
        def __init__(self, generator: torch.Generator) -> None:
            self.order = torch.randperm(len(seq_t), generator=generator)
            self.generator = generator

        def __len__(self) -> int:
            return (len(self.order) + batch_size - 1) // batch_size

        def __iter__(self):
            for start in range(0, len(self.order), batch_size):
                rows = self.order[start:start + batch_size]
                batch = {"seq": seq_t[rows], "pos": pos_t[rows]}
                if q is not None:
                    batch["negatives"] = torch.multinomial(q, n_negatives, replacement=True, generator=self.generator)
                    batch["log_q"] = log_q
                yield batch

    return lambda epoch, generator: Epoch(generator)


def item_counts(histories: list[np.ndarray], n_items: int) -> np.ndarray:
    """How often each item occurs in the training histories: popularity, and the sampled softmax's proposal."""
    flat = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if histories else np.zeros(0, np.int64)
    return np.bincount(flat, minlength=n_items).astype(np.float64)
