"""The shared representation of a (user, item, domain) example that every architecture starts from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

# --------------------------------------------------------------------------- the shared input


class Inputs(nn.Module):
    """The representation of a (user, item, domain) example: four embeddings side by side.

    ``item_text`` is (sum of n_items, text_dim): the frozen language-model vectors of every
    item, domain 0's catalogue first (a buffer, never trained); a linear map projects
    them to ``dim``, once per distinct item of a batch. Without it the text part is left out.
    """

    def __init__(self, n_users: int, n_items: Sequence[int], dim: int, item_text: Tensor | None = None,
                 init_std: float = 0.01) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(sum(n_items), dim)  # one table, each domain's rows after the previous domain's
        self.domain = nn.Embedding(len(n_items), dim)
        self.register_buffer("offsets", torch.tensor(np.cumsum([0, *n_items[:-1]]), dtype=torch.long))
        for table in (self.user, self.item, self.domain):
            nn.init.normal_(table.weight, std=init_std)
        if item_text is not None:
            self.register_buffer("text", item_text.detach().float().clone())
            self.project = nn.Linear(item_text.shape[1], dim)
        else:
            self.text, self.project = None, None
        self.out_dim = dim * (4 if item_text is not None else 3)

    def forward(self, users: Tensor, items: Tensor, domains: Tensor) -> Tensor:
        rows = items + self.offsets[domains]  # the item's row in the one table of all domains
        parts = [self.user(users), self.item(rows), self.domain(domains)]
        if self.project is not None:  # project each distinct item once: scoring repeats every item for every user
            distinct, position = torch.unique(rows, return_inverse=True)
            parts.append(self.project(self.text[distinct])[position])
        return torch.cat(parts, dim=-1)
