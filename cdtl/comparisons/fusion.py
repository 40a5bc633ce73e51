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
import dataclasses
import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.data import cold_start_split, load
from cdtl.data.crossdomain import CrossDomainData, encode_split
from cdtl.data.ids import interaction_matrix
from cdtl.data.protocols import MIN_INTERACTIONS_TO_SPLIT
from cdtl.evaluate import evaluate_ranking, group_items, popularity_scores, report, slice_users
from cdtl.experiment import RANKING, ConfigError, json_default, merge_config, versions
from cdtl.models.fusion import MODES, POOLINGS, Scorer, SoftmaxFusion, fusion_batches, gate_features, score_scales
from cdtl.train import TrainConfig, TrainResult, fit, set_seed

SCORERS = ("mf", "text", "popularity", "lm_bridge")
LABELS = {"mf": "MF (BPR)", "text": "text only", "popularity": "popularity", "lm_bridge": "LM bridge",
          "uniform": "uniform average", "global": "global fusion", "user": "per-user fusion"}
SLICES = ("all", "warm", "cold")

_TRAIN = {f.name: f.default for f in fields(TrainConfig)}
DEFAULTS: dict[str, Any] = {
    "kind": "fusion",
    "name": "fusion",
    "seed": 0,
    "dataset": {"name": "movielens-100k", "domains": "genre"},
    "protocol": {"source": "action", "target": "comedy", "cold_ratio": 0.2, "warm_val": 0.1, "warm_test": 0.1},
    "scorers": ["mf", "text", "popularity"],
    "mf": {"dim": 64, "reg": 0.0, "n_negatives": 1, "batch_size": 1024, "train": dict(_TRAIN)},
    "text": {"pooling": "mean", "whiten": True, "whiten_dim": 32, "max_text_length": 64, "encode_batch_size": 64},
    # the bridge: a model name of cdtl.comparisons.transfer.MODELS and a transfer config for fit_model
    "lm_bridge": {"model": "lm_bridge", "config": {}},
    "fusion": {"modes": list(MODES), "pooling": "geometric", "calibrate": False, "hidden": 16,
               "temperature": "auto", "standardize": True, "batch_size": 128, "train": {**_TRAIN, "optimizer": "adam", "lr": 0.05,
                                                                 "epochs": 40}},
    "evaluate": {"metrics": ["recall@10", "ndcg@10"], "bootstrap": 1000, "batch_size": 2048},
}


