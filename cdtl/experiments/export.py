"""Train the served models through the fusion experiment and write them as a bundle: ``cdtl export`` and ``export:`` sections.

It lives in the experiments layer because it trains; the service (``cdtl.serve``) only loads what it writes.

A bundle serves what chapter 07's fusion experiment trains, on the same split:

- target-domain matrix factorisation for warm users;
- the language-model bridge of chapter 04 for cold users. Of the course's bridges it is
  the one that serves a user the training never saw from their source history alone:
  EMCDR, PTUPCDR and CMF start from the user's row in a source-domain model, which a new
  user does not have;
- popularity, the fallback;
- the fusion that mixes them per user (``fusion: user``; or ``global``, ``uniform``).
  ``cdtl.serve.recommender.Recommender(bundle, fusion=False)`` serves the same bundle
  without it, each user by the first scorer that can.

``export(config, out)`` takes a fusion config (``kind: fusion``) with an optional
``export:`` section (``bundle``: where to write it, ``fusion``: which fusion to serve,
``overwrite``, ``sequential``: an optional next-item model for users who bring an ordered
history, ``cdtl.experiments.export_sequential``) and returns the bundle's path with everything the experiment trained and
measured, so a notebook can go on from there (an A/B replay on the same test users).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cdtl import folderlock
from cdtl.configfile import clip, preview
from cdtl.data.ids import interaction_matrix
from cdtl.encoders.text_encoder import TextEncoder
from cdtl.env import cache_dir
from cdtl.experiments import export_sequential, fusion, transfer
from cdtl.experiments.common import ConfigError
from cdtl.experiments.sections import TextSection
from cdtl.serve.pack import SCORERS, Trained, pack_bundle

EXPORT_DEFAULTS: dict[str, Any] = {"bundle": None, "fusion": "user", "overwrite": False, "sequential": None}
FUSIONS = ("user", "global", "uniform")


@dataclass
class Exported:
    """A written bundle and the experiment behind it: ``fitted`` is ``fit_all``'s output (split, scorers, fusion,
    test metrics); ``trained`` what was packed; ``sequential`` the bundled next-item model's fit, if any
    (``export_sequential.SequentialFit``: its per-user test metrics line up with ``test_metrics``)."""

    path: Path
    fitted: Any
    fusion: str
    trained: Any = None
    sequential: Any = None

    @property
    def test_metrics(self) -> dict[str, np.ndarray]:
        """Per-user test metrics (with ``users``) of the system the bundle serves, as the experiment measured them."""
        return self.fitted.per_user[self.fusion]


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the experiment config, the export settings with defaults) of a config with an optional ``export:`` section."""
    config = copy.deepcopy(config)
    section = config.pop("export", None) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"export must be a mapping ({', '.join(EXPORT_DEFAULTS)}), got {preview(section)}")
    unknown = sorted(set(section) - set(EXPORT_DEFAULTS), key=str)
    if unknown:
        key = unknown[0] if isinstance(unknown[0], str) else preview(unknown[0])
        raise ConfigError(f"unknown key(s) export.{clip(key, 80)}; valid keys: {', '.join(EXPORT_DEFAULTS)}")
    settings = {**EXPORT_DEFAULTS, **section}
    if settings["fusion"] not in FUSIONS:
        raise ConfigError(f"export.fusion must be one of {', '.join(FUSIONS)}, got {preview(settings['fusion'])}")
    if settings["bundle"] is not None and not isinstance(settings["bundle"], str):
        raise ConfigError(f"export.bundle must be a folder name, got {preview(settings['bundle'])}")
    if not isinstance(settings["overwrite"], bool):  # "no" must not replace a bundle
        raise ConfigError(f"export.overwrite must be true or false, got {preview(settings['overwrite'])}")
    settings["sequential"] = export_sequential.resolve(settings["sequential"])
    if config.get("kind") != "fusion":
        raise ConfigError(f"a bundle is exported from a fusion experiment (kind: fusion, e.g. configs/fusion_ml1m.yaml); "
                          f"this config's kind is {preview(config.get('kind', 'single'))}")
    scorers = config.get("scorers", list(SCORERS))
    if sorted(scorers) != sorted(SCORERS):
        raise ConfigError(f"a bundle serves the scorers {list(SCORERS)}; the config lists {preview(scorers)}")
    bridge = (config.get("lm_bridge") or {}).get("model", "lm_bridge")
    if bridge != "lm_bridge":
        raise ConfigError(f"lm_bridge.model {preview(bridge)} cannot serve a new user: it starts from the user's row in a "
                          "source-domain model; the service's cold-user bridge is lm_bridge, which needs only their history")
    config["scorers"] = list(SCORERS)
    return config, settings


def _encoder(cfg: dict[str, Any]) -> Any:
    """The text encoder the bridge's item vectors came from (cached on disk), built from the bridge's config."""
    bridge = transfer.resolve(cfg["lm_bridge"]["config"])
    text = TextSection.of(bridge["text"])
    return TextEncoder(pooling="mean", cache_dir=cache_dir() / "embeddings", **text.encoder_arguments()), bridge["lm_bridge"]


