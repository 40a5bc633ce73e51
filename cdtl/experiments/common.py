"""What every kind of experiment shares, written once: config merging, evaluation, popularity, results on disk."""

from __future__ import annotations

import copy
import json
import os
import platform
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cdtl.configfile import ConfigFileError, apply_override, check_range, check_type
from cdtl.evaluate import evaluate_ranking, evaluate_ratings, group_items, popularity_scores
from cdtl.io import atomic_write
from cdtl.train import TrainConfig

RANKING = re.compile(r"^(recall|ndcg|hit|mrr|precision)@(\d+)$")
RANKING_CHOICES = "recall@K, ndcg@K, hit@K, mrr@K, precision@K"
METRICS_FILE = "metrics.json"
PER_USER_FILE = "per_user.csv"


class ConfigError(ConfigFileError):
    """An experiment configuration that cannot run; the message names the key and lists the valid choices."""


# --------------------------------------------------------------------------- configuration


def merge_config(defaults: dict[str, Any], given: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``defaults`` updated by ``given`` section by section; an unknown key, a wrong type or a value out of range
    (``check_type``, ``check_range``) is an error naming its dotted key."""
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise ConfigError(f"unknown key {where}{key!r}; valid keys: {', '.join(sorted(defaults))}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key!r} must be a mapping, got {value!r}")
            out[key] = merge_config(defaults[key], value, f"{where}{key}.")
        else:
            try:
                check_type(f"{where}{key}", value, defaults[key])
                check_range(f"{where}{key}", value)
            except ConfigFileError as err:  # an experiment's own error type, whichever check found it
                raise ConfigError(str(err)) from err
            out[key] = value
    return out


set_value = apply_override  # one ``--set section.key=value`` on a raw config (the value read as YAML, 1e-3 a number)


def check_ranking_metrics(metrics: Iterable[str], where: str = "evaluate.metrics", hint: str = "") -> None:
    """Refuse any metric that is not a ranking metric at a cut-off (recall@10, ndcg@20, ...); ``hint`` says what else to do."""
    for metric in metrics:
        if not RANKING.match(metric):
            raise ConfigError(f"unknown metric {metric!r} in {where}; valid choices: {RANKING_CHOICES}{hint}")


def check_train(section: dict[str, Any], where: str) -> None:
    """Refuse a training section that ``TrainConfig`` would refuse, naming the section."""
    try:
        TrainConfig.from_dict(section)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


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


def rating_scale(data: Any) -> tuple[float, float] | None:
    """The (low, high) rating scale of a ``RecData`` (or of the data behind an encoded split); None without ratings."""
    data = getattr(getattr(data, "split", None), "data", data)
    if not data.has_ratings:
        return None
    low, high = data.rating_scale
    return float(low), float(high)


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


def write_results(out_dir: str | os.PathLike, summary: dict[str, Any], per_user: pd.DataFrame | None = None) -> Path:
    """Write ``metrics.json`` (and ``per_user.csv`` when given) into ``out_dir``, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / METRICS_FILE, json.dumps(summary, indent=2, default=json_default))
    if per_user is not None:
        atomic_write(out / PER_USER_FILE, lambda tmp: per_user.to_csv(tmp, index=False))
    return out


def json_default(value: Any) -> Any:
    """JSON for the numpy values results hold."""
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def versions() -> dict[str, str]:
    """Versions of what produced a result, for metrics.json."""
    import cdtl

    return {"cdtl": cdtl.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "platform": platform.platform()}
