"""What every kind of experiment shares, written once: config merging, evaluation, popularity, item text vectors,
results on disk."""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl import distributed, folderlock
from cdtl.configfile import ConfigFileError, apply_override, check_name, check_range, check_type, preview
from cdtl.data.ids import interaction_matrix
from cdtl.evaluate import evaluate_ranking, evaluate_ratings, group_items, popularity_scores
from cdtl.experiments.sections import TextSection, TrainSection, renamed_key, seed_hint
from cdtl.io import atomic_write
from cdtl.models.batches import bpr_batches, rating_batches
from cdtl.models.mf import MF
from cdtl.train import TrainConfig, TrainResult, fit
from cdtl.versions import versions  # noqa: F401 (every kind's metrics.json stores them)

RANKING = re.compile(r"^(recall|ndcg|hit|mrr|precision)@(\d+)$")
RANKING_CHOICES = "recall@K, ndcg@K, hit@K, mrr@K, precision@K"
METRICS_FILE = "metrics.json"
PER_USER_FILE = "per_user.csv"


class ConfigError(ConfigFileError):
    """An experiment configuration that cannot run; the message names the key and lists the valid choices."""


class OutputError(ValueError):
    """An output folder that cannot take a run's results, or would lose an earlier run's."""


# --------------------------------------------------------------------------- configuration


def merge_config(defaults: dict[str, Any], given: dict[str, Any], where: str = "", kind: str | None = None) -> dict[str, Any]:
    """``defaults`` updated by ``given`` section by section; an unknown key, a wrong type or a value out of range
    (``check_type``, ``check_range``) is an error naming its dotted key, and a renamed key names its new place
    (``cdtl.experiments.sections.RENAMED``, for the kind ``defaults`` belongs to). A value takes its default's
    type (``lr: 1`` is 1.0), so the resolved config, as ``metrics.json`` records it, is typed alike whoever wrote it."""
    out = copy.deepcopy(defaults)
    kind = str(defaults.get("kind", "")) if kind is None else kind
    for key, value in given.items():
        moved = renamed_key(kind, f"{where}{key}") if isinstance(key, str) else None
        if moved is not None:
            raise ConfigError(f"{where}{key} was renamed to {moved}: rename it in your config")
        hint = seed_hint(kind or "single", key) if not where else None
        if hint is not None:
            raise ConfigError(f"unknown key {key!r}: {hint}")
        if key not in defaults:
            raise ConfigError(f"unknown key {where}{preview(key) if not isinstance(key, str) else repr(key[:80])}; "
                              f"valid keys: {', '.join(sorted(defaults))}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key!r} must be a mapping, got {preview(value)}")
            out[key] = merge_config(defaults[key], value, f"{where}{key}.", kind)
        else:
            try:
                check_type(f"{where}{key}", value, defaults[key])
                check_range(f"{where}{key}", value)
                if not where and key == "name":  # the run's folder is runs/<name>
                    check_name(value)
            except ConfigFileError as err:  # an experiment's own error type, whichever check found it
                raise ConfigError(str(err)) from err
            out[key] = _as_default(value, defaults[key])
    return out


def _as_default(value: Any, default: Any) -> Any:
    """``value`` (which ``check_type`` found to fit ``default``) as a float where its default is one, in a list too."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, list) and default and isinstance(value, list):
        return [_as_default(v, default[0]) for v in value]
    return value


set_value = apply_override  # one ``--set section.key=value`` on a raw config (the value read as YAML, 1e-3 a number)


def check_ranking_metrics(metrics: Iterable[str], where: str = "evaluate.metrics", hint: str = "") -> None:
    """Refuse any metric that is not a ranking metric at a cut-off (recall@10, ndcg@20, ...); ``hint`` says what else to do."""
    for n, metric in enumerate(metrics):
        if not (isinstance(metric, str) and RANKING.match(metric)):
            raise ConfigError(f"unknown metric {preview(metric)} in {where}[{n}]; valid choices: {RANKING_CHOICES}{hint}")


def check_choices(cfg: dict[str, Any], choices: dict[str, Any]) -> None:
    """Refuse a list of names (``models``, ``encoders``, ...) that is empty or names something unknown, listing the valid ones."""
    for key, valid in choices.items():
        bad = [m for m in cfg[key] if m not in valid]
        if bad or not cfg[key]:
            raise ConfigError(f"unknown {key} {preview(bad) if bad else '(none given)'}; valid choices: {', '.join(valid)}")


def check_train(section: dict[str, Any], where: str) -> None:
    """Refuse a training section that the training loop would refuse (``sections.TrainSection``), naming the section."""
    try:
        TrainSection.of(section)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def constructor_defaults(cls: type, *names: str) -> dict[str, Any]:
    """The defaults of the named keyword arguments of ``cls``'s constructor: a config section's model keys
    default to the model's own, so each default is written once, in the model."""
    parameters = inspect.signature(cls).parameters
    return {name: parameters[name].default for name in names}


