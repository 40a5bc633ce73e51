"""Trained models to a bundle: MF, the language-model bridge and the fusion, checked against themselves before they are written.

``pack_bundle`` takes the objects an experiment trained (``cdtl.models.mf.MF``,
``cdtl.models.transfer.LMBridge``, ``cdtl.models.fusion.SoftmaxFusion``) with the encoded
split they were trained on, and writes ``cdtl.serve.bundle``'s folder. Two things a
service needs are not stored in the models themselves, so they are rebuilt here and
checked against what the models hold:

- the bridge's text input: the bridge keeps its catalogue's text vectors whitened (if it
  was built so) and centred, but a new item or a new user arrives as a raw encoder vector.
  The transform ``raw @ matrix + offset`` is refitted and must reproduce the bridge's own
  buffers, or packing stops;
- the known users' bridge input, the mean raw vector of their source history, must
  reproduce the bridge's user buffer the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.serve.bundle import BundleError, write_bundle

SCORERS = ("mf", "lm_bridge", "popularity")  # the scorers a bundle serves, in their fallback order
PROBE_TEXTS = 4  # catalogue texts whose vectors the service re-encodes to check its encoder


@dataclass
class Trained:
    """What an experiment trained, with the data it was trained on: the input of ``pack_bundle``.

    ``text`` holds the language model's vector of every row of ``cd.split.data.items``;
    ``encoder`` is the ``TextEncoder`` that made them (its identity goes into the bundle);
    ``source_len`` / ``target_len`` (n_users,) are the training interactions each user has
    in each domain (the fusion gate's inputs); ``seen`` (n_users, n_target_items) are the
    target items each known user has interacted with (left out of their recommendations);
    ``popularity`` (n_target_items,) the training counts. ``sequential``: an optional trained
    next-item model over the source items then the target items (``cdtl.serve.sequential``),
    built with the constructor arguments ``sequential_args``.
    """

    cd: Any  # cdtl.data.crossdomain.CrossDomainData
    text: torch.Tensor
    encoder: Any  # cdtl.encoders.TextEncoder
    mf: Any  # cdtl.models.mf.MF over the target items
    bridge: Any  # cdtl.models.transfer.LMBridge
    bridge_settings: dict[str, Any]  # the transfer config's ``lm`` section the bridge was built from
    popularity: torch.Tensor
    source_len: np.ndarray
    target_len: np.ndarray
    seen: Any  # scipy CSR
    fusion: Any = None  # cdtl.models.fusion.SoftmaxFusion over SCORERS, or None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    sequential: Any = None  # cdtl.models.sequential.TextSASRec or SASRec, or None
    sequential_args: dict[str, Any] | None = None


def _csr(indptr: Any, indices: Any, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}_indptr": torch.as_tensor(np.asarray(indptr, dtype=np.int64)),
            f"{prefix}_items": torch.as_tensor(np.asarray(indices, dtype=np.int64))}


def bridge_input_transform(bridge: Any, target_text: torch.Tensor, whiten: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(matrix, offset): the bridge reads ``raw @ matrix + offset``; checked against the bridge's item buffer."""
    from cdtl.encoders.whitening import PCAWhitening

    x = target_text.double()
    if whiten:
        fitted = PCAWhitening().fit(target_text.float())
        matrix = fitted.matrix.double()
        offset = -(fitted.mean.double() @ matrix)
    else:
        matrix = torch.eye(x.shape[1], dtype=torch.float64)
        offset = torch.zeros(x.shape[1], dtype=torch.float64)
    offset = offset - (x @ matrix + offset).mean(0)  # the bridge centres its catalogue
    rebuilt = (x @ matrix + offset).float()
    held = bridge.item_text.float()
    error = float((rebuilt - held).abs().max()) / max(1e-12, float(held.abs().max()))
    if rebuilt.shape != held.shape or error > 1e-3:
        raise BundleError(f"cannot rebuild the bridge's text input from the raw vectors (relative error {error:.2g}); "
                          f"was the bridge built with whiten={whiten} on these item vectors?")
    return matrix.float(), offset.float()


def _bridge_tensors(t: Trained, source_text: torch.Tensor, target_text: torch.Tensor,
                    histories: tuple[np.ndarray, np.ndarray]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from cdtl.encoders.users import mean_pool

    bridge, lm = t.bridge, t.bridge_settings
    matrix, offset = bridge_input_transform(bridge, target_text, bool(lm.get("whiten", False)))
    has_source = np.diff(histories[0]) > 0
    users = mean_pool(source_text, histories, empty="zeros") @ matrix + offset
    held = bridge.user_text[torch.as_tensor(has_source)]
    error = float((users[torch.as_tensor(has_source)] - held).abs().max()) if has_source.any() else 0.0
    if error > 1e-3 * max(1e-12, float(held.abs().max()) if len(held) else 1.0):
        raise BundleError(f"the bridge's user input differs from the mean of the users' source texts (max {error:.2g}): "
                          "the bundle's histories are not the ones the bridge was trained with")
    learned = {k: v for k, v in bridge.state_dict().items()
               if k.split(".")[0] in ("adaptor", "text_bias", "item_bias", "user_tower")}
    tensors = {**learned, "input.matrix": matrix, "input.offset": offset}
    from cdtl.encoders.whitening import MoEAdaptor

    moe = isinstance(bridge.adaptor, MoEAdaptor)
    settings = {"adaptor": "moe" if moe else "linear", "n_experts": bridge.adaptor.n_experts if moe else 8,
                "dim": int(lm["dim"]), "hidden": int(lm["hidden"]), "dropout": float(lm["dropout"]),
                "item_bias": bridge.item_bias is not None, "whiten": bool(lm.get("whiten", False)),
                "loss": bridge.loss_name, "text_dim": int(matrix.shape[0])}
    return tensors, settings


def _fusion_tensors(fusion: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    names = list(fusion.names)
    if names != [n for n in SCORERS if n in names] or "popularity" not in names:
        raise BundleError(f"the fusion fuses {names}; a bundle serves scorers from {list(SCORERS)} in that order, "
                          "popularity included (it serves every user)")
    if fusion.pooling != "geometric":
        raise BundleError(f"the fusion pools by {fusion.pooling!r}; the service ranks by one inner product, which "
                          "the geometric pooling gives: export a fusion with pooling: geometric")
    keep = ("log_temperature", "logits", "feature_mean", "feature_std")
    tensors = {k: v for k, v in fusion.state_dict().items() if k in keep or k.startswith("gate.")}
    settings = {"mode": fusion.mode, "pooling": fusion.pooling, "standardize": bool(fusion.standardize),
                "scorers": names, "features": ["log1p_source_len", "log1p_target_len", *(f"can_serve:{n}" for n in names)]}
    if fusion.mode == "user":
        settings["hidden"] = int(fusion.gate[0].out_features)
    return tensors, settings


def pack_bundle(path: str | Path, trained: Trained, *, overwrite: bool = False) -> Path:
    """Write ``trained`` as a bundle folder at ``path`` (see the module docstring); returns the path."""
    t, cd = trained, trained.cd
    items = cd.split.data.items.reset_index(drop=True)
    source_rows, target_rows = cd.item_rows(cd.split.source), cd.item_rows(cd.split.target)
    text = t.text.float()
    if text.shape[0] != len(items):
        raise BundleError(f"text has {text.shape[0]} rows, the item table {len(items)}: one vector per item row")
    source_text, target_text = text[torch.as_tensor(source_rows)], text[torch.as_tensor(target_rows)]
    if t.mf.n_users != cd.n_users or t.mf.n_items != cd.n_target_items:
        raise BundleError(f"MF is {t.mf.n_users} users x {t.mf.n_items} items; the split has {cd.n_users} x {cd.n_target_items}")
    src = cd.source_train
    order = np.lexsort((src["timestamp"].to_numpy() if "timestamp" in src else np.arange(len(src)), src["u"].to_numpy()))
    src_indptr = np.concatenate([[0], np.cumsum(np.bincount(src["u"].to_numpy(), minlength=cd.n_users))])
    histories = (src_indptr, src["i"].to_numpy()[order])
    bridge_tensors, bridge_settings = _bridge_tensors(t, source_text, target_text, histories)
    tensors = {
        "mf": {k: v for k, v in t.mf.state_dict().items()},
        "bridge": bridge_tensors,
        "text": {"source": source_text, "target": target_text},
        "histories": {**_csr(*histories, "source"), **_csr(t.seen.indptr, t.seen.indices, "seen")},
    }
    probe_rows = np.linspace(0, len(target_rows) - 1, PROBE_TEXTS).astype(int)
    probe_texts = [str(items.loc[target_rows[r], "text"]) for r in probe_rows]
    tensors["text"]["probe"] = t.encoder.encode(probe_texts).float()
    serving: dict[str, Any] = {
        "dataset": cd.split.data.name, "source": cd.split.source, "target": cd.split.target,
        "scorers": list(SCORERS), "has_ratings": bool(cd.has_ratings),
        "rating_scale": _rating_scale(cd),
        "mf": {"n_users": t.mf.n_users, "n_items": t.mf.n_items, "dim": int(t.mf.user_emb.embedding_dim),
               "loss": t.mf.loss_name},
        "bridge": bridge_settings,
        "encoder": {**t.encoder.identity, "probe_texts": probe_texts},
        "fusion": None,
    }
    if t.fusion is not None:
        tensors["fusion"], serving["fusion"] = _fusion_tensors(t.fusion)
    if t.sequential is not None:
        from cdtl.serve.sequential import sequential_part

        tensors["sequential"], serving["sequential"] = sequential_part(t.sequential, t.sequential_args or {},
                                                                       torch.cat([source_text, target_text]))
    popularity = t.popularity.detach().cpu().numpy()
    if not np.array_equal(popularity, np.round(popularity)) or len(popularity) != cd.n_target_items:
        raise BundleError("popularity must be the target items' whole training counts (cdtl.evaluate.popularity_scores)")
    rows = np.concatenate([source_rows, target_rows])  # source items, then target items, each in model index order
    counts = np.concatenate([np.bincount(src["i"].to_numpy(), minlength=cd.n_source_items), popularity]).astype(np.int64)
    picked = items.loc[rows]
    item_table = pd.DataFrame({"item": picked["item"].astype(str).to_numpy(), "domain": picked["domain"].astype(str).to_numpy(),
                               "title": (picked["title"] if "title" in picked else picked["item"]).astype(str).to_numpy(),
                               "text": picked["text"].astype(str).to_numpy(), "interactions": counts})
    user_table = pd.DataFrame({"user": cd.users.ids.astype(str), "source_len": np.asarray(t.source_len, dtype=np.int64),
                               "target_len": np.asarray(t.target_len, dtype=np.int64)})
    summary = {"users": cd.n_users, "source_items": cd.n_source_items, "target_items": cd.n_target_items,
               "warm_users": int((user_table["target_len"] > 0).sum()), **(t.summary or {})}
    if t.sequential is not None:
        summary["sequential"] = serving["sequential"]["model"]
    return write_bundle(path, config=t.config or {}, serving=serving, users=user_table, items=item_table,
                        tensors=tensors, summary=summary, overwrite=overwrite)


def _rating_scale(cd: Any) -> list[float] | None:
    if not cd.has_ratings:
        return None
    ratings = cd.split.data.interactions["rating"]
    return [float(ratings.min()), float(ratings.max())]


__all__ = ["PROBE_TEXTS", "SCORERS", "Trained", "bridge_input_transform", "pack_bundle"]
