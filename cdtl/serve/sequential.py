"""The bundle's optional sequential scorer: a next-item model that reads a user's ordered history and ranks the target items.

A bundle may hold one next-item model (``sequential.safetensors``, its settings under
``serving.json``'s ``"sequential"``): SASRec over item ids, or the text SASRec of the
sequential chapter over the bundle's own language-model vectors (``text.safetensors``, so
the model needs no file of its own for them). Its catalogue is the bundle's items in
``items.parquet`` order, source items then target items; it recommends target items only.
A history is read as the user gives it, oldest first:

- an id of neither domain is not read and is reported (``unknown``);
- an item repeated back to back is read once (the training histories keep it once,
  ``cdtl.data.sequential``);
- only the ``max_len`` most recent items are read: a longer history is truncated from the
  left, as in training and evaluation (``cdtl.data.sequential.left_pad``).

Scores are the model's own: ``encode`` the left-padded history, take the last position's
vector, and score every target item as ``model.score_histories`` does (cosine over the
temperature for the text model, a dot product for SASRec), so the service answers what the
model computes. A target item added to the service later is read and ranked by the text
model from its text; SASRec has no vector for it and neither reads nor recommends it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cdtl.data.sequential import left_pad
from cdtl.models.sequential import SASRec, TextSASRec
from cdtl.serve.bundle import BundleError
from cdtl.serve.index import IndexSettings, ItemIndex

MODELS = {"text_sasrec": TextSASRec, "sasrec": SASRec}  # what a bundle's sequential part may be
ARGS = {  # the constructor arguments a bundle records for each, besides the catalogue
    "text_sasrec": ("dim", "max_len", "layers", "heads", "dropout", "n_experts", "temperature"),
    "sasrec": ("dim", "max_len", "layers", "heads", "dropout"),
}


def model_name(model: Any) -> str:
    """The bundle's name of a next-item model's class (``MODELS``); anything else is a ``BundleError``."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            if name == "text_sasrec" and model.use_ids:
                raise BundleError("a text SASRec with item ids cannot serve items added later from their text; "
                                  "bundle the text-only model")
            return name
    raise BundleError(f"a bundle's sequential model is one of {list(MODELS)}, got {type(model).__name__}")


def build_model(settings: dict[str, Any], text: torch.Tensor) -> torch.nn.Module:
    """The next-item model ``settings`` describe, untrained, over ``text`` (n_items, d): the catalogue's vectors."""
    name, args = settings.get("model"), settings.get("args", {})
    if name not in MODELS:
        raise BundleError(f"serving.json: sequential.model {name!r} is not one of {list(MODELS)}")
    if name == "text_sasrec":
        return TextSASRec(text, **args)
    return SASRec(len(text), **args)


