"""The fusion experiment (``kind: fusion``): base scorers trained on training data, fused on validation data, scored once on test.

Protocol, on a cold-start split (``cdtl.data.cold_start_split``):

- **cold users**: the split's validation cold users fit the fusion, its test cold users
  are scored; their whole target history is held out, none of it is in training;
- **warm users** (every user with target training history): each one's target training
  interactions are cut per user in time order, the last ``warm_test`` fraction for test,
  the ``warm_val`` fraction before it for validation, the rest for training (users with
  fewer than 3 keep everything in training and are not scored);
- the **base scorers** (``SCORERS``) train on the training part only; the **fusion**
  (``cdtl.models.fusion.SoftmaxFusion``) learns its weights and temperatures on the
  validation part only (warm users' validation items and the validation cold users);
  the test part (warm users' test items and the test cold users) is scored once.

Every system ranks all target items except those the user has seen (training, and for
warm users at test time their validation items too). A single scorer that cannot serve a
user (MF for a cold user) falls back to popularity there, the course's declared
fallback, so "MF alone" is MF for warm users and popularity for cold ones.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import check_cutoffs, preview
from cdtl.evaluate import compare_to_reference, format_interval, report, slice_users
from cdtl.experiments import transfer
from cdtl.experiments.common import (
    ConfigError,
    Result,
    check_ranking_metrics,
    check_train,
    merge_config,
    prepare_output,
    rank_users,
    summary_of,
    versions,
    write_results,
)
from cdtl.experiments.fusion_data import FusionData, prepare, time_split_per_user
from cdtl.experiments.fusion_training import (
    alone,
    build_scorers,
    calibrate,
    fit_fusion,
    initial_temperatures,
    make_fusion,
    text_user_vectors,
    train_target_mf,
)
from cdtl.experiments.sections import TextSection, train_section
from cdtl.models.fusion import MODES, POOLINGS, Scorer, SoftmaxFusion
from cdtl.train import set_seed

SCORERS = ("mf", "text", "popularity", "lm_bridge")
LABELS = {"mf": "MF (BPR)", "text": "text only", "popularity": "popularity", "lm_bridge": "LM bridge",
          "uniform": "uniform average", "global": "global fusion", "user": "per-user fusion"}
SLICES = ("all", "warm", "cold")

DEFAULTS: dict[str, Any] = {
    "kind": "fusion",
    "name": "fusion",
    "seed": 0,
    "dataset": {"name": "movielens-100k", "domains": "genre"},
    "protocol": {"source": "action", "target": "comedy", "cold_ratio": 0.2, "warm_val": 0.1, "warm_test": 0.1},
    "scorers": ["mf", "text", "popularity"],
    "mf": {"dim": 64, "reg": 0.0, "n_negatives": 1, "batch_size": 1024, "train": train_section()},
    "text": TextSection.defaults(pooling="mean", whiten=True, whiten_dim=32),
    # the bridge: a model name of the transfer comparison (cdtl.experiments.transfer.MODELS) and its config
    "lm_bridge": {"model": "lm_bridge", "config": {}},
    "fusion": {"modes": list(MODES), "pooling": "geometric", "calibrate": False, "hidden": 16,
               "temperature": "auto", "standardize": True, "batch_size": 128, "train": train_section(optimizer="adam", lr=0.05,
                                                                                    epochs=40)},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "bootstrap": 1000, "batch_size": 2048},
}


# --------------------------------------------------------------------------- configuration


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded."""
    if not isinstance(config, dict):
        raise ConfigError(f"a fusion config must be a mapping, got {type(config).__name__}")
    config = copy.deepcopy(config)
    bridge = config.get("lm_bridge")
    bridge_config = bridge.pop("config", {}) if isinstance(bridge, dict) else {}  # a transfer config, checked below
    cfg = merge_config(DEFAULTS, config, "")
    cfg["lm_bridge"]["config"] = resolve_bridge(bridge_config)
    if cfg["kind"] != "fusion":
        raise ConfigError(f"kind must be 'fusion' for cdtl.experiments.fusion, got {preview(cfg['kind'])}")
    scorers = cfg["scorers"]
    if not isinstance(scorers, list) or not scorers:
        raise ConfigError(f"scorers must be a non-empty list, valid names: {', '.join(SCORERS)}; got {preview(scorers)}")
    unknown = [s for s in scorers if s not in SCORERS]
    if unknown:
        raise ConfigError(f"unknown scorer(s) {preview(unknown)}; valid choices: {', '.join(SCORERS)}")
    if len(set(scorers)) != len(scorers):
        raise ConfigError(f"scorers lists a name twice: {preview(scorers)}")
    if "popularity" not in scorers:
        raise ConfigError("scorers must include 'popularity': it serves every user and is the fallback of the others")
    f = cfg["fusion"]
    if f["pooling"] not in POOLINGS:
        raise ConfigError(f"unknown fusion.pooling {preview(f['pooling'])}; valid choices: {', '.join(POOLINGS)}")
    if not (f["temperature"] == "auto" or (isinstance(f["temperature"], (int, float)) and f["temperature"] > 0)):
        raise ConfigError(f"fusion.temperature must be 'auto' or a positive number, got {preview(f['temperature'])}")
    modes = cfg["fusion"]["modes"]
    if not isinstance(modes, list) or not modes or any(m not in MODES for m in modes):
        raise ConfigError(f"fusion.modes must be a non-empty list of {', '.join(MODES)}; got {preview(modes)}")
    proto = cfg["protocol"]
    for key in ("warm_val", "warm_test"):
        if not 0.0 < float(proto[key]) < 0.5:
            raise ConfigError(f"protocol.{key} must be a fraction in (0, 0.5), got {preview(proto[key])}")
    if not 0.0 < float(proto["cold_ratio"]) < 1.0:
        raise ConfigError(f"protocol.cold_ratio must be in (0, 1), got {preview(proto['cold_ratio'])}")
    check_ranking_metrics(cfg["evaluate"]["metrics"])
    if "ndcg@10" not in cfg["evaluate"]["metrics"]:
        raise ConfigError("evaluate.metrics must include ndcg@10 (the fusion's headline metric)")
    if cfg["text"]["pooling"] != "mean":
        raise ConfigError("text.pooling must be 'mean' (a user is the mean of their history), got "
                          f"{preview(cfg['text']['pooling'])}")
    for section in ("mf", "fusion"):
        check_train(cfg[section]["train"], f"{section}.train")
    return cfg


