"""Baselines the multi-task models must beat besides no transfer: a single-task model that places unseen users at the
mean user, and chapter 04's bridges.

A single-task target model has never seen a cold user, so it scores them with the random
initial vector of their row: that measures transfer against no transfer. Placing every user
without training examples at the mean of the trained users' rows (chapter 02's mean user) is
the stronger single-task floor, and a cross-domain bridge (``kind: transfer``) trained on the
same training interactions is the transfer the multi-task models compete with.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch

from cdtl.configfile import preview
from cdtl.experiments.common import ConfigError
from cdtl.experiments.multitask_data import MultiTaskData
from cdtl.experiments.transfer_models import MODELS as TRANSFER_MODELS
from cdtl.models.multitask import KNOWN_TASKS, MultiTask
from cdtl.models.multitask.inputs import Inputs

COLD_USERS = ("random", "mean_user")  # how a single-task model scores a user it has no training example of
#: which transfer task stands for each target task of the multi-task comparison
BRIDGE_TASKS = {"target_rating": "rating", "target_click": "ranking"}


def check_cold_users(spec: dict[str, Any], n: int) -> None:
    """Refuse a ``cold_users`` choice of ``models[n]`` other than those of ``COLD_USERS`` ('mean_user': arch single)."""
    spec.setdefault("cold_users", "random")
    if spec["cold_users"] not in COLD_USERS or (spec["cold_users"] != "random" and spec["arch"] != "single"):
        raise ConfigError(f"models[{n}].cold_users must be one of {', '.join(COLD_USERS)} ('mean_user' for arch "
                          f"single only), got {preview(spec['cold_users'])}")


def without_bridge_transfer(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config without ``bridges.transfer``, that transfer config): the bridges' settings are the transfer kind's."""
    bridges = config.get("bridges")
    if not isinstance(bridges, dict) or "transfer" not in bridges:
        return config, {}
    transfer = bridges["transfer"] or {}
    if not isinstance(transfer, dict):
        raise ConfigError(f"bridges.transfer must be a mapping (a transfer config), got {preview(transfer)}")
    return {**config, "bridges": {k: v for k, v in bridges.items() if k != "transfer"}}, copy.deepcopy(transfer)


def check_bridges(models: Any, transfer: dict[str, Any]) -> dict[str, Any]:
    """Refuse ``bridges.models`` that name no transfer model, and a bad ``bridges.transfer``; returns the latter with
    its defaults filled in (what the bridges train with and metrics.json records)."""
    from cdtl.experiments.transfer import resolve  # the transfer kind checks its own config

    if not isinstance(models, list) or any(m not in TRANSFER_MODELS for m in models):
        raise ConfigError(f"bridges.models must be a list of transfer models ({', '.join(TRANSFER_MODELS)}), got "
                          f"{preview(models)}")
    try:
        return resolve(transfer)
    except ConfigError as err:
        raise ConfigError(f"bridges.transfer: {err}") from err


def place_unseen_users(model: MultiTask, trained_users: np.ndarray) -> int:
    """Set every user row not in ``trained_users`` to the mean of those rows, in each input table; returns how many moved."""
    trained = np.unique(np.asarray(trained_users, dtype=np.int64))
    if trained.size == 0:
        raise ValueError("no trained user: a mean user needs at least one user with training examples")
    moved = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Inputs):
                table = module.user.weight
                unseen = np.setdiff1d(np.arange(table.shape[0]), trained)
                table[torch.as_tensor(unseen)] = table[torch.as_tensor(trained)].mean(0)
                moved = len(unseen)
    return moved


def mean_user_fix(model: MultiTask, data: MultiTaskData, tasks: list[str]) -> None:
    """Place the users without training examples of ``tasks``' domain at the mean trained user (a single-task model)."""
    domains = {KNOWN_TASKS[t].domain for t in tasks}
    if len(domains) != 1:
        raise ValueError(f"a mean user is placed per domain; {tasks} span {len(domains)} domains")
    place_unseen_users(model, data.train[domains.pop()]["u"].to_numpy())


def bridge_scorers(name: str, data: MultiTaskData, tasks: list[str], transfer_config: dict[str, Any],
                   seed: int) -> dict[str, tuple[Any, Any]]:
    """{target task: (predict, score_all)} of transfer model ``name`` trained on the multi-task training interactions.

    The bridge sees exactly the multi-task models' training data (the source interactions less
    the source hold-out, the warm users' target interactions less their hold-out), so the warm
    users' held-out target interactions stay unseen. Source tasks have no bridge score.
    """
    from cdtl.experiments.transfer import fit_model  # the transfer kind, imported when a bridge is asked for

    cd = dataclasses.replace(data.cd, source_train=data.train[0], target_train=data.train[1])
    out = {}
    for task in tasks:
        if task in BRIDGE_TASKS:
            scorer = fit_model(name, cd, transfer_config, task=BRIDGE_TASKS[task], seed=seed)
            out[task] = (scorer.predict, scorer.score_all)
    return out