# --------------------------------------------------------------------------- configuration


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded."""
    if not isinstance(config, dict):
        raise ConfigError(f"a fusion config must be a mapping, got {type(config).__name__}")
    config = copy.deepcopy(config)
    bridge = config.get("lm_bridge")
    bridge_config = bridge.pop("config", {}) if isinstance(bridge, dict) else {}  # the transfer module checks it
    cfg = merge_config(DEFAULTS, config, "")
    cfg["lm_bridge"]["config"] = bridge_config
    if cfg["kind"] != "fusion":
        raise ConfigError(f"kind must be 'fusion' for cdtl.comparisons.fusion, got {cfg['kind']!r}")
    scorers = cfg["scorers"]
    if not isinstance(scorers, list) or not scorers:
        raise ConfigError(f"scorers must be a non-empty list, valid names: {', '.join(SCORERS)}; got {scorers!r}")
    unknown = [s for s in scorers if s not in SCORERS]
    if unknown:
        raise ConfigError(f"unknown scorer(s) {unknown}; valid choices: {', '.join(SCORERS)}")
    if len(set(scorers)) != len(scorers):
        raise ConfigError(f"scorers lists a name twice: {scorers}")
    if "popularity" not in scorers:
        raise ConfigError("scorers must include 'popularity': it serves every user and is the fallback of the others")
    f = cfg["fusion"]
    if f["pooling"] not in POOLINGS:
        raise ConfigError(f"unknown fusion.pooling {f['pooling']!r}; valid choices: {', '.join(POOLINGS)}")
    if not (f["temperature"] == "auto" or (isinstance(f["temperature"], (int, float)) and f["temperature"] > 0)):
        raise ConfigError(f"fusion.temperature must be 'auto' or a positive number, got {f['temperature']!r}")
    modes = cfg["fusion"]["modes"]
    if not isinstance(modes, list) or not modes or any(m not in MODES for m in modes):
        raise ConfigError(f"fusion.modes must be a non-empty list of {', '.join(MODES)}; got {modes!r}")
    proto = cfg["protocol"]
    for key in ("warm_val", "warm_test"):
        if not 0.0 < float(proto[key]) < 0.5:
            raise ConfigError(f"protocol.{key} must be a fraction in (0, 0.5), got {proto[key]!r}")
    if not 0.0 < float(proto["cold_ratio"]) < 1.0:
        raise ConfigError(f"protocol.cold_ratio must be in (0, 1), got {proto['cold_ratio']!r}")
    for metric in cfg["evaluate"]["metrics"]:
        if not RANKING.match(metric):
            raise ConfigError(f"unknown metric {metric!r}; valid choices: recall@K, ndcg@K, hit@K, mrr@K, precision@K")
    if "ndcg@10" not in cfg["evaluate"]["metrics"]:
        raise ConfigError("evaluate.metrics must include ndcg@10 (the fusion's headline metric)")
    if cfg["text"]["pooling"] != "mean":
        raise ConfigError(f"text.pooling must be 'mean' (a user is the mean of their history), got {cfg['text']['pooling']!r}")
    for section in ("mf", "fusion"):
        try:
            TrainConfig.from_dict(cfg[section]["train"])
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{section}.train: {err}") from err
    return cfg


def size(config: dict[str, Any], profile: Any) -> dict[str, Any]:
    """``config`` sized for a profile: at most ``profile.epochs`` for the base scorers, its bootstrap and text sizes.

    The fusion itself (a few hundred parameters) keeps its epochs: they cost seconds.
    """
    config = copy.deepcopy(config)
    mf_train = config.setdefault("mf", {}).setdefault("train", {})
    mf_train["epochs"] = min(int(mf_train.get("epochs", profile.epochs)), profile.epochs)
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap
    text = config.setdefault("text", {})
    text["max_text_length"], text["encode_batch_size"] = profile.max_text_length, profile.encode_batch_size
    if "lm_bridge" in config.get("scorers", DEFAULTS["scorers"]):  # the bridge's own transfer config, sized alike
        from cdtl.comparisons import transfer

        bridge = config.setdefault("lm_bridge", {})
        bridge["config"] = transfer.size(bridge.get("config", {}), profile)
    return config


# --------------------------------------------------------------------------- data


def time_split_per_user(frame: pd.DataFrame, val: float, test: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test) of each user's interactions in time order: the latest ``test`` fraction, the ``val`` before it.

    A user with n >= 3 interactions gives round(n * test) (at least 1) to test and
    round(n * val) (at least 1) to validation; users with fewer keep all in training.
    Ties in time are broken by item, so the split is deterministic.
    """
    order = np.lexsort((frame["i"].to_numpy(), frame["timestamp"].to_numpy(), frame["u"].to_numpy()))
    f = frame.iloc[order].reset_index(drop=True)
    u = f["u"].to_numpy()
    counts = np.bincount(u)[u]
    pos = f.groupby("u").cumcount().to_numpy()
    n_test = np.maximum(1, np.floor(counts * test + 0.5)).astype(np.int64)
    n_val = np.maximum(1, np.floor(counts * val + 0.5)).astype(np.int64)
    splittable = counts >= MIN_INTERACTIONS_TO_SPLIT
    part = np.where(~splittable | (pos < counts - n_test - n_val), 0, np.where(pos < counts - n_test, 1, 2))
    return tuple(f[part == p].reset_index(drop=True) for p in (0, 1, 2))  # type: ignore[return-value]


@dataclass
class FusionData:
    """The encoded split with the warm users' target history cut for fusion (see the module docstring).

    ``cd.target_train`` is what the base scorers train on. ``fit`` / ``test``: the (u, i)
    pairs the fusion learns from / is scored on; ``fit_exclude`` / ``test_exclude``: the
    (n_users, n_target_items) items each user has seen at that point.
    """

    cd: CrossDomainData
    fit: pd.DataFrame
    test: pd.DataFrame
    fit_exclude: Any
    test_exclude: Any
    warm_test_users: np.ndarray
    cold_test_users: np.ndarray
    cold_fit_users: np.ndarray
    source_len: np.ndarray  # (n_users,) source training interactions
    target_len: np.ndarray  # (n_users,) target training interactions (the base scorers' part)

    def summary(self) -> dict[str, int]:
        warm_fit = int(len(np.setdiff1d(self.fit["u"].unique(), self.cold_fit_users)))
        return {"users": self.cd.n_users, "target_items": self.cd.n_target_items,
                "target_train": len(self.cd.target_train), "source_train": len(self.cd.source_train),
                "fit_interactions": len(self.fit), "test_interactions": len(self.test),
                "fit_warm_users": warm_fit, "fit_cold_users": len(self.cold_fit_users),
                "test_warm_users": len(self.warm_test_users), "test_cold_users": len(self.cold_test_users)}


