"""Toy histories and one of each next-item model, shared by the sequential model tests."""

from __future__ import annotations

import numpy as np
import torch

from cdtl.models.sequential import GRU4Rec, SASRec, TextSASRec
from cdtl.train import set_seed

N_ITEMS, MAX_LEN = 12, 8


def _cycles(n_users: int = 48) -> list[np.ndarray]:
    """Histories of 3 to 10 items that walk the items in order (k is always followed by k + 1): only order tells the next item."""
    rng = np.random.default_rng(0)
    return [(rng.integers(N_ITEMS) + np.arange(rng.integers(3, 11))) % N_ITEMS for _ in range(n_users)]


def _models() -> dict[str, torch.nn.Module]:
    set_seed(0)
    text = torch.randn(N_ITEMS, 16)
    return {"sasrec": SASRec(N_ITEMS, 16, max_len=MAX_LEN, dropout=0.0),
            "gru4rec": GRU4Rec(N_ITEMS, 16, dropout=0.0),
            "text": TextSASRec(text, 16, max_len=MAX_LEN, dropout=0.0, adaptor_dropout=0.0, n_experts=2),
            "text_ids": TextSASRec(text, 16, max_len=MAX_LEN, dropout=0.0, use_ids=True, seq_seq_weight=0.1)}