def export(config: dict[str, Any], out: str | Path | None = None, *, overwrite: bool | None = None,
           data: Any = None) -> Exported:
    """Train the fusion experiment ``config`` describes and write its models as a bundle at ``out``.

    ``data`` (a two-domain ``RecData``, e.g. from ``cdtl.data.load_tables``) replaces the config's dataset.

    ``out`` (or ``export.bundle``) is the bundle folder; an existing one is replaced only
    with ``overwrite`` (or ``export.overwrite``). From before any data is loaded until it
    returns, ``out.lock`` next to the bundle holds it: a second export to the same folder is
    refused, naming the first.
    """
    experiment, settings = split_config(config)
    out = out or settings["bundle"]
    if out is None:
        raise ConfigError("where should the bundle go? pass --out BUNDLE (or set export.bundle)")
    overwrite = settings["overwrite"] if overwrite is None else overwrite
    folderlock.claim(out, beside=True)  # out.lock, next to the bundle a rename replaces: a second export is refused
    try:
        return _export(experiment, settings, Path(out), overwrite, data)
    finally:
        folderlock.release(out, beside=True)


def _export(experiment: dict[str, Any], settings: dict[str, Any], out: Path, overwrite: bool, data: Any) -> Exported:
    """``export`` once ``out`` is held: train, then pack the bundle."""
    if Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"{out} is a file; a bundle is a folder: choose another --out")
    if Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another folder or ask to overwrite it (--overwrite)")
    mode = settings["fusion"]
    experiment.setdefault("fusion", {})["modes"] = [mode]
    cfg = fusion.resolve(experiment)
    fitted = fusion.fit_all(cfg, data)
    fd, cd = fitted.fd, fitted.fd.cd
    encoder, lm = _encoder(cfg)
    text = encoder.encode(cd.split.data.items["text"].tolist(), ids=cd.split.data.items["item"].tolist())
    cold_val = interaction_matrix(cd.val["u"].to_numpy(), cd.val["i"].to_numpy(), cd.n_users, cd.n_target_items)
    seen = ((fd.test_exclude + cold_val) > 0).tocsr()  # everything a user is known to have seen, but the test part
    popularity = fitted.models["popularity"].counts
    test = fitted.per_user[mode]
    summary = {"experiment": cfg["name"], "fusion": mode, "seed": cfg["seed"],
               "test_ndcg@10": float(np.mean(test["ndcg@10"])), "test_users": int(len(test["users"]))}
    trained = Trained(cd=cd, text=text, encoder=encoder, mf=fitted.models["mf"],
                      bridge=fitted.models["lm_bridge"], bridge_settings=lm,
                      popularity=popularity, source_len=fd.source_len, target_len=fd.target_len, seen=seen,
                      fusion=fitted.fusions[mode], config=cfg, summary=summary)
    exported = Exported(path=out, fitted=fitted, fusion=mode, trained=trained)
    if settings["sequential"] is not None:
        return _pack_sequential(exported, settings["sequential"], out, overwrite)
    exported.path = pack_bundle(out, trained, overwrite=overwrite)
    return exported


def _pack_sequential(exported: Exported, settings: dict[str, Any], out: Path, overwrite: bool) -> Exported:
    """Train the next-item model ``settings`` describe on ``exported``'s split, then pack everything at ``out``."""
    t, cd = exported.trained, exported.trained.cd
    text = t.text.float()
    catalogue = torch.cat([text[torch.as_tensor(cd.item_rows(cd.split.source))],
                           text[torch.as_tensor(cd.item_rows(cd.split.target))]])
    fitted = export_sequential.train_sequential(exported.fitted.cfg, exported.fitted.fd, catalogue, settings)
    ndcg = fitted.per_user.get("ndcg@10")
    summary = {**(t.summary or {}), "sequential_test_ndcg@10": None if ndcg is None else float(np.mean(ndcg))}
    trained = dataclasses.replace(t, sequential=fitted.model, sequential_args=fitted.args, summary=summary)
    path = pack_bundle(out, trained, overwrite=overwrite)
    return dataclasses.replace(exported, path=path, trained=trained, sequential=fitted)


def add_sequential(exported: Exported, out: str | Path, section: dict[str, Any] | None = None, *,
                   overwrite: bool = False) -> Exported:
    """``exported``'s bundle again at ``out``, with a next-item model trained on the same split (nothing else retrained).

    ``section`` is an ``export.sequential`` mapping (default ``{}``: the text SASRec with its defaults).
    """
    settings = export_sequential.resolve({} if section is None else section)
    if exported.trained is None:
        raise ValueError("this export kept no record of what it packed: export it again with this cdtl")
    out = Path(out)
    folderlock.claim(out, beside=True)
    try:
        if out.exists() and not overwrite:
            raise FileExistsError(f"{out} already exists; choose another folder or ask to overwrite it (--overwrite)")
        return _pack_sequential(exported, settings, out, overwrite)
    finally:
        folderlock.release(out, beside=True)


__all__ = ["EXPORT_DEFAULTS", "FUSIONS", "Exported", "add_sequential", "export", "split_config"]