def prepare(cfg: dict[str, Any]) -> FusionData:
    """Load the data, make the cold-start split, cut warm users' target history in time, index everything."""
    ds, proto = cfg["dataset"], cfg["protocol"]
    data = load(ds["name"], ds["domains"])
    for role in ("source", "target"):
        if proto[role] not in data.domains:
            raise ConfigError(f"protocol.{role} {proto[role]!r} is not a domain of {data.name}: {data.domains}")
    split = cold_start_split(data, proto["source"], proto["target"], proto["cold_ratio"], seed=cfg["seed"])
    cd = encode_split(split)
    train, warm_val, warm_test = time_split_per_user(cd.target_train, proto["warm_val"], proto["warm_test"])
    cd = dataclasses.replace(cd, target_train=train)
    n_users, n_items = cd.n_users, cd.n_target_items
    fit_exclude = cd.train_matrix(proto["target"])
    seen = pd.concat([train, warm_val])
    test_exclude = interaction_matrix(seen["u"].to_numpy(), seen["i"].to_numpy(), n_users, n_items)
    cols = ["u", "i"]
    return FusionData(
        cd=cd,
        fit=pd.concat([warm_val[cols], cd.val[cols]], ignore_index=True),
        test=pd.concat([warm_test[cols], cd.test[cols]], ignore_index=True),
        fit_exclude=fit_exclude,
        test_exclude=test_exclude,
        warm_test_users=np.unique(warm_test["u"].to_numpy()),
        cold_test_users=np.unique(cd.test["u"].to_numpy()),
        cold_fit_users=np.unique(cd.val["u"].to_numpy()),
        source_len=np.bincount(cd.source_train["u"].to_numpy(), minlength=n_users),
        target_len=np.bincount(train["u"].to_numpy(), minlength=n_users),
    )


# --------------------------------------------------------------------------- base scorers


def _ranking(cfg: dict[str, Any], score_all: Any, part: pd.DataFrame, exclude: Any) -> dict[str, np.ndarray]:
    """Per-user metrics of ``score_all`` on the (u, i) pairs of ``part``, plus ``users``."""
    users, relevant = group_items(part["u"].to_numpy(), part["i"].to_numpy())
    ks = sorted({int(RANKING.match(m).group(2)) for m in cfg["evaluate"]["metrics"]})
    per_user = evaluate_ranking(score_all, users, relevant, exclude, ks, cfg["evaluate"]["batch_size"])
    return {"users": users, **{m: per_user[m] for m in cfg["evaluate"]["metrics"]}}


def train_mf(cfg: dict[str, Any], fd: FusionData) -> tuple[Any, TrainResult]:
    """Target-domain BPR-MF on the base training part, early-stopped (if the config monitors) on warm validation users."""
    from cdtl.models.batches import bpr_batches
    from cdtl.models.mf import MF

    m, cd = cfg["mf"], fd.cd
    train = cd.target_train
    model = MF(cd.n_users, cd.n_target_items, m["dim"], loss="bpr", reg=m["reg"])
    batches = bpr_batches(train["u"].to_numpy(), train["i"].to_numpy(), cd.n_target_items, m["batch_size"],
                          fd.fit_exclude, n_negatives=m["n_negatives"])
    warm_fit = fd.fit[~fd.fit["u"].isin(fd.cold_fit_users)]

    def validate(model: Any) -> dict[str, float]:
        score_all = lambda u: model.score_all(u.to(next(model.parameters()).device)).cpu()  # noqa: E731
        res = _ranking(cfg, score_all, warm_fit, fd.fit_exclude)
        return {k: float(v.mean()) for k, v in res.items() if k != "users"}

    train_cfg = TrainConfig.from_dict({**m["train"], "seed": cfg["seed"]})
    result = fit(model, batches, train_cfg, validate if train_cfg.monitor else None)
    return model.cpu().eval(), result


def text_user_vectors(fd: FusionData, item_emb: torch.Tensor) -> torch.Tensor:
    """(n_users, d): each user's mean language-model vector over their source and target training items (0 if none)."""
    from cdtl.encoders.users import mean_pool

    cd = fd.cd
    rows = np.concatenate([cd.item_rows(cd.split.source)[cd.source_train["i"].to_numpy()],
                           cd.item_rows(cd.split.target)[cd.target_train["i"].to_numpy()]])
    users = np.concatenate([cd.source_train["u"].to_numpy(), cd.target_train["u"].to_numpy()])
    order = np.argsort(users, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=cd.n_users))])
    return mean_pool(item_emb, (indptr, rows[order]), empty="zeros")