def ranking_cutoffs(metrics: Iterable[str]) -> list[int]:
    """The distinct cut-offs K of ranking metrics such as ``ndcg@10``, in increasing order."""
    return sorted({int(m.group(2)) for m in map(RANKING.match, metrics) if m})


# --------------------------------------------------------------------------- evaluation


def rank_users(score_all: Callable[[torch.Tensor], torch.Tensor], pairs: pd.DataFrame, metrics: list[str],
               exclude: Any = None, batch_size: int = 2048, *, shard: bool = False) -> dict[str, np.ndarray]:
    """Per-user ranking metrics of ``score_all`` on held-out (u, i) ``pairs``, ranking every item but ``exclude``'s.

    Returns ``users`` (sorted user indices) and one array per metric of ``metrics``, aligned with them.
    With ``shard`` (under torchrun, called on every rank) each rank ranks its share of the users.
    """
    users, relevant = group_items(pairs["u"].to_numpy(), pairs["i"].to_numpy())
    wanted = [m for m in metrics if RANKING.match(m)]
    per_user = evaluate_ranking(score_all, users, relevant, exclude, ranking_cutoffs(wanted), batch_size, shard=shard)
    return {"users": users, **{m: per_user[m] for m in wanted}}


def scored_once(score_all: Callable, users: np.ndarray, batch_size: int = 2048) -> Callable:
    """``score_all`` computed once for ``users`` (user indices) and kept: the cells of the 2x2 rank overlapping users."""
    users = np.unique(users)
    with torch.no_grad():
        table = torch.cat([score_all(torch.as_tensor(users[s:s + batch_size])).float()
                           for s in range(0, len(users), batch_size)])
    row = torch.full((int(users.max()) + 1,), -1, dtype=torch.long)
    row[torch.as_tensor(users)] = torch.arange(len(users))
    return lambda u: table[row[torch.as_tensor(u)]]


def rate_pairs(predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], pairs: pd.DataFrame,
               threshold: float = 4.0) -> dict[str, Any]:
    """Rating errors of ``predict(u, i)`` on the held-out (u, i, rating) ``pairs`` (``cdtl.evaluate.evaluate_ratings``)."""
    return evaluate_ratings(predict, pairs["u"].to_numpy(), pairs["i"].to_numpy(), pairs["rating"].to_numpy(),
                            threshold=threshold)