def resolve_bridge(config: Any) -> dict[str, Any]:
    """The bridge's transfer config with its defaults filled in (what the run uses and metrics.json records), checked
    before any data is loaded; a mistake is named under ``lm_bridge.config``."""
    if not isinstance(config, dict):
        raise ConfigError(f"lm_bridge.config must be a mapping (a transfer config), got {preview(config)}")
    try:
        return transfer.resolve(config)
    except ConfigError as err:
        raise ConfigError(f"lm_bridge.config: {err}") from err


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: at most ``profile.epochs`` for the base scorers, its bootstrap and text sizes.

    The fusion itself (a few hundred parameters) keeps its epochs: they cost seconds.
    """
    config = copy.deepcopy(config)
    mf_train = config.setdefault("mf", {}).setdefault("train", {})
    mf_train["epochs"] = min(int(mf_train.get("epochs", profile.epochs)), profile.epochs)
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    TextSection.size(config, profile)
    if "lm_bridge" in config.get("scorers", DEFAULTS["scorers"]):  # the bridge's own transfer config, sized alike
        bridge = config.setdefault("lm_bridge", {})
        bridge["config"] = transfer.size(bridge.get("config", {}), profile)
    return config


# --------------------------------------------------------------------------- evaluation


def evaluate_test(cfg: dict[str, Any], fd: FusionData, score_all: Any) -> dict[str, np.ndarray]:
    """Per-user test metrics (with ``users``) of warm and cold test users together."""
    return rank_users(score_all, fd.test, cfg["evaluate"]["metrics"], fd.test_exclude, cfg["evaluate"]["batch_size"])


def slice_report(cfg: dict[str, Any], fd: FusionData, per_user: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """{"all" | "warm" | "cold": {metric: {mean, low, high, n}}} with the config's bootstrap."""
    n, seed = cfg["evaluate"]["bootstrap"], cfg["seed"]
    metrics = {k: v for k, v in per_user.items() if k != "users"}
    return {"all": report(metrics, n, seed),
            "warm": report(slice_users(metrics, per_user["users"], fd.warm_test_users), n, seed),
            "cold": report(slice_users(metrics, per_user["users"], fd.cold_test_users), n, seed)}


