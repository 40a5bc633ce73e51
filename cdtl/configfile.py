"""Experiment files in YAML: mistakes named by file, line and column, 1e-3 read as a number, overrides parsed one way.

``read_yaml`` reads a config file, ``apply_override`` applies one ``--set key=value``,
``check_type`` compares a value with the type of its default and ``check_range`` with the
range its name implies (a count >= 1, a rate > 0, a share in [0, 1)...), so every section
of every kind of experiment refuses a wrong value by its dotted key before any data is
loaded; ``check_cutoffs`` compares top-k cut-offs with the catalogue once it is known.

A hostile file cannot make reading it slow: a file over ``MAX_CONFIG_BYTES`` is refused
before it is read, YAML anchors and aliases (the "billion laughs") are refused where they
appear, and an error shows a value through ``preview`` (its type and a short prefix), never
in full.
"""

from __future__ import annotations

import os
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml


class ConfigFileError(ValueError):
    """A config file or override that cannot be read; the message names the file, line and key."""


#: the largest experiment config read (the course's configs are under 4 KB)
MAX_CONFIG_BYTES = 1 << 20
#: the longest text a setting may hold (a path's limit on most systems)
MAX_TEXT = 4096
#: the deepest nesting of sections and lists a config may have
MAX_CONFIG_DEPTH = 32
_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel, _PREVIEW.maxlist, _PREVIEW.maxtuple, _PREVIEW.maxdict, _PREVIEW.maxset = 2, 4, 4, 4, 4
_PREVIEW.maxstring, _PREVIEW.maxother, _PREVIEW.maxlong = 40, 40, 40


def preview(value: Any, limit: int = 60) -> str:
    """``value`` as an error shows it: a short prefix of its repr and its type (``'abc' (str)``, ``[1, 2, ...] (list of 9)``).

    The work is bounded whatever ``value`` is (a list of a billion items, a deeply shared
    structure, a 100,000-digit integer): only a few items of a few levels are looked at.
    """
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar reads as the number it holds (7, not np.int64(7))
    try:
        text = _PREVIEW.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails (or is too long to compute) is shown by its type
        text = "..."
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    kind = type(value).__name__
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        kind += f" of {len(value)}"
    elif isinstance(value, str) and len(value) > _PREVIEW.maxstring:
        kind += f" of {len(value)} characters"
    return f"{text} ({kind})"