class Popularity:
    """Every user gets the items ranked by their training interactions: the baseline and the declared fallback."""

    def __init__(self, train_items: np.ndarray, n_items: int) -> None:
        self.counts = popularity_scores(np.asarray(train_items), n_items)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), n_items): the same training counts for everyone."""
        return self.counts.expand(len(users), -1)


def best_by_validation(frame: pd.DataFrame, models: Iterable[str], **where: Any) -> pd.Series:
    """The row of a results ``frame`` whose model (one of ``models``) has the best validation mean (column ``val``).

    ``where`` narrows the rows first (e.g. ``cell="warm/new"``, ``shots=1``); rows without a
    validation score (a model that cannot serve) are passed over. The choice reads the
    validation users only; the row's ``mean``, ``low`` and ``high`` are the test users'.
    """
    part = frame[frame["model"].isin(list(models))]
    for column, value in where.items():
        part = part[part[column] == value]
    part = part[part["val"].notna()]
    if part.empty:
        raise ValueError(f"no row of models {list(models)} with {where} has a validation score")
    return part.loc[part["val"].idxmax()]


def rating_scale(data: Any) -> tuple[float, float] | None:
    """The (low, high) rating scale of a ``RecData`` (or of the data behind an encoded split); None without ratings."""
    data = getattr(getattr(data, "split", None), "data", data)
    if not data.has_ratings:
        return None
    low, high = data.rating_scale
    return float(low), float(high)


def train_mf(train: pd.DataFrame, n_users: int, n_items: int, config: TrainConfig, *, loss: str = "bpr",
             dim: int = 64, reg: float = 0.0, batch_size: int = 1024, n_negatives: int = 1,
             rating_scale: tuple[float, float] | None = None, exclude: Any = None,
             validate: Callable[[Any], dict[str, float]] | None = None) -> tuple[MF, TrainResult]:
    """One domain's MF on its (u, i[, rating]) training pairs: BPR (``loss="bpr"``) or squared error (``"mse"``).

    BPR's negatives are items outside ``exclude`` (default: the user's training items);
    ``validate`` (with ``config.monitor``) early-stops. The model is built from the global
    generators as they stand: seed them first.
    """
    u, i = train["u"].to_numpy(), train["i"].to_numpy()
    model = MF(n_users, n_items, dim, loss=loss, reg=reg, rating_scale=rating_scale,
               global_mean=float(train["rating"].mean()) if loss == "mse" else 0.0)
    if loss == "mse":
        batches = rating_batches(u, i, train["rating"].to_numpy(np.float32), batch_size)
    else:
        exclude = interaction_matrix(u, i, n_users, n_items) if exclude is None else exclude
        batches = bpr_batches(u, i, n_items, batch_size, exclude, n_negatives=n_negatives)
    result = fit(model, batches, config, validate if config.monitor else None)
    return model.cpu().eval(), result


# --------------------------------------------------------------------------- item text vectors

#: how a text model reads items: the pretrained language model as it is, or its item tower tuned on training histories
ENCODERS = ("frozen", "tuned")
#: the language model and its text length (``model: null`` is the packaged all-MiniLM-L6-v2)
TEXT = TextSection.defaults()
#: fine-tuning of the item tower (``cdtl.models.tuned_encoder``); max_users: a seeded sample of training users
TUNING = {"epochs": 1, "batch_size": 64, "max_history": 20, "freeze_layers": 2, "max_users": None,
          "lr": 2.0e-5, "weight_decay": 0.01, "temperature": 0.05}


def check_tuning(section: dict[str, Any], where: str = "tuning") -> None:
    """Refuse fine-tuning settings the item tower cannot take, by key (the ranges every setting's name implies are
    ``merge_config``'s): ``max_users`` null (every user) or a positive count, at least no layer frozen."""
    users, frozen = section["max_users"], section["freeze_layers"]
    if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 1):
        raise ConfigError(f"{where}.max_users must be an integer >= 1 or null (every user), got {preview(users)}")
    if isinstance(frozen, bool) or not isinstance(frozen, int) or frozen < 0:
        raise ConfigError(f"{where}.freeze_layers must be an integer >= 0, got {preview(frozen)}")


def tuning_for(profile: Any, tuning: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fine-tuning budget of a profile, at most ``tuning``'s (a config's section): as epochs are capped, so is tuning.

    Fewer epochs, users and history items, and more frozen layers, whichever of the two asks for less.
    """
    tuning = {**TUNING, **(tuning or {})}

    def fewer(a: int | None, b: int | None) -> int | None:  # None (or 0): no limit
        return (b or None) if not a else a if not b else min(a, b)

    return {"epochs": min(int(tuning["epochs"]), profile.finetune_epochs),
            "batch_size": min(int(tuning["batch_size"]), profile.finetune_batch_size),
            "max_history": min(int(tuning["max_history"]), profile.finetune_max_history),
            "freeze_layers": max(int(tuning["freeze_layers"]), profile.finetune_freeze_layers),
            "max_users": fewer(tuning["max_users"], profile.finetune_users)}


def size_text(config: dict[str, Any], profile: Any) -> None:
    """Size a text comparison's ``text``, ``tuning`` and bootstrap for a profile, in place."""
    TextSection.size(config, profile)
    config["tuning"] = {**config.get("tuning", {}), **tuning_for(profile, config.get("tuning"))}
    config.setdefault("evaluate", {})["bootstrap"] = profile.bootstrap


