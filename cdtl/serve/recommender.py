"""Recommendations computed in-process from a bundle: what the HTTP service answers, and what the offline A/B test replays.

``Recommender(bundle)`` serves three kinds of user:

- a **warm** user (known, with target-domain training history): matrix factorisation;
- a **cold** user, known by id with source-domain history only, or new and described by
  a list of source-domain items: the language-model bridge, from the mean text vector of
  those items;
- anyone else: popularity, the declared fallback.

A bundle with a sequential part (``cdtl.serve.sequential``) serves a brought history by its
next-item model instead: the history is then ordered, oldest first, and may hold items of
both domains; the model reads its ``max_len`` most recent known items (``scorer``:
sequential). ``Recommender(bundle, sequential=False)`` serves the same bundle without it.

With the bundle's fusion the three are not alternatives but parts: every scorer that can
serve the user is fused with the per-user weights of chapter 07 (``cdtl.serve.parts``
explains how the fused score stays one inner product, which the index searches). The
answer says which path the user took (``scorer``: mf, bridge or fallback) and the weights.

New items (``add_item``) are encoded once from their text; the bridge places them from
that text, matrix factorisation gives them its catalogue-average row (it has never seen
them: neutral), popularity a count of 0. They enter the index at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.serve.bundle import Bundle
from cdtl.serve.index import IndexSettings, ItemIndex
from cdtl.serve.pack import SCORERS
from cdtl.serve.parts import BlockStats, BridgeInput, Gate, build_bridge, query
from cdtl.serve.sequential import SequentialScorer

PATHS = {"mf": "mf", "lm_bridge": "bridge", "popularity": "fallback"}  # scorer -> the path it names in answers


class RequestError(ValueError):
    """A request the recommender cannot answer; ``field`` names the input at fault, ``status`` the HTTP code."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


@dataclass
class Recommendation:
    """One answer: item ids best first, their titles and fused scores, and how the user was served."""

    items: list[str]
    titles: list[str]
    scores: list[float]
    scorer: str  # mf | bridge | sequential | fallback
    weights: dict[str, float]
    user: str | None = None
    unknown_items: list[str] = field(default_factory=list)
    history_used: int = 0