def build_scorers(cfg: dict[str, Any], fd: FusionData) -> tuple[dict[str, Scorer], dict[str, Any]]:
    """The configured base scorers, trained on the base training part, and notes on their training."""
    cd = fd.cd
    items = cd.target_items.ids
    n_users = cd.n_users
    scorers: dict[str, Scorer] = {}
    notes: dict[str, Any] = {}
    for name in cfg["scorers"]:
        set_seed(cfg["seed"])
        if name == "popularity":
            pop = popularity_scores(cd.target_train["i"].to_numpy(), cd.n_target_items)
            scorers[name] = Scorer(name, lambda u, pop=pop: pop.expand(len(u), -1), items, np.ones(n_users, bool))
        elif name == "mf":
            model, result = train_mf(cfg, fd)
            notes["mf"] = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                           "best_val": result.best_metric}
            scorers[name] = Scorer(name, model.score_all, items, fd.target_len > 0)
        elif name == "text":
            from cdtl.encoders.catalogue import encode_items
            from cdtl.models.text_only import TextOnly

            t = cfg["text"]
            emb = encode_items(cd.split.data.items, max_length=t["max_text_length"], batch_size=t["encode_batch_size"])
            text = TextOnly(emb, text_user_vectors(fd, emb), candidates=cd.item_rows(cd.split.target),
                            whiten=t["whiten"], whiten_dim=t["whiten_dim"])
            scorers[name] = Scorer(name, text.score_all, items, (fd.source_len + fd.target_len) > 0)
        else:  # lm_bridge: the language-model bridge of cdtl.comparisons.transfer
            try:
                from cdtl.comparisons.transfer import fit_model
            except ImportError as err:
                raise ConfigError("scorer 'lm_bridge' needs cdtl.comparisons.transfer.fit_model, which this "
                                  f"installation lacks ({err}); use 'text' instead") from err
            section = cfg["lm_bridge"]
            model = fit_model(section["model"], cd, section["config"], task="ranking", seed=cfg["seed"])
            scorers[name] = Scorer(name, model.score_all, items, fd.source_len > 0)
    return scorers, notes


def alone(scorer: Scorer, fallback: Scorer) -> Any:
    """``score_all`` of one scorer on its own: its scores where it can serve the user, ``fallback``'s elsewhere."""
    serve = torch.as_tensor(np.asarray(scorer.can_serve), dtype=torch.bool)

    def score_all(users: torch.Tensor) -> torch.Tensor:
        own = scorer.score_all(users).float().cpu()
        return torch.where(serve[users][:, None], own, fallback.score_all(users).float().cpu())

    return score_all


# --------------------------------------------------------------------------- fusion


def initial_temperatures(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer]) -> list[float]:
    """T_k to start from: the configured number, or (``auto``) each scorer's score spread on the validation users."""
    t = cfg["fusion"]["temperature"]
    if t != "auto":
        return [float(t)] * len(scorers)
    if cfg["fusion"]["standardize"]:  # standardised rows have spread 1
        return [1.0] * len(scorers)
    return score_scales(list(scorers.values()), np.unique(fd.fit["u"]))


def calibrate(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer]) -> list[float]:
    """Each scorer's temperature fitted alone, by cross-entropy on the validation users it can serve.

    Fusing *calibrated* distributions keeps temperatures and weights apart: a temperature
    says how sure a scorer's distribution should be, a weight how much it counts.
    """
    start = initial_temperatures(cfg, fd, scorers)
    out = []
    for (name, scorer), t in zip(scorers.items(), start):
        serve = np.asarray(scorer.can_serve, dtype=bool)
        part = fd.fit[serve[fd.fit["u"].to_numpy()]]
        if len(part) == 0:
            raise ValueError(f"scorer {name!r} can serve no validation user: its temperature cannot be calibrated")
        everyone = dataclasses.replace(scorer, can_serve=np.ones(len(serve), bool))  # only served users are fed
        one = SoftmaxFusion([everyone], fd.cd.target_items.ids, mode="uniform", temperature=t,
                            standardize=cfg["fusion"]["standardize"])
        batches = fusion_batches(part["u"].to_numpy(), part["i"].to_numpy(), fd.cd.n_target_items,
                                 cfg["fusion"]["batch_size"], fd.fit_exclude)
        fit(one, batches, TrainConfig.from_dict({**cfg["fusion"]["train"], "seed": cfg["seed"]}))
        out.append(float(one.temperatures[0]))
    return out