def item_vectors(text: dict[str, Any], items: pd.DataFrame, encoder: str = "frozen", *, tuning: dict[str, Any] | None = None,
                 train: pd.DataFrame | None = None, seed: int = 0,
                 validate: Callable[[torch.Tensor], float] | None = None) -> tuple[torch.Tensor, dict[str, Any] | None]:
    """(vectors of every row of ``items``, what tuning cost or None): the language model frozen, or tuned on ``train``.

    ``text`` names the language model and its text length (``model``, ``max_length``,
    ``encode_batch_size``); both encoders cache their vectors on disk. ``"tuned"`` fine-tunes
    the item tower on ``train`` (training interactions of both domains, nothing held out)
    with the ``tuning`` settings, choosing the epoch on ``validate`` when given.
    """
    from cdtl.data.newitems import check_item_texts

    check_item_texts(items, "item table")
    typed = TextSection.of(text)
    if encoder == "frozen":
        from cdtl.encoders.catalogue import encode_items

        return encode_items(items, **typed.encoder_arguments()), None
    if encoder != "tuned" or train is None or tuning is None:
        raise ConfigError(f"encoder must be one of {', '.join(ENCODERS)} (tuned needs training interactions and a "
                          f"tuning section), got {preview(encoder)}")
    from cdtl.models.tuned_encoder import tune_item_encoder

    tuned = tune_item_encoder(items, train, **typed.tuning_arguments(), seed=seed, validate=validate,
                              **{k: tuning[k] for k in TUNING})
    cost = {"seed": seed, "train_seconds": tuned.train_seconds, "encode_seconds": tuned.encode_seconds,
            "users": tuned.users, "from_cache": tuned.from_cache, "history": tuned.history}
    return tuned.vectors, cost


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """What running an experiment gives back: its summary (what ``metrics.json`` holds), the models and the per-user table.

    ``result["metrics"]`` reads ``result.summary["metrics"]``.
    """

    summary: dict[str, Any]
    models: dict[Any, Any] = field(default_factory=dict)  # name (or (task, name)) -> trained model
    per_user: pd.DataFrame | None = None  # one row per (model, test user)
    data: Any = None  # the prepared data the models were trained and scored on

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.summary.get(key, default)


def summary_of(result: Result | dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready summary of a ``Result``, or the summary itself (e.g. read back from metrics.json)."""
    return result.summary if isinstance(result, Result) else result


RESULT_FILES = (METRICS_FILE, PER_USER_FILE)


def prepare_output(out_dir: str | os.PathLike | None, overwrite: bool = False) -> Path | None:
    """The folder a run will write its results to, claimed and checked before any data is loaded or any model trained.

    The folder is created and locked for this run (``cdtl.folderlock``: a second run on it is
    refused, naming the first; a folder that cannot be written is refused now, not after
    training); the lock is released by ``write_results`` or ``release_output``, or when the
    process exits. A path that is a file, or a folder that holds an earlier run
    (``metrics.json`` or ``per_user.csv``), is refused unless ``overwrite``: a user's results
    are never replaced without being asked. Under torchrun only the writing rank claims it.
    """
    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file, not a folder: give a folder for {METRICS_FILE} and {PER_USER_FILE}")
    try:
        if distributed.is_main():
            folderlock.claim(out)  # held from here: nothing can write there between this check and our write
        else:
            out.mkdir(parents=True, exist_ok=True)
    except folderlock.FolderLockError as err:
        raise OutputError(str(err)) from None
    except OSError as err:
        raise OutputError(f"cannot create the output folder {out}: {err.strerror or err}") from err
    earlier = [name for name in RESULT_FILES if (out / name).exists()]
    if earlier and not overwrite:
        release_output(out)
        raise OutputError(f"{out} holds an earlier run ({', '.join(earlier)}); choose another folder, or replace "
                          "it with --overwrite (overwrite=True in Python)")
    return out


def release_output(out_dir: str | os.PathLike | None) -> None:
    """Give back the output folder ``prepare_output`` claimed (nothing happens if this process does not hold it)."""
    if out_dir is not None:
        folderlock.release(out_dir)


def write_results(out_dir: str | os.PathLike, summary: dict[str, Any], per_user: pd.DataFrame | None = None) -> Path:
    """Write ``metrics.json`` (and ``per_user.csv`` when given) into ``out_dir``, each atomically.

    ``metrics.json`` is serialised before anything on disk changes and written last, so a value
    that cannot be written leaves the folder as it was. The folder was checked by
    ``prepare_output``; a ``per_user.csv`` of the run being replaced is removed when this run has none.
    """
    metrics_text = json.dumps(summary, indent=2, default=json_default)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if per_user is not None:
        atomic_write(out / PER_USER_FILE, lambda tmp: per_user.to_csv(tmp, index=False))
    atomic_write(out / METRICS_FILE, metrics_text)
    if per_user is None:
        (out / PER_USER_FILE).unlink(missing_ok=True)
    release_output(out)  # the run is written: the folder is free for the next one
    return out


def json_default(value: Any) -> Any:
    """JSON for the numpy values results hold."""
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
