"""A text-based SASRec in the style of UniSRec (Hou et al., KDD 2022): items are their text, so the model moves to
items it never saw.

Every item is the frozen language-model vector of its text (``cdtl.encoders``), mapped by the
mixture-of-experts adaptor of parametric-whitening experts (``cdtl.encoders.whitening.MoEAdaptor``)
into the sequence model's space; with ``use_ids`` an item-ID embedding is added (the ID+text
variant, for a catalogue the model trains on). A causal transformer reads the history of those
vectors; scores are cosine similarities over a temperature. Pre-training combines

- the sequence-item contrastive loss: the next item against every other item of the catalogue
  (a softmax over cosine similarities), and
- with ``seq_seq_weight > 0``, a sequence-sequence contrastive loss: two views of each history
  (items dropped at random, the last kept) must be closer to each other than to the other
  histories of the batch.

``with_catalogue(text)`` gives the same trained adaptor and transformer over another
catalogue's item vectors, with no training (zero-shot), ready for ``set_trainable``'s
adaptor-only or full fine-tuning.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.encoders.whitening import MoEAdaptor
from cdtl.models.sequential.base import NextItemModel, PositionalItems
from cdtl.models.sequential.transformer import CausalTransformer

TRAINABLE = ("full", "adaptor", "none")


class TextSASRec(NextItemModel):
    """Frozen item text vectors -> MoE adaptor (+ item IDs) -> causal transformer -> cosine / temperature."""

    normalize = True

    def __init__(self, text: Tensor, dim: int = 64, *, max_len: int = 50, layers: int = 2, heads: int = 1,
                 dropout: float = 0.2, n_experts: int = 8, adaptor_dropout: float = 0.2, temperature: float = 0.07,
                 use_ids: bool = False, seq_seq_weight: float = 0.0, item_drop: float = 0.2) -> None:
        super().__init__()
        text = torch.as_tensor(text).float()
        if text.dim() != 2 or len(text) < 1:
            raise ValueError(f"text must be (n_items, d) item vectors, got shape {tuple(text.shape)}")
        if not temperature > 0 or not 0.0 <= item_drop < 1.0 or seq_seq_weight < 0:
            raise ValueError(f"need temperature > 0, item_drop in [0, 1), seq_seq_weight >= 0; got {temperature}, "
                             f"{item_drop}, {seq_seq_weight}")
        self.dim, self.max_len, self.temperature = dim, max_len, float(temperature)
        self.seq_seq_weight, self.item_drop, self.use_ids = float(seq_seq_weight), float(item_drop), bool(use_ids)
        self.register_buffer("text", text)
        self.adaptor = MoEAdaptor(text.shape[1], dim, n_experts, dropout=adaptor_dropout)
        self.ids = self._id_table(len(text)) if use_ids else None
        self.inputs = PositionalItems(dim, max_len, dropout)
        self.transformer = CausalTransformer(dim, layers, heads, dropout)

    @property
    def n_items(self) -> int:
        return len(self.text)

    def _id_table(self, n_items: int) -> nn.Embedding:
        table = nn.Embedding(n_items, self.dim)
        nn.init.normal_(table.weight, std=0.02)
        return table

    def item_vectors(self) -> Tensor:
        vectors = self.adaptor(self.text)
        return vectors + self.ids.weight if self.ids is not None else vectors

    def encode(self, seq: Tensor, items: Tensor | None = None) -> Tensor:
        items = self.item_vectors() if items is None else items
        table = torch.cat([items.new_zeros(1, items.shape[1]), items])
        return self.transformer(self.inputs(seq, table), seq)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        items = self.item_vectors()  # one pass of the adaptor over the catalogue serves both terms
        loss = self.next_item_loss(batch, items)
        if self.seq_seq_weight > 0 and self.training:
            loss = loss + self.seq_seq_weight * self.sequence_contrast(batch["seq"], items)
        return loss

    def sequence_contrast(self, seq: Tensor, items: Tensor | None = None) -> Tensor:
        """InfoNCE between two item-dropped views of each history, the other histories of the batch as negatives
        (``items``: ``item_vectors()`` when the caller has it already)."""
        items = self.item_vectors() if items is None else items
        views = []
        for _ in range(2):
            drop = torch.rand(seq.shape, device=seq.device) < self.item_drop
            drop[:, -1] = False
            views.append(F.normalize(self.encode(seq.masked_fill(drop, 0), items)[:, -1], dim=-1))
        logits = views[0] @ views[1].T / self.temperature
        return F.cross_entropy(logits, torch.arange(len(seq), device=seq.device))

    def with_catalogue(self, text: Tensor) -> TextSASRec:
        """A copy that reads another catalogue's item text vectors (the trained adaptor and transformer kept; new IDs if any)."""
        text = torch.as_tensor(text).float()
        if text.dim() != 2 or text.shape[1] != self.text.shape[1]:
            raise ValueError(f"text must be (n_items, {self.text.shape[1]}) vectors of the same language model, "
                             f"got shape {tuple(text.shape)}")
        model = copy.deepcopy(self)
        model.text = text.to(self.text.device)
        if model.ids is not None:
            model.ids = model._id_table(len(text)).to(self.text.device)
        return model


def set_trainable(model: TextSASRec, mode: str) -> TextSASRec:
    """Fine-tune ``"full"`` (every weight), ``"adaptor"`` (the MoE adaptor, and item IDs if any) or ``"none"``."""
    if mode not in TRAINABLE:
        raise ValueError(f"mode must be one of {TRAINABLE}, got {mode!r}")
    for name, param in model.named_parameters():
        param.requires_grad = mode == "full" or (mode == "adaptor" and name.startswith(("adaptor.", "ids.")))
    return model