def sequential_part(model: Any, args: dict[str, Any], text: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, settings) to bundle a trained next-item model over ``text``'s catalogue (source items, then target).

    The model must be the one ``build_model(settings, text)`` rebuilds: the same class and
    arguments, and for the text model the very same item vectors, else ``BundleError``.
    """
    name = model_name(model)
    if sorted(args) != sorted(ARGS[name]):
        raise BundleError(f"a {name} is bundled with its arguments {list(ARGS[name])}, got {sorted(args)}")
    if model.n_items != len(text):
        raise BundleError(f"the sequential model knows {model.n_items} items, the bundle {len(text)} (source, then target)")
    if name == "text_sasrec" and not torch.equal(model.text.float().cpu(), text.float().cpu()):
        raise BundleError("the text SASRec was trained on other item vectors than the bundle's text.safetensors holds")
    tensors = {k: v for k, v in model.state_dict().items() if k != "text"}
    settings = {"model": name, "args": dict(args), "n_items": int(len(text)),
                "catalogue": "items.parquet rows: source items, then target items"}
    return tensors, settings


class SequentialScorer:
    """The bundle's next-item model behind ``Recommender.recommend`` for a brought history (see the module docstring).

    ``source_ids`` and ``target_ids`` are the bundle's item ids in table order; ``text`` their
    raw vectors in the same order (source, then target).
    """

    def __init__(self, tensors: dict[str, torch.Tensor], settings: dict[str, Any], source_ids: list[str],
                 target_ids: list[str], text: torch.Tensor, index: IndexSettings | None = None) -> None:
        self.name, self.max_len = settings["model"], int(settings["args"]["max_len"])
        if int(settings.get("n_items", -1)) != len(text):
            raise BundleError(f"sequential.safetensors is for {settings.get('n_items')} items; the bundle has {len(text)}")
        self.model = build_model(settings, text.float())
        missing, unexpected = self.model.load_state_dict(tensors, strict=False)
        if unexpected or set(missing) - {"text"}:
            raise BundleError(f"sequential.safetensors does not fit the {self.name} it describes: missing "
                              f"{sorted(set(missing) - {'text'})}, unexpected {sorted(unexpected)}")
        self.model.eval()
        self.n_source = len(source_ids)
        self._rows = {item: row for row, item in enumerate([*source_ids, *target_ids])}
        with torch.inference_mode():
            self._table = self.model.item_vectors().detach().clone()  # (n_items, d): row j is item j
        self.index = ItemIndex(self._item_rows(self._table[self.n_source:]), index or IndexSettings())
        self._unscorable: list[int] = []  # target rows (added items) the model has no vector for
        self._write = threading.Lock()

    @classmethod
    def from_bundle(cls, bundle: Any, index: IndexSettings | None = None) -> SequentialScorer | None:
        """The scorer of a loaded ``cdtl.serve.bundle.Bundle``, or None when the bundle has no sequential part."""
        settings, tensors = bundle.serving.get("sequential"), bundle.tensors
        if not settings or "sequential" not in tensors:
            return None
        items, s = bundle.items, bundle.serving
        source, target = items[items["domain"] == s["source"]], items[items["domain"] == s["target"]]
        text = torch.cat([tensors["text"]["source"], tensors["text"]["target"]])
        return cls(tensors["sequential"], settings, list(source["item"]), list(target["item"]), text, index)

    def _item_rows(self, vectors: torch.Tensor) -> np.ndarray:
        """What the index holds for items: their vectors, L2-normalised when the model scores by cosine."""
        return (F.normalize(vectors, dim=-1) if self.model.normalize else vectors).numpy()

    def read(self, history: list[str]) -> tuple[np.ndarray, list[str]]:
        """(catalogue rows the model reads, oldest first, at most ``max_len``; ids it does not know, in order)."""
        lookup = self._rows.get
        found = [lookup(item, -1) for item in history]
        unknown = [item for item, row in zip(history, found) if row < 0]
        rows = [row for row in found if row >= 0]
        rows = [row for n, row in enumerate(rows) if n == 0 or row != rows[n - 1]]  # a back-to-back repeat, once
        return np.asarray(rows[-self.max_len:], dtype=np.int64), unknown

    @torch.inference_mode()
    def query(self, rows: np.ndarray) -> np.ndarray:
        """(d,) the history's query: the last position's vector, normalised and over the temperature for the text model."""
        seq, _ = left_pad([rows], self.max_len)
        table = self._table
        hidden = self.model.encode(torch.from_numpy(seq), table)[0, -1]
        if self.model.normalize:
            hidden = F.normalize(hidden, dim=-1)
        return (hidden / self.model.temperature).numpy()

    def search(self, rows: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, target rows) of the ``k`` best target items after the history ``rows``, leaving out ``exclude``."""
        leave_out = np.concatenate([np.asarray(exclude, np.int64), np.asarray(self._unscorable, np.int64)])
        values, found = self.index.search(self.query(rows)[None], k, [leave_out])
        keep = found[0] >= 0
        return values[0][keep], found[0][keep]

    def add(self, item: str, raw: np.ndarray) -> None:
        """A target item added to the service (call in the order items are added): the text model reads and ranks it."""
        with self._write:
            if self.name == "text_sasrec":
                with torch.inference_mode():
                    vector = self.model.adaptor(torch.as_tensor(np.asarray(raw, np.float32).reshape(1, -1)))
                self.index.add(self._item_rows(vector))
                self._table = torch.cat([self._table, vector])  # a new tensor, swapped in whole
                self._rows[item] = len(self._table) - 1
            else:  # no vector for an item SASRec never saw: a placeholder row, never recommended
                row = self.index.add(np.zeros((1, self.index.dim), np.float32))[0]
                self._unscorable = [*self._unscorable, int(row)]

    def describe(self) -> dict[str, Any]:
        """What a client may want to know: the model and how much of a history it reads."""
        return {"model": self.name, "max_len": self.max_len}


__all__ = ["ARGS", "MODELS", "SequentialScorer", "build_model", "model_name", "sequential_part"]