@torch.no_grad()
def mean_weights(fusion: SoftmaxFusion, users: np.ndarray) -> dict[str, float]:
    """{scorer: mean weight over ``users``}."""
    w = fusion.weights(torch.as_tensor(users, dtype=torch.long)).mean(0)
    return {name: float(v) for name, v in zip(fusion.names, w)}


@torch.no_grad()
def weight_checks(fusion: SoftmaxFusion, n_users: int) -> dict[str, float]:
    """Over every user: the largest |sum of weights - 1| and the largest weight of a scorer that cannot serve."""
    w = fusion.weights(torch.arange(n_users))
    return {"weights_sum_max_abs_error": float((w.sum(1) - 1).abs().max()),
            "masked_weight_max": float(w[~fusion.can_serve].max()) if (~fusion.can_serve).any() else 0.0}


# --------------------------------------------------------------------------- run


@dataclass
class Fitted:
    """Everything one fusion experiment trained and measured, before it is summarised (``summarize``)."""

    cfg: dict[str, Any]
    fd: FusionData
    scorers: dict[str, Scorer]
    notes: dict[str, Any]
    fusions: dict[str, SoftmaxFusion]  # one per mode
    histories: dict[str, list[dict[str, float]]]
    per_user: dict[str, dict[str, np.ndarray]]  # system -> per-user test metrics (with "users")
    models: dict[str, Any]  # scorer name -> the trained model behind it (MF, LMBridge, TextOnly, Popularity)


def fit_all(cfg: dict[str, Any], data: Any = None) -> Fitted:
    """Train the base scorers, fit each fusion mode on validation data, score every system once on test.

    ``cfg`` is resolved (``resolve``); ``data`` (a two-domain ``RecData``) replaces its dataset.
    """
    set_seed(cfg["seed"])
    fd = prepare(cfg, data)
    check_cutoffs(cfg["evaluate"]["metrics"], fd.cd.n_target_items)  # before any training
    scorers, notes, models = build_scorers(cfg, fd)
    per_user = {name: evaluate_test(cfg, fd, alone(s, scorers["popularity"])) for name, s in scorers.items()}
    calibrated = calibrate(cfg, fd, scorers) if cfg["fusion"]["calibrate"] else None
    fusions, histories = {}, {}
    for mode in cfg["fusion"]["modes"]:
        fusions[mode], result = fit_fusion(cfg, fd, scorers, mode, calibrated)
        histories[mode] = result.history
        per_user[mode] = evaluate_test(cfg, fd, fusions[mode].ranker(fd.test_exclude))
    return Fitted(cfg, fd, scorers, notes, fusions, histories, per_user, models)


def summarize(fitted: Fitted, started: float | None = None) -> dict[str, Any]:
    """The JSON-ready results of a ``fit_all``: metrics with intervals per system and user slice, weights, checks."""
    cfg, fd = fitted.cfg, fitted.fd
    return {
        "name": cfg["name"],
        "config": cfg,
        "seed": cfg["seed"],
        "counts": fd.summary(),
        "systems": {name: slice_report(cfg, fd, values) for name, values in fitted.per_user.items()},
        "weights": {mode: {"warm": mean_weights(f, fd.warm_test_users), "cold": mean_weights(f, fd.cold_test_users)}
                    for mode, f in fitted.fusions.items()},
        "temperatures": {mode: dict(zip(f.names, f.temperatures.tolist())) for mode, f in fitted.fusions.items()},
        "checks": {mode: weight_checks(f, fd.cd.n_users) for mode, f in fitted.fusions.items()},
        "scorer_notes": fitted.notes,
        "fusion_history": fitted.histories,
        "versions": versions(),
        "wall_seconds": None if started is None else time.perf_counter() - started,
    }