def _csr_rows(tensors: dict[str, torch.Tensor], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    return tensors[f"{prefix}_indptr"].numpy(), tensors[f"{prefix}_items"].numpy()


class Recommender:
    """The bundle's models behind one ``recommend`` call (see the module docstring).

    ``encoder``: a ``cdtl.encoders.TextEncoder`` matching the bundle (``cdtl.serve.loading``),
    needed only for free text (``similar_items(text=...)``, ``add_item``). ``index``: how
    the catalogue is searched. ``scorers``: the scorers allowed to serve (default all);
    ``fusion=False`` or a subset of scorers serves each user by the first scorer in
    ``mf, lm_bridge, popularity`` that can (a simpler system, e.g. a control arm);
    ``sequential=False`` leaves out the bundle's sequential model, if it has one.
    """

    def __init__(self, bundle: Bundle, *, encoder: Any = None, index: IndexSettings | None = None,
                 scorers: tuple[str, ...] | None = None, fusion: bool = True, sequential: bool = True) -> None:
        self.bundle, self.encoder = bundle, encoder
        self.index_settings = index or IndexSettings()
        s, t = bundle.serving, bundle.tensors
        self.scorers = tuple(scorers or SCORERS)
        if not set(self.scorers) <= set(SCORERS) or "popularity" not in self.scorers:
            raise ValueError(f"scorers must be a subset of {SCORERS} that includes popularity, got {self.scorers}")
        users = bundle.users
        self.user_ids = users["user"].to_numpy(dtype=object)
        self._user_rows = pd.Index(self.user_ids)
        self.source_len = users["source_len"].to_numpy(np.int64)
        self.target_len = users["target_len"].to_numpy(np.int64)
        items = bundle.items
        source, target = items[items["domain"] == s["source"]], items[items["domain"] == s["target"]]
        self._source_rows = {item: row for row, item in enumerate(source["item"])}
        self._item_ids = list(target["item"])  # grows with add_item: row r of every item matrix is this item
        self._titles = list(target["title"])
        self._target_rows = {item: row for row, item in enumerate(self._item_ids)}
        self.source_text = t["text"]["source"].numpy()
        target_text = t["text"]["target"]
        self._seen = _csr_rows(t["histories"], "seen")
        self.bridge_input = BridgeInput(build_bridge(t["bridge"], s["bridge"], target_text), t["bridge"])
        self.bridge_users = self.bridge_input.users(self._mean_source_text())  # unused for users without history

        mf = t["mf"]
        self.mf_users = mf["user_emb.weight"].numpy()
        ones = np.ones((len(self.user_ids), 1))
        self.mf_parts = np.hstack([self.mf_users, ones])  # each known user's [u, 1] query part, float64
        self.bridge_parts = np.hstack([self.bridge_users, ones])
        item_bias = t["bridge"].get("item_bias.weight")
        blocks = {
            "mf": np.hstack([mf["item_emb.weight"].numpy(), mf["item_bias.weight"].numpy()]),
            "lm_bridge": self.bridge_input.items(target_text.numpy(), None if item_bias is None else item_bias[:, 0].numpy()),
            "popularity": target["interactions"].to_numpy(np.float32)[:, None],
        }
        self.slices, start = {}, 0
        for name in SCORERS:
            self.slices[name] = slice(start, start + blocks[name].shape[1])
            start += blocks[name].shape[1]
        matrix = np.hstack([blocks[n] for n in SCORERS]).astype(np.float32)
        self.dim, self._matrix = matrix.shape[1], matrix
        self.stats = BlockStats(matrix, self.slices)
        # the index sees each scorer's block scaled to a root-mean-square row norm of 1 (and the query the inverse):
        # inner products are unchanged, but no block (popularity counts reach the hundreds) dominates the geometry
        # that an approximate index clusters or links items by
        self._scale = np.ones(self.dim, np.float32)
        for s_ in self.slices.values():
            rms = float(np.sqrt((matrix[:, s_].astype(np.float64) ** 2).sum(1).mean()))
            self._scale[s_] = 1.0 / rms if rms > 0 else 1.0
        self.index = ItemIndex(matrix * self._scale, self.index_settings)
        self.text_index = ItemIndex(target_text.numpy(), self.index_settings)
        # the next-item model for brought histories (cdtl.serve.sequential), if the bundle has one
        self.sequential = SequentialScorer.from_bundle(bundle, self.index_settings) if sequential else None
        use_fusion = fusion and s.get("fusion") and "fusion" in t and set(s["fusion"]["scorers"]) <= set(self.scorers)
        self.gate = Gate(t["fusion"], s["fusion"]) if use_fusion else None
        self._added: list[dict[str, Any]] = []
        self._known: dict[int, tuple] = {}  # user row -> (moments, query, offset, weights, path): see _known_query
        self._write = threading.Lock()
        self.encoder_check: dict[str, Any] | None = None  # how the encoder reproduced the bundle (cdtl.serve.loading)

    def _mean_source_text(self) -> np.ndarray:
        """(n_users, dim) each known user's mean source-history text vector (zeros without history)."""
        indptr, items = _csr_rows(self.bundle.tensors["histories"], "source")
        counts = np.diff(indptr)
        mean = np.zeros((len(self.user_ids), self.source_text.shape[1]), np.float32)
        np.add.at(mean, np.repeat(np.arange(len(counts)), counts), self.source_text[items])
        has = counts > 0
        mean[has] /= counts[has, None]
        return mean

    # ------------------------------------------------------------------ lookups

    @property
    def n_items(self) -> int:
        """Target items that can be recommended, added ones included."""
        return len(self._item_ids)

    @property
    def encoder_id(self) -> str:
        """A short id of the text encoder the bundle names: vectors made by the same id are interchangeable."""
        identity = self.bundle.serving["encoder"]
        key = {k: identity.get(k) for k in ("model", "files_sha256", "pooling", "max_length", "normalize")}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def has_item(self, item: str) -> bool:
        """Whether ``item`` is a source or target item already (bundled or added): a new item needs a new id."""
        return item in self._target_rows or item in self._source_rows

    @property
    def added_items(self) -> list[dict[str, Any]]:
        """Items added since load: ``{"item", "text", "title", "vector", "row"}`` each (to carry over to a new bundle)."""
        return list(self._added)

    def user_row(self, user: str) -> int:
        try:
            return int(self._user_rows.get_loc(str(user)))
        except KeyError:
            raise RequestError("user", f"unknown user id {str(user)[:80]!r}; a new user is described by a 'history' of "
                                       f"{self.bundle.serving['source']} items instead", 404) from None

    def source_rows(self, items: list[str]) -> tuple[np.ndarray, list[str]]:
        """(rows of the known source items, ids that are not source-domain items), in the given order."""
        lookup = self._source_rows.get
        found = [lookup(item, -1) for item in items]
        unknown = [item for item, row in zip(items, found) if row < 0]
        return np.fromiter((r for r in found if r >= 0), dtype=np.int64), unknown

    # ------------------------------------------------------------------ scoring

    def _plan(self, row: int | None, history: np.ndarray | None) -> tuple[dict[str, np.ndarray], dict[str, float], str]:
        """(parts, weights, path) for a known user ``row`` or a new user's source ``history`` rows."""
        if row is not None:
            source_len, target_len = int(self.source_len[row]), int(self.target_len[row])
            user_vec = None
        else:
            source_len, target_len = len(history), 0
            user_vec = self.bridge_input.users(self.source_text[history].mean(0, keepdims=True))[0] if len(history) else None
        serve = {"mf": target_len > 0 and "mf" in self.scorers,
                 "lm_bridge": source_len > 0 and "lm_bridge" in self.scorers, "popularity": True}
        parts = {"popularity": np.ones(1)}
        if serve["mf"]:
            parts["mf"] = self.mf_parts[row]
        if serve["lm_bridge"]:
            parts["lm_bridge"] = self.bridge_parts[row] if row is not None else np.append(user_vec, 1.0).astype(np.float64)
        path = next(PATHS[n] for n in SCORERS if serve[n])
        if self.gate is None:
            weights = {next(n for n in SCORERS if serve[n]): 1.0}
        else:
            can = np.array([serve[n] for n in self.gate.names])
            weights = dict(zip(self.gate.names, self.gate.weights(source_len, target_len, can).tolist()))
        return parts, weights, path

    def _query(self, parts: dict[str, np.ndarray], weights: dict[str, float],
               moments: dict | None = None) -> tuple[np.ndarray, float]:
        temps = dict(zip(self.gate.names, self.gate.temperatures)) if self.gate is not None else {}
        standardize = self.gate.standardize if self.gate is not None else True
        return query(parts, weights, temps, moments or self.stats.current, self.slices, self.dim, standardize)

    def _known_query(self, row: int) -> tuple[np.ndarray, float, dict[str, float], str]:
        """(index query, offset, weights, path) of a known user, computed once until an item is added."""
        moments = self.stats.current
        cached = self._known.get(row)
        if cached is not None and cached[0] is moments:
            return cached[1:]
        parts, weights, path = self._plan(row, None)
        q, offset = self._query(parts, weights, moments)
        entry = (moments, q / self._scale, offset, {n: float(w) for n, w in weights.items() if w > 0}, path)
        self._known[row] = entry  # one assignment: a concurrent request sees the old entry or this one
        return entry[1:]

    def seen_rows(self, row: int) -> np.ndarray:
        indptr, items = self._seen
        return items[indptr[row]:indptr[row + 1]]

    def recommend(self, user: str | None = None, history: list[str] | None = None, *, k: int = 10,
                  exclude_seen: bool = True) -> Recommendation:
        """The top ``k`` target items for a known ``user`` id or a new user's source-domain ``history``.

        History items that are not source-domain items are reported in ``unknown_items``;
        when none is left the user gets the fallback. With the bundle's sequential model the
        history is ordered, oldest first, and read by it (``_sequential``).
        """
        if (user is None) == (history is None):
            raise RequestError("user", "give either a known 'user' id or a 'history' of source-domain items, not both")
        unknown: list[str] = []
        row, rows = None, None
        if user is not None:
            row = self.user_row(user)
        else:
            if len(history) == 0:
                raise RequestError("history", "is empty; list at least one source-domain item, or give a known user id")
            if self.sequential is not None:
                answer = self._sequential(history, k, exclude_seen)
                if answer is not None:
                    return answer
            rows, unknown = self.source_rows(history)
        if row is not None:
            q, offset, weights, path = self._known_query(row)
        else:
            parts, all_weights, path = self._plan(None, rows)
            q, offset = self._query(parts, all_weights)
            q, weights = q / self._scale, {n: float(w) for n, w in all_weights.items() if w > 0}
        exclude = self.seen_rows(row) if (row is not None and exclude_seen) else np.empty(0, np.int64)
        values, found = self.index.search(q[None], k, [exclude])
        keep = found[0] >= 0
        picked = found[0][keep]
        return Recommendation(items=[self._item_ids[r] for r in picked], titles=[self._titles[r] for r in picked],
                              scores=(values[0][keep] - offset).astype(float).tolist(), scorer=path,
                              weights=dict(weights), user=user, unknown_items=unknown,
                              history_used=0 if rows is None else len(rows))

    def _sequential(self, history: list[str], k: int, exclude_seen: bool) -> Recommendation | None:
        """The sequential model's answer for an ordered history, or None when it knows none of its items."""
        rows, unknown = self.sequential.read(history)
        if len(rows) == 0:
            return None  # nothing to read: the fallback, as for a history of unknown ids
        seen = [self._target_rows.get(item, -1) for item in history] if exclude_seen else []
        exclude = np.array([r for r in seen if r >= 0], dtype=np.int64)  # every target item brought, read or not
        values, found = self.sequential.search(rows, k, exclude)
        return Recommendation(items=[self._item_ids[r] for r in found], titles=[self._titles[r] for r in found],
                              scores=values.astype(float).tolist(), scorer="sequential", weights={"sequential": 1.0},
                              unknown_items=unknown, history_used=len(rows))

    @torch.no_grad()
    def score_all(self, user_rows: Any) -> torch.Tensor:
        """(B, n_items) fused scores of every item for known users (``cdtl.evaluate.evaluate_ranking``'s input)."""
        rows = np.asarray(user_rows, dtype=np.int64).ravel()
        queries, offsets = zip(*(self._query(*self._plan(int(r), None)[:2]) for r in rows))
        matrix = self.item_matrix()
        return torch.from_numpy(np.stack(queries) @ matrix.T - np.asarray(offsets, np.float32)[:, None])

    def item_matrix(self) -> np.ndarray:
        """(n_items, dim) every item's concatenated scorer rows, added items included."""
        added = [a["row"] for a in self._added]
        return np.concatenate([self._matrix, np.stack(added)]) if added else self._matrix

    def index_matrix(self) -> np.ndarray:
        """(n_items, dim) the rows the index searches: ``item_matrix`` with each block rescaled (see ``__init__``)."""
        return self.item_matrix() * self._scale

    def user_queries(self, user_rows: Any) -> np.ndarray:
        """(B, dim) known users' queries as the index sees them (for measuring an index against exact search)."""
        rows = np.asarray(user_rows).ravel()
        return np.stack([self._query(*self._plan(int(r), None)[:2])[0] for r in rows]) / self._scale

    # ------------------------------------------------------------------ items

    def _encode(self, text: str, field: str) -> np.ndarray:
        if self.encoder is None:
            raise RequestError(field, "free text needs the text encoder, which this recommender was built without", 503)
        if not isinstance(text, str) or not text.strip():
            raise RequestError(field, "must be a non-empty text")
        return self.encoder.encode([text]).numpy().astype(np.float32)

    def similar_items(self, item: str | None = None, text: str | None = None, *, k: int = 10) -> list[tuple[str, str, float]]:
        """(id, title, cosine) of the ``k`` target items whose text is closest to ``item``'s or to ``text``."""
        if (item is None) == (text is None):
            raise RequestError("item", "give either an 'item' id or a 'text', not both")
        exclude = np.empty(0, np.int64)
        if item is not None:
            item = str(item)
            if item in self._target_rows:
                row = self._target_rows[item]
                vector = self._target_vector(row)
                exclude = np.array([row])
            elif item in self._source_rows:
                vector = self.source_text[self._source_rows[item]][None]
            else:
                raise RequestError("item", f"unknown item id {item[:80]!r}", 404)
        else:
            vector = self._encode(text, "text")
        values, rows = self.text_index.search(vector, k, [exclude])
        return [(self._item_ids[r], self._titles[r], float(v)) for v, r in zip(values[0], rows[0]) if r >= 0]

    def _target_vector(self, row: int) -> np.ndarray:
        base = self.bundle.tensors["text"]["target"]
        if row < len(base):
            return base[row : row + 1].numpy()
        return self._added[row - len(base)]["vector"][None]

    def item_vector(self, text: str) -> np.ndarray:
        """The encoder's (dim,) vector of an item text, as ``add_item(..., vector=...)`` takes it."""
        return self._encode(text, "text")[0]

    def add_item(self, item: str, text: str, title: str | None = None, *, vector: np.ndarray | None = None) -> int:
        """Add a new target item from its text; returns its row. It is recommendable from the next request on.

        ``title`` defaults to the text on one line (``cdtl.serve.schemas.title_from_text``);
        ``vector``: the text's vector, when the same encoder made it already.
        """
        from cdtl.serve.schemas import title_from_text

        item = str(item)
        raw = self._encode(text, "text") if vector is None else np.asarray(vector, np.float32).reshape(1, -1)
        with self._write:
            if item in self._target_rows or item in self._source_rows:
                raise RequestError("item", f"{item[:80]!r} already exists; new items need new ids", 409)
            mf_mean = self.stats.current["mf"][0]  # MF has never seen the item: the catalogue's average row, neutral
            bridge_row = self.bridge_input.items(raw)[0]
            row_vector = np.concatenate([mf_mean, bridge_row, [0.0]]).astype(np.float32)
            title = title or title_from_text(text) or item
            self._added.append({"item": item, "text": text, "title": title, "vector": raw[0], "row": row_vector})
            self._item_ids.append(item)
            self._titles.append(title)
            row = len(self._item_ids) - 1
            self.stats.add(row_vector[None])
            self.index.add((row_vector * self._scale)[None])
            self.text_index.add(raw)
            if self.sequential is not None:
                self.sequential.add(item, raw[0])
            self._target_rows[item] = row  # last: from here on the item is found by id too
        return row


__all__ = ["PATHS", "Recommendation", "Recommender", "RequestError"]