def clip(text: str, limit: int = 80) -> str:
    """The first ``limit`` characters of ``text`` someone typed (an override, a key), marked ``...`` when cut."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_name(value: Any, key: str = "name") -> str:
    """Refuse a run name that is not a plain file name (it names the run's folder, ``runs/<name>``); return it."""
    plain = isinstance(value, (str, float)) or isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**200
    text = str(value) if plain else None
    bad = (text is None or not text.strip() or text in (".", "..") or len(text) > 200
           or any(sep in text for sep in ("/", "\\", os.sep, os.altsep or "/"))
           or any(ord(ch) < 32 or ord(ch) == 127 for ch in text))
    if bad:
        raise ConfigFileError(f"{key} must be a plain file name (it names the run's folder runs/<name>): text of at "
                              f"most 200 characters, without / or \\, not . or .., no control characters; "
                              f"got {preview(value)}")
    return text


class _Refused(yaml.MarkedYAMLError):
    """YAML the loader refuses to compose (an anchor, an alias, too deep a nesting): no expansion happens."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string; this loader reads it as the number everyone means.

    It also refuses anchors and aliases, so no value is ever expanded from a reference, and
    nesting deeper than ``MAX_CONFIG_DEPTH``; the error names the key where it happened.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._keys: list[str] = []

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102 - PyYAML's hook, one node at a time
        label = index.value if isinstance(index, yaml.ScalarNode) else f"[{index}]" if isinstance(index, int) else None
        self._keys.append(label if isinstance(label, str) else "")
        try:
            event = self.peek_event()
            parts = [k for k in self._keys if k]
            key = "".join(k if k.startswith("[") or not i else f".{k}" for i, k in enumerate(parts))
            at = f"the key {clip(key)}" if key else "the top level"
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                raise _Refused(problem=f"{at} holds a YAML {'alias' if sign == '*' else 'anchor'} "
                                       f"({sign}{str(event.anchor)[:30]}); "
                                       "anchors and aliases are not allowed in an experiment config: write the "
                                       "value out in full", problem_mark=event.start_mark)
            if len(self._keys) > MAX_CONFIG_DEPTH:
                raise _Refused(problem=f"{at} is nested more than {MAX_CONFIG_DEPTH} levels deep; an experiment "
                                       "config is a few sections of settings", problem_mark=event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._keys.pop()


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
        raise ConfigFileError(f"{at}: {'' if isinstance(err, _Refused) else 'invalid YAML: '}{problem}") from None
    except yaml.YAMLError as err:
        raise ConfigFileError(f"{where}: invalid YAML: {err}") from None


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML experiment file ({} when empty), or one error naming the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.y*ml"))[:5]
        raise ConfigFileError(f"{path} is a folder, not a YAML file" + (f"; it holds {', '.join(inside)}" if inside else ""))
    try:
        with open(path, "rb") as handle:  # the size is checked before the text is read: a huge file is never read
            size = os.fstat(handle.fileno()).st_size
            raw = b"" if size > MAX_CONFIG_BYTES else handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as err:
        raise ConfigFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    if size > MAX_CONFIG_BYTES or len(raw) > MAX_CONFIG_BYTES:  # a pipe or special file reports no size
        raise ConfigFileError(f"{path} is {'over ' if size <= MAX_CONFIG_BYTES else ''}{max(size, len(raw)):,} bytes: "
                              f"an experiment config may be at most {MAX_CONFIG_BYTES:,} bytes (1 MiB); is it the "
                              "right file?")
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
        raise ConfigFileError(f"--set expects key=value (e.g. --set train.epochs=5), got {clip(assignment)!r}")
    path, raw = assignment.split("=", 1)
    keys = path.strip().split(".")
    if not all(key.strip() for key in keys):
        raise ConfigFileError(f"--set {clip(assignment)!r}: the key {clip(path)!r} has an empty part; write e.g. train.lr")
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(f"--set {clip(path)}=...: the value is {len(raw):,} characters, over the "
                              f"{MAX_CONFIG_BYTES:,} a config may hold")
    value = parse_yaml(raw, f"--set {clip(assignment)}: the value {clip(raw)!r} (quote text that is not YAML)",
                       position=False)
    node = config
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigFileError(f"--set {clip(assignment)}: {clip('.'.join(keys[:depth + 1]))} is {preview(child)}, "
                                  "not a section that holds keys")
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
    if isinstance(default, float):  # an integer too large for a float (10**400) is not a number a float can hold
        return isinstance(value, float) or isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**1023
    if isinstance(default, str):  # a name, a choice ("auto" or a number) or none: the kind checks the choices
        return value is None or isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_fits(v, default[0]) for v in value))
    return True


def check_type(key: str, value: Any, default: Any) -> None:
    """Refuse ``value`` for ``key`` unless it has the type of its ``default`` (None defaults accept anything).

    An integer is accepted where the default is a float; nothing else is converted. Text (alone
    or in a list) longer than ``MAX_TEXT`` characters is refused whatever the default: no name,
    choice or path is that long, and no later message should have to show it.
    """
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise ConfigFileError(f"{key} holds text of {len(text):,} characters, over the {MAX_TEXT:,} a setting may "
                                  f"have: {preview(text)}")
    if default is None:
        return
    if not _fits(value, default):
        hint = " (quote nothing: write 0.001 or 1e-3)" if isinstance(default, float) and isinstance(value, str) else ""
        raise ConfigFileError(f"{key} must be {_describe(default)}{hint}, got {preview(value)}")


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
            raise ConfigFileError(f"{key} must be {' and '.join(x for x in (left, right) if x)}, got {preview(v)}")


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
            raise ConfigFileError(f"{key}: {str(metric)[:40]} asks for the top {k} of a catalogue of {n_items} items; "
                                  f"use a cut-off between 1 and {n_items}")


__all__ = ["MAX_CONFIG_BYTES", "MAX_TEXT", "RANGES", "ConfigFileError", "apply_override", "check_cutoffs", "check_name",
           "check_range", "check_type", "clip", "parse_yaml", "preview", "read_yaml"]