def per_user_table(fitted: Fitted) -> pd.DataFrame:
    """One row per (system, test user): the user's slice and test metrics."""
    fd, frames = fitted.fd, []
    for system, values in fitted.per_user.items():
        users = values["users"]
        frame = pd.DataFrame({"system": system, "user": fd.cd.users.decode(users),
                              "slice": np.where(np.isin(users, fd.cold_test_users), "cold", "warm")})
        frames.append(frame.assign(**{m: v for m, v in values.items() if m != "users"}))
    return pd.concat(frames, ignore_index=True)


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Run the experiment end to end (``fit_all``, ``summarize``); write ``out_dir/metrics.json`` when given.

    ``data`` (a two-domain ``RecData``) replaces the config's dataset. The result's ``models``
    are the base scorers and one fusion per mode. ``out_dir`` must not hold an earlier run unless
    ``overwrite``.
    """
    started = time.perf_counter()
    cfg = resolve(config)
    out = prepare_output(out_dir, overwrite)
    fitted = fit_all(cfg, data)
    summary, per_user = summarize(fitted, started), per_user_table(fitted)
    if out is not None:
        write_results(out, summary, per_user)
    return Result(summary, {**fitted.scorers, **fitted.fusions}, per_user, fitted.fd)


def table(results: dict[str, Any], metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per system, one column per slice: ``metric`` with its 95 % interval, as text."""
    results, rows = summary_of(results), {}
    for name, by_slice in results["systems"].items():
        rows[LABELS.get(name, name)] = {s: format_interval(m[metric]) for s, m in by_slice.items()}
    out = pd.DataFrame(rows).T[list(SLICES)]
    first = next(iter(results["systems"].values()))
    out.columns = [f"{s} (n={first[s][metric]['n']})" for s in SLICES]
    return out


def paired(fitted: Fitted, reference: str = "lm_bridge", systems: tuple[str, ...] = ("user", "global", "uniform"),
           metric: str = "ndcg@10") -> dict[str, pd.DataFrame]:
    """{slice: ``compare_to_reference`` table}: each system's paired difference from ``reference`` on the same test users.

    Holm's correction runs over the systems of each slice; the config's bootstrap and seed.
    """
    cfg, fd = fitted.cfg, fitted.fd
    names = [reference, *systems]
    missing = [s for s in names if s not in fitted.per_user]
    if missing:
        raise KeyError(f"no per-user results for {missing}; this run scored {list(fitted.per_user)}")
    users = fitted.per_user[reference]["users"]
    if any(not np.array_equal(fitted.per_user[s]["users"], users) for s in names):
        raise ValueError("the systems were scored on different test users; a paired comparison needs the same users")
    keep = {"all": users, "warm": fd.warm_test_users, "cold": fd.cold_test_users}
    out = {}
    for part in SLICES:
        values = {LABELS.get(s, s): slice_users({metric: fitted.per_user[s][metric]}, users, keep[part])[metric] for s in names}
        out[part] = compare_to_reference(values, LABELS.get(reference, reference), n_resamples=cfg["evaluate"]["bootstrap"],
                                         seed=cfg["seed"])
    return out


def format_table(results: dict[str, Any]) -> str:
    """Plain-text tables of NDCG@10 and Recall@10 (if measured) per system and user slice, with 95 % intervals."""
    results = summary_of(results)
    seconds = results.get("wall_seconds")
    lines = [f"{results['name']}  (seed {results['seed']}" + (f", {seconds:.1f} s)" if seconds is not None else ")")]
    for metric in ("ndcg@10", "recall@10"):
        if metric in results["config"]["evaluate"]["metrics"]:
            lines += ["", metric, table(results, metric).to_string()]
    for mode, w in results.get("weights", {}).items():
        lines.append(f"\n{LABELS.get(mode, mode)}: mean weights warm {_fmt(w['warm'])}, cold {_fmt(w['cold'])}; "
                     f"temperatures {_fmt(results['temperatures'][mode])}")
    return "\n".join(lines)


def _fmt(values: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:.3f}" for k, v in values.items()) + "}"


__all__ = [
    "DEFAULTS", "LABELS", "SCORERS", "Fitted", "FusionData", "Scorer", "fit_all", "paired", "per_user_table", "summarize",
    "alone", "build_scorers", "evaluate_test", "fit_fusion", "calibrate", "initial_temperatures", "format_table",
    "make_fusion", "prepare", "resolve", "run", "size", "slice_report", "table", "text_user_vectors",
    "time_split_per_user", "train_target_mf"
]