def make_fusion(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer], mode: str,
                temperatures: list[float] | None = None) -> SoftmaxFusion:
    """An untrained ``SoftmaxFusion`` of ``scorers`` in ``mode``; with ``temperatures`` (calibrated) they stay fixed."""
    f = cfg["fusion"]
    listed = list(scorers.values())
    can_serve = torch.stack([torch.as_tensor(np.asarray(s.can_serve), dtype=torch.bool) for s in listed], dim=1)
    features = gate_features(fd.source_len, fd.target_len, can_serve) if mode == "user" else None
    fixed = temperatures is not None
    set_seed(cfg["seed"])
    return SoftmaxFusion(listed, fd.cd.target_items.ids, mode=mode, features=features, hidden=f["hidden"],
                         temperature=temperatures if fixed else initial_temperatures(cfg, fd, scorers),
                         learn_temperature=not fixed, standardize=f["standardize"], pooling=f["pooling"])


def fit_fusion(cfg: dict[str, Any], fd: FusionData, scorers: dict[str, Scorer], mode: str,
               temperatures: list[float] | None = None) -> tuple[SoftmaxFusion, TrainResult]:
    """A ``SoftmaxFusion`` fitted by cross-entropy on the validation part only (``fd.fit``).

    With ``temperatures`` (from ``calibrate``) only the weights learn; without, the
    temperatures learn together with them.
    """
    fusion = make_fusion(cfg, fd, scorers, mode, temperatures)
    if not any(p.requires_grad for p in fusion.parameters()):  # uniform weights, fixed temperatures
        return fusion.eval(), TrainResult()
    batches = fusion_batches(fd.fit["u"].to_numpy(), fd.fit["i"].to_numpy(), fd.cd.n_target_items,
                             cfg["fusion"]["batch_size"], fd.fit_exclude)
    result = fit(fusion, batches, TrainConfig.from_dict({**cfg["fusion"]["train"], "seed": cfg["seed"]}))
    return fusion.cpu().eval(), result


def evaluate_test(cfg: dict[str, Any], fd: FusionData, score_all: Any) -> dict[str, np.ndarray]:
    """Per-user test metrics (with ``users``) of warm and cold test users together."""
    return _ranking(cfg, score_all, fd.test, fd.test_exclude)


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


def fit_all(cfg: dict[str, Any]) -> Fitted:
    """Train the base scorers, fit each fusion mode on validation data, score every system once on test."""
    set_seed(cfg["seed"])
    fd = prepare(cfg)
    scorers, notes = build_scorers(cfg, fd)
    per_user = {name: evaluate_test(cfg, fd, alone(s, scorers["popularity"])) for name, s in scorers.items()}
    calibrated = calibrate(cfg, fd, scorers) if cfg["fusion"]["calibrate"] else None
    fusions, histories = {}, {}
    for mode in cfg["fusion"]["modes"]:
        fusions[mode], result = fit_fusion(cfg, fd, scorers, mode, calibrated)
        histories[mode] = result.history
        per_user[mode] = evaluate_test(cfg, fd, fusions[mode].ranker(fd.test_exclude))
    return Fitted(cfg, fd, scorers, notes, fusions, histories, per_user)


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


def run(config: dict[str, Any], out_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the experiment end to end (``fit_all``, ``summarize``); write ``out_dir/metrics.json`` when given."""
    started = time.perf_counter()
    results = summarize(fit_all(resolve(config)), started)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(results, indent=2, default=json_default))
    return results


def table(results: dict[str, Any], metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per system, one column per slice: ``metric`` with its 95 % interval, as text."""
    rows = {}
    for name, by_slice in results["systems"].items():
        rows[LABELS.get(name, name)] = {
            s: f"{m[metric]['mean']:.4f} [{m[metric]['low']:.4f}, {m[metric]['high']:.4f}]"
            for s, m in by_slice.items()}
    out = pd.DataFrame(rows).T[list(SLICES)]
    first = next(iter(results["systems"].values()))
    out.columns = [f"{s} (n={first[s][metric]['n']})" for s in SLICES]
    return out


def format_table(results: dict[str, Any]) -> str:
    """Plain-text tables of NDCG@10 and Recall@10 (if measured) per system and user slice, with 95 % intervals."""
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


__all__ = ["DEFAULTS", "LABELS", "SCORERS", "Fitted", "FusionData", "fit_all", "summarize", "alone", "build_scorers", "evaluate_test", "fit_fusion",
           "calibrate", "initial_temperatures", "format_table", "make_fusion", "prepare", "resolve", "run", "size", "slice_report", "table",
           "text_user_vectors", "time_split_per_user", "train_mf"]
