"""Fine-tune the language model itself as a recommender: a two-tower model trained with an in-batch softmax.

The towers
----------
- **Item tower**: the pretrained language model (default the packaged all-MiniLM-L6-v2),
  mean-pooled over the tokens of the item's text, then dropout, an optional adaptor
  (``"linear"`` or UniSRec's ``"moe"``) and L2 normalisation: ``v_j``.
- **User tower**: the user's ``max_history`` most recent items, encoded by that same item
  tower and pooled (``"mean"`` or a learned ``AttentionPool``), then normalised: ``u_i``.
  A user is what they consumed; the user tower has no parameters of its own beyond the pool.

The score is the cosine ``u_i . v_j``; training divides it by a ``temperature``.

The loss
--------
Each example is a user's history and the item that came next. For a batch of B examples
the candidates are the batch's distinct next items; each user's own next item is the
positive and the others' are its negatives (in-batch negatives - no sampling, no extra
encoding)::

    loss = cross_entropy over candidates of (u_i . v_j / temperature - log q_j)

A candidate that is in the user's own history (another user's positive the user has
already consumed) is masked, as evaluation never ranks it either. Popular items are
in-batch negatives more often than rare ones, which pushes them down too hard; with
``logq=True`` in ``two_tower_batches`` each logit is corrected by ``log q_j``, the
item's share of the training interactions (the log-Q correction of Yi et al., 2019).

Design: the history is encoded in the batch
-------------------------------------------
The B users' histories and next items are encoded *together*: the batch carries the token
ids of its distinct items only (at most B * (max_history + 1), usually far fewer), the
item tower runs once over them, and the user vectors pool rows of that output. So both
towers get exact gradients from the current weights, and there is no cache of item
embeddings to keep fresh. The cost of a step is one forward/backward of the language
model over the batch's distinct items: ``batch_size`` and ``max_history`` bound it.
Freezing the lowest layers (``freeze_layers``) makes it cheaper still, since autograd
records nothing below the first trainable layer.

For scale: with ``batch_size=64`` and ``max_history=20`` a MovieLens batch holds about 500
distinct items (60 of them next items), so a step costs about 8 times what encoding the
positives alone would; halve ``max_history`` and the cost roughly halves.

Train with ``cdtl.train.fit(model, two_tower_batches(model, item_texts, histories),
TrainConfig(lr=LR, weight_decay=WEIGHT_DECAY))`` (2e-5 and 0.01, starting points); evaluate
by ``model.index_items(item_texts)`` and
``evaluate_ranking(model.scorer(train_histories), users, relevant, exclude_csr=train)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cdtl.data.histories import pad_histories
from cdtl.encoders.language_model import freeze_lowest_layers, load_model, resolve_model, transformer_layers
from cdtl.encoders.users import AttentionPool
from cdtl.encoders.whitening import MoEAdaptor
from cdtl.io import atomic_directory

# Starting points for TrainConfig: fine-tuning a pretrained model wants a small lr (TrainConfig's default,
# 1e-3, suits embeddings trained from scratch and would wreck the pretrained weights) and some weight decay.
LR = 2e-5
WEIGHT_DECAY = 0.01

USER_POOLINGS = ("mean", "attention")
ADAPTORS = (None, "linear", "moe")
TARGETS = ("random", "last", "all")


class TwoTower(nn.Module):
    """A language-model item tower and a pooled-history user tower, trained with an in-batch softmax.

    ``model``: a Hugging Face hub id or local directory, ``None`` for the packaged
    all-MiniLM-L6-v2. ``freeze_layers=N`` (N >= 1) freezes the token embeddings and the
    lowest N transformer layers (0 trains everything; N = the number of layers trains only
    the adaptor and pool). Item texts are cut at ``max_length`` tokens; a user is pooled
    from their ``max_history`` most recent items. ``adaptor`` puts a ``"linear"`` layer or
    a ``"moe"`` adaptor (``n_experts`` experts) of output size ``adaptor_dim`` (default:
    the model's hidden size) on top of the pooled text. ``dropout`` applies to the pooled
    text vector (the language model keeps its own internal dropout).

    Batches come from ``two_tower_batches``; ``loss(batch)`` is ``cdtl.train``'s contract.
    ``encode_items``, ``index_items``, ``score_all`` and ``scorer`` are for evaluation and
    never track gradients.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        freeze_layers: int = 0,
        max_length: int = 64,
        max_history: int = 20,
        user_pooling: str = "mean",
        adaptor: str | None = None,
        adaptor_dim: int | None = None,
        n_experts: int = 8,
        dropout: float = 0.1,
        temperature: float = 0.05,
    ) -> None:
        super().__init__()
        for name, value in (("freeze_layers", freeze_layers), ("max_length", max_length), ("max_history", max_history)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "freeze_layers" else 1):
                expected = "an integer >= 0" if name == "freeze_layers" else "a positive integer"
                raise ValueError(f"{name} must be {expected}, got {value!r}")
        if user_pooling not in USER_POOLINGS:
            raise ValueError(f"user_pooling must be one of {USER_POOLINGS}, got {user_pooling!r}")
        if adaptor not in ADAPTORS:
            raise ValueError(f"adaptor must be one of {ADAPTORS}, got {adaptor!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")

        self.model_name, self.tokenizer, self.lm = load_language_model(model)
        if isinstance(getattr(self.lm, "pooler", None), nn.Module):  # BERT's [CLS] pooler: mean pooling never uses it
            self.lm.pooler.requires_grad_(False)
        hidden = int(self.lm.config.hidden_size)
        self.n_layers = len(transformer_layers(self.lm))
        if freeze_layers > self.n_layers:
            raise ValueError(f"freeze_layers must be in [0, {self.n_layers}] for {self.model_name!r}, got {freeze_layers}")
        limit = getattr(self.lm.config, "max_position_embeddings", None)
        if isinstance(limit, int) and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the {limit} positions of {self.model_name!r}")
        self.freeze_layers, self.max_length, self.max_history = freeze_layers, max_length, max_history
        self.user_pooling, self.temperature = user_pooling, float(temperature)
        freeze_lowest_layers(self.lm, freeze_layers)

        self.dim = hidden if adaptor is None else int(adaptor_dim or hidden)
        self.drop = nn.Dropout(dropout)
        if adaptor == "linear":
            self.adaptor: nn.Module = nn.Linear(hidden, self.dim)
        elif adaptor == "moe":
            self.adaptor = MoEAdaptor(hidden, self.dim, n_experts, dropout=0.0)  # self.drop already applies dropout
        else:
            self.adaptor = nn.Identity()
        self.pool = AttentionPool(self.dim) if user_pooling == "attention" else None
        self._index: Tensor | None = None  # the catalogue's item vectors, set by index_items()

    def extra_repr(self) -> str:
        return (f"model={self.model_name!r}, freeze_layers={self.freeze_layers}/{self.n_layers}, "
                f"max_length={self.max_length}, max_history={self.max_history}, temperature={self.temperature}")

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    # ------------------------------------------------------------------ the towers

    def item_vectors(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(n, dim) unit item vectors: the language model, mean-pooled over real tokens, dropout, adaptor."""
        hidden = self.lm(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return F.normalize(self.adaptor(self.drop(pooled)), dim=-1)

    def user_vectors(self, history: Tensor, mask: Tensor) -> Tensor:
        """(B, dim) unit user vectors from the item vectors of their histories, (B, L, dim), masked by ``mask`` (B, L)."""
        if self.pool is not None:
            pooled = self.pool(history, mask)
        else:
            weights = mask.unsqueeze(-1).to(history.dtype)
            pooled = (history * weights).sum(1) / weights.sum(1).clamp(min=1)
        return F.normalize(pooled, dim=-1)

    # ------------------------------------------------------------------ training

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """In-batch softmax of each user's next item against the batch's other next items (see the module docstring).

        Keys (from ``two_tower_batches``): ``input_ids``, ``attention_mask`` (U, T) - the
        batch's distinct items; ``history``, ``history_mask`` (B, L) - rows of those U
        items; ``candidate`` (P,) - the distinct next items, rows of U; ``label`` (B,) -
        each user's next item, a position in ``candidate``; ``seen`` (B, P) - candidates
        to mask; optional ``log_q`` (P,) - the candidates' log-probabilities.
        """
        missing = [k for k in ("input_ids", "attention_mask", "history", "history_mask", "candidate", "label", "seen")
                   if k not in batch]
        if missing:
            raise KeyError(f"TwoTower.loss needs the batches of two_tower_batches; missing keys {missing}, got {sorted(batch)}")
        items = self.item_vectors(batch["input_ids"], batch["attention_mask"])  # (U, dim)
        users = self.user_vectors(items[batch["history"]], batch["history_mask"])  # (B, dim)
        logits = (users @ items[batch["candidate"]].T).float() / self.temperature  # (B, P), float32 under autocast too
        if "log_q" in batch:
            logits = logits - batch["log_q"]
        logits = logits.masked_fill(batch["seen"], float("-inf"))
        return F.cross_entropy(logits, batch["label"])

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """(token ids (n, T) padded with the pad id, lengths (n,)): every text cut at ``max_length`` tokens."""
        texts = check_texts(texts)
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        lengths = torch.tensor([len(x) for x in ids], dtype=torch.int64)
        if (lengths == 0).any():
            raise ValueError(f"{int((lengths == 0).sum())} texts give no tokens, e.g. "
                             f"{texts[int((lengths == 0).nonzero()[0])]!r}")
        tokens = torch.full((len(ids), int(lengths.max())), int(self.tokenizer.pad_token_id), dtype=torch.int64)
        for row, x in enumerate(ids):
            tokens[row, : len(x)] = torch.tensor(x, dtype=torch.int64)
        return tokens, lengths

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def encode_items(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        """(len(texts), dim) float32 item vectors on the CPU, in eval mode (no dropout), batched by text length."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        tokens, lengths = self.tokenize(texts)
        order = torch.argsort(lengths, descending=True)  # similar lengths share a batch: little padding
        out = torch.empty(len(lengths), self.dim, dtype=torch.float32)
        device, was_training = self.device, self.training
        self.eval()
        try:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    width = int(lengths[rows].max())
                    mask = torch.arange(width) < lengths[rows].unsqueeze(1)
                    out[rows] = self.item_vectors(tokens[rows, :width].to(device), mask.long().to(device)).float().cpu()
        finally:
            self.train(was_training)
        return out

    def index_items(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        """Encode the whole catalogue (``encode_items``) and keep it for ``score_all``; call it again after training."""
        self._index = self.encode_items(texts, batch_size)
        return self._index

    @torch.no_grad()
    def score_all(self, user_histories: Any, item_text: Tensor | None = None) -> Tensor:
        """(n_users, n_items) cosine scores of every item for each history, on the model's device.

        ``user_histories`` holds item indices, oldest first (a list of arrays, or CSR-like:
        see ``cdtl.encoders.users``); each is pooled from its ``max_history`` most recent
        items. ``item_text`` defaults to the catalogue of the last ``index_items`` call.
        """
        if item_text is None:
            if self._index is None:
                raise RuntimeError("score_all needs the catalogue's vectors: call model.index_items(item_texts) "
                                   "after training, or pass item_text=model.encode_items(item_texts)")
            item_text = self._index
        if item_text.dim() != 2 or item_text.shape[1] != self.dim:
            raise ValueError(f"item_text must be (n_items, {self.dim}), got shape {tuple(item_text.shape)}")
        was_training = self.training
        self.eval()
        try:
            items, mask = pad_histories(user_histories, self.max_history, n_items=item_text.shape[0])
            item_text = item_text.to(self.device, torch.float32)
            users = self.user_vectors(item_text[items.to(self.device)], mask.to(self.device))
        finally:
            self.train(was_training)
        return users @ item_text.T

    def scorer(self, histories: Sequence[Any]) -> Callable[[Tensor], Tensor]:
        """``score_all`` by user index, for ``cdtl.evaluate.evaluate_ranking``: user u's history is ``histories[u]``."""
        return lambda users: self.score_all([histories[int(u)] for u in users])

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Save the fine-tuned language model and tokenizer (not the adaptor or pool), e.g. for
        ``TextEncoder(model=directory)``."""
        with atomic_directory(directory, merge=True) as tmp:  # a crash never leaves half a model there
            self.lm.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
        return Path(directory)


def load_language_model(model: str | os.PathLike | None) -> tuple[str, Any, nn.Module]:
    """(name, tokenizer, encoder) from a hub id, a local directory, or None for the packaged MiniLM."""
    name, directory = resolve_model(model)
    tokenizer, lm = load_model(name, directory, is_default=model is None)
    if tokenizer.pad_token is None:  # decoders often have none; padded positions are masked anyway
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if getattr(lm.config, "is_encoder_decoder", False):
        lm = lm.get_encoder()
    return name, tokenizer, lm


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got one string; wrap it in a list")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"{len(bad)} of {len(texts)} item texts are empty or not strings, at positions {bad[:10]}; "
                         "fill them in (e.g. with the title) before tokenising")
    if not texts:
        raise ValueError("texts is empty: no item to encode")
    return texts
