"""The floor every next-item model must clear: rank items by how often they occur in the training histories."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from cdtl.models.sequential.batches import item_counts


class SequencePopularity:
    """Everyone gets the same ranking, the training frequency of every item; the history is ignored."""

    def __init__(self, histories: list[np.ndarray], n_items: int) -> None:
        self.counts = torch.from_numpy(item_counts(histories, n_items)).float()

    def score_histories(self, seq: Tensor) -> Tensor:
        """(B, n_items): the same training counts for every history."""
        return self.counts.expand(len(seq), -1)
