"""Experiment files in YAML: mistakes named by file, line and column, 1e-3 read as a number, overrides parsed one way.

``read_yaml`` reads a config file, ``apply_override`` applies one ``--set key=value``,
``check_type`` compares a value with the type of its default and ``check_range`` with the
range its name implies (a count >= 1, a rate > 0, a share in [0, 1)...), so every section
of every kind of experiment refuses a wrong value by its dotted key before any data is
loaded; ``check_cutoffs`` compares top-k cut-offs with the catalogue once it is known.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml


class ConfigFileError(ValueError):
    """A config file or override that cannot be read; the message names the file, line and key."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string; this loader reads it as the number everyone means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str, where: str, *, position: bool = True) -> Any:
    """Parse YAML text; a syntax error names ``where`` (with the line and column, if ``position``)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None and position else where
        problem = " ".join(str(part) for part in (err.context, err.problem) if part)
        raise ConfigFileError(f"{at}: invalid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise ConfigFileError(f"{where}: invalid YAML: {err}") from None


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML experiment file ({} when empty), or one error naming the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.y*ml"))[:5]
        raise ConfigFileError(f"{path} is a folder, not a YAML file" + (f"; it holds {', '.join(inside)}" if inside else ""))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as err:
        raise ConfigFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigFileError(f"{path} is not UTF-8 text (byte {raw[err.start:err.start + 1]!r} at offset {err.start}); "
                              "save it as UTF-8") from None
    config = parse_yaml(text, str(path))
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigFileError(f"{path}: an experiment config must be a mapping of sections (name: ..., dataset: ...), "
                              f"got a {type(config).__name__}")
    return config


def apply_override(config: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set section.key=value`` to a raw config; the value is parsed as YAML (``1e-3`` a number)."""
    if "=" not in assignment:
        raise ConfigFileError(f"--set expects key=value (e.g. --set train.epochs=5), got {assignment!r}")
    path, raw = assignment.split("=", 1)
    keys = path.strip().split(".")
    if not all(key.strip() for key in keys):
        raise ConfigFileError(f"--set {assignment!r}: the key {path!r} has an empty part; write e.g. train.lr")
    value = parse_yaml(raw, f"--set {assignment}: the value {raw!r} (quote text that is not YAML)", position=False)
    node = config
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigFileError(f"--set {assignment}: {'.'.join(keys[:depth + 1])} is {child!r}, not a section "
                                  "that holds keys")
        node = child
    node[keys[-1]] = value


def _describe(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a name"
    if isinstance(default, list):
        return "a list" + (f" of {_describe(default[0]).removeprefix('a ').removeprefix('an ')}s" if default else "")
    return type(default).__name__


def _fits(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):  # a name, a choice ("auto" or a number) or none: the kind checks the choices
        return value is None or isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_fits(v, default[0]) for v in value))
    return True


def check_type(key: str, value: Any, default: Any) -> None:
    """Refuse ``value`` for ``key`` unless it has the type of its ``default`` (None defaults accept anything).

    An integer is accepted where the default is a float; nothing else is converted.
    """
    if default is None:
        return
    if not _fits(value, default):
        hint = " (quote nothing: write 0.001 or 1e-3)" if isinstance(default, float) and isinstance(value, str) else ""
        raise ConfigFileError(f"{key} must be {_describe(default)}{hint}, got {value!r} ({type(value).__name__})")


# The range a setting's name implies, wherever it appears: (lowest, lowest included?, highest, highest included?).
_AT_LEAST_ONE = (1, True, None, False)
_POSITIVE = (0, False, None, False)
_NOT_NEGATIVE = (0, True, None, False)
_SHARE = (0, False, 1, False)
RANGES: dict[str, tuple[float | None, bool, float | None, bool]] = {
    **dict.fromkeys(("epochs", "batch_size", "encode_batch_size", "dim", "hidden", "patience", "max_length",
                     "max_history", "step_size", "n_negatives", "n_experts", "sample_users", "bootstrap", "ks"),
                    _AT_LEAST_ONE),
    **dict.fromkeys(("lr", "rating_lr", "gamma", "alpha", "source_weight", "threshold"), _POSITIVE),
    **dict.fromkeys(("seed", "seeds", "reg", "rating_reg", "weight_decay", "min_delta", "warmup_epochs",
                     "momentum"), _NOT_NEGATIVE),
    **dict.fromkeys(("cold_ratio", "cold_ratios", "val_fraction"), _SHARE),
    "dropout": (0, True, 1, False),
}


def check_range(key: str, value: Any) -> None:
    """Refuse a number outside the range its name implies (``bootstrap: -5``, ``lr: 0``), naming ``key``."""
    rule = RANGES.get(key.rsplit(".", 1)[-1])
    if rule is None:
        return
    low, low_in, high, high_in = rule
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue  # types are check_type's job; None means "not set"
        ok = (low is None or (v >= low if low_in else v > low)) and (high is None or (v <= high if high_in else v < high))
        if not ok:
            left = "" if low is None else f"{'>=' if low_in else '>'} {low:g}"
            right = "" if high is None else f"{'<=' if high_in else '<'} {high:g}"
            raise ConfigFileError(f"{key} must be {' and '.join(x for x in (left, right) if x)}, got {v!r}")


def check_cutoffs(metrics: Any, n_items: int, key: str = "evaluate.metrics") -> None:
    """Refuse a top-k cut-off larger than the catalogue being ranked (``recall@5000`` of 1,682 films)."""
    for metric in metrics:
        if "@" in str(metric):
            k = int(str(metric).rsplit("@", 1)[1])
        elif isinstance(metric, int) and not isinstance(metric, bool):
            k = metric
        else:
            continue  # not a cut-off (mae, rmse...)
        if not 1 <= k <= n_items:
            raise ConfigFileError(f"{key}: {metric} asks for the top {k} of a catalogue of {n_items} items; "
                                  f"use a cut-off between 1 and {n_items}")


__all__ = ["ConfigFileError", "RANGES", "apply_override", "check_cutoffs", "check_range", "check_type", "parse_yaml",
           "read_yaml"]
