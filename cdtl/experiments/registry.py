"""The kinds of experiment and the one entry point for each: read a config, size it for a profile, resolve it, run it.

A config's top-level ``kind`` names its module (``KINDS``); without one it is a ``single``
experiment. Each kind's module has ``DEFAULTS``, ``resolve(config)``, ``size(config, profile)``,
``run(config, out_dir=None, *, data=None)`` and ``format_table(summary)``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from cdtl import distributed
from cdtl.configfile import preview, read_yaml
from cdtl.experiments.common import ConfigError, Result, release_output, set_value, summary_of

KINDS = {
    "single": "cdtl.experiments.single",
    "transfer": "cdtl.experiments.transfer",
    "fusion": "cdtl.experiments.fusion",
    "multitask": "cdtl.experiments.multitask",
    "newitems": "cdtl.experiments.newitems",
    "fewshot": "cdtl.experiments.fewshot",
    "finetune": "cdtl.experiments.finetune",
    "sequential": "cdtl.experiments.sequential",
}
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"  # the course's experiments (``configs/`` in the repo)
DATASET_TAGS = {"movielens-100k": "ml100k", "movielens-1m": "ml1m"}
DISTRIBUTED_KINDS = ("single",)  # the kinds that train with DDP under torchrun; the others run in one process


def kind_of(config: dict[str, Any]) -> str:
    """The kind a config names (``single`` when it names none)."""
    kind = config.get("kind", "single") if isinstance(config, dict) else "single"
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"unknown kind {preview(kind)}; valid choices: {', '.join(KINDS)}")
    return kind


def module_for(config: dict[str, Any]) -> ModuleType:
    """The module that runs ``config``'s kind."""
    return importlib.import_module(KINDS[kind_of(config)])


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every choice, so a bad config fails before any data is loaded."""
    return module_for(config).resolve(config)


def run(config: dict[str, Any], out_dir: str | os.PathLike | None = None, *, data: Any = None,
        overwrite: bool = False) -> Result:
    """Run the experiment ``config`` describes (on ``data``, a ``RecData``, instead of its dataset when given).

    Returns a ``Result``; with ``out_dir`` its summary is also written to ``out_dir/metrics.json``
    (and the per-user table to ``per_user.csv``). A folder that holds an earlier run is refused,
    before any work, unless ``overwrite``; so is one another run is writing to (the folder is
    locked from before any data is loaded until the run ends, even by an error). Under
    ``torchrun`` only the kinds of ``DISTRIBUTED_KINDS`` run; the others are refused.
    """
    kind = kind_of(config)
    if distributed.launched() and kind not in DISTRIBUTED_KINDS:
        raise ConfigError(f"kind {kind!r} runs in one process; under torchrun only {', '.join(DISTRIBUTED_KINDS)} "
                          "experiments train with DDP: run it without torchrun")
    try:
        return module_for(config).run(config, out_dir, data=data, overwrite=overwrite)
    finally:
        release_output(out_dir)  # the kind's prepare_output claimed it; an error must not leave it held


def format_table(summary: dict[str, Any] | Result) -> str:
    """A plain-text table of an experiment's results, as ``cdtl run`` prints it."""
    summary = summary_of(summary)
    return module_for(summary.get("config", {})).format_table(summary)


def config_names() -> list[str]:
    """Names of the experiments shipped with the package (``cdtl/configs/*.yaml``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a YAML experiment (a path, or the name of a shipped config) and apply ``--set`` overrides."""
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / f"{path.name}.yaml").exists():
        path = CONFIG_DIR / f"{path.name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such experiment config; shipped configs: {', '.join(config_names())}")
    config = read_yaml(path)  # a mistake is named by file, line and column
    for assignment in overrides or []:
        set_value(config, assignment)
    return config


def for_profile(stem: str, profile: Any, overrides: list[str] | None = None) -> dict[str, Any]:
    """The shipped config ``{stem}_{dataset}`` for a profile's MovieLens, sized by the profile.

    ``for_profile("mf_bpr", cdtl.profile("smoke"))`` is ``mf_bpr_ml100k`` with at most
    ``profile.epochs`` epochs and ``profile.bootstrap`` resamples: the chapters and
    ``cdtl run`` share one set of hyper-parameters.
    """
    config = load_config(f"{stem}_{DATASET_TAGS[profile.movielens]}")
    config = module_for(config).size(config, profile)
    for assignment in overrides or []:
        set_value(config, assignment)
    return config
