"""The config sections several experiment kinds share, each concept under one name, and the keys that were renamed.

Every kind that reads item texts has a ``text`` section with the same keys (the language model, its text
length, texts per forward pass); every model trains with the same keys (``epochs``, ``lr``, ``weight_decay``,
``patience``, ...), in a kind's ``train`` section or in the model's own section (``lm_bridge``, ``mf``, ...).
A key from an older config is refused with its new name, never ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cdtl.models.mf import MF
from cdtl.train.config import TrainConfig
from cdtl.train.config import defaults as loop_defaults


@dataclass(frozen=True)
class TextSection:
    """How a kind reads item texts: the language model (None: the packaged MiniLM), the tokens kept per text, and
    the texts per forward pass. The one place these three defaults live."""

    model: str | None = None
    max_length: int = 64
    encode_batch_size: int = 64

    @classmethod
    def defaults(cls, **extra: Any) -> dict[str, Any]:
        """The section's defaults as a config mapping, with a kind's own extra keys (pooling, encoder, ...)."""
        return {**asdict(cls()), **extra}

    @classmethod
    def of(cls, section: dict[str, Any]) -> TextSection:
        """The typed section from a resolved config's ``text`` mapping (extra keys stay in the mapping)."""
        return cls(**{f.name: section[f.name] for f in fields(cls)})

    @staticmethod
    def size(config: dict[str, Any], profile: Any) -> None:
        """Size a raw config's ``text`` section for a profile, in place: its text length and texts per forward pass."""
        config.setdefault("text", {}).update(max_length=int(profile.max_length),
                                             encode_batch_size=int(profile.encode_batch_size))

    def encoder_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``cdtl.encoders.catalogue.encode_items`` (and ``TextEncoder``) for this section."""
        return {"model": self.model, "max_length": int(self.max_length), "batch_size": int(self.encode_batch_size)}

    def tuning_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``cdtl.models.tuned_encoder.tune_item_encoder`` for this section."""
        return {"model": self.model, "max_length": int(self.max_length), "encode_batch_size": int(self.encode_batch_size)}


_LOOP = loop_defaults()  # the training loop's defaults (cdtl.train.TrainConfig): the one place they are written
_TYPED = ("epochs", "lr", "weight_decay", "patience")  # the loop's settings every training section may hold


def train_section(**overrides: Any) -> dict[str, Any]:
    """A kind's ``train`` section: every setting of the training loop with its default, but the seed (the run's own,
    the config's top-level ``seed``); a kind's own ``overrides``."""
    section = {key: value for key, value in _LOOP.items() if key != "seed"}
    unknown = sorted(set(overrides) - set(section))
    if unknown:
        raise ValueError(f"not settings of the training loop: {unknown}")
    return {**section, **overrides}


@dataclass(frozen=True)
class TrainSection:
    """How one model trains, each concept under one name in every kind, its defaults the training loop's.

    A kind's ``train`` section (single, fusion, multitask, finetune, sequential) gives any setting of the
    loop; a model's own section (transfer, new items, few shots: ``mf``, ``cmf``, ``lm_bridge``, ...) holds
    its training keys (``FLAT``) beside the model's hyper-parameters, and its batch size.
    """

    epochs: int = _LOOP["epochs"]
    lr: float = _LOOP["lr"]
    weight_decay: float = _LOOP["weight_decay"]
    patience: int = _LOOP["patience"]
    batch_size: int | None = None  # a model section's own batch size; a kind's train section has none (batches has it)
    loop: Mapping[str, Any] = field(default_factory=dict)  # the loop's other settings: optimizer, monitor, scheduler, ...

    #: the training keys a model's own section may hold
    FLAT = (*_TYPED, "batch_size")

    @classmethod
    def flat(cls, **overrides: Any) -> dict[str, Any]:
        """The training keys of a model's own section with the loop's defaults, and a kind's ``overrides``
        (a section without early stopping leaves ``patience`` out: ``patience=None``)."""
        section = {**{name: _LOOP[name] for name in _TYPED}, **overrides}
        return {key: value for key, value in section.items() if value is not None}

    @classmethod
    def of(cls, section: Mapping[str, Any]) -> TrainSection:
        """The typed settings of a kind's ``train`` section; a value the loop refuses raises ``ValueError``."""
        if "batch_size" in section:
            raise ValueError("batch_size is not a setting of the training loop: the batches section has it")
        if "seed" in section:
            raise ValueError("seed is the run's own: set the config's top-level seed")
        typed = cls(**{name: section[name] for name in _TYPED if name in section},
                    loop={key: value for key, value in section.items() if key not in cls.FLAT})
        typed.train_config(0)  # checked now, as the loop would check it
        return typed

    @classmethod
    def within(cls, section: Mapping[str, Any]) -> TrainSection:
        """The training keys of a model's own section (its other keys are the model's)."""
        typed = cls(**{name: section[name] for name in cls.FLAT if name in section})
        typed.train_config(0)
        return typed

    def train_config(self, seed: int, **settings: Any) -> TrainConfig:
        """The training loop's config: this section's settings, the run's ``seed`` and a kind's fixed ``settings``
        (e.g. ``optimizer="adam"``, ``monitor="val"``)."""
        values = {"epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay, "patience": self.patience,
                  **self.loop, **settings, "seed": seed}
        return TrainConfig.from_dict(values)


def mf_section(**overrides: Any) -> dict[str, Any]:
    """The MF section of the kinds that train MF with their own small loop (transfer, new items, few shots): the
    model's size and regularisation from ``MF``'s constructor, then its training keys (no early stopping: no
    patience); a kind's own ``overrides``."""
    model = {name: inspect.signature(MF).parameters[name].default for name in ("dim", "reg")}
    return {**model, **TrainSection.flat(lr=0.005, batch_size=4096, patience=None), "n_negatives": 1, **overrides}


_TEXT_KEYS = ", ".join(f.name for f in fields(TextSection))


def _seed_of(*sections: str) -> dict[str, str]:
    """A training section's seed, which the run's own seed used to override unseen: the seed is the top-level seed."""
    return {f"{section}.seed": "seed" for section in sections}


# old dotted key -> where it is now, for each kind that had it
RENAMED: dict[str, dict[str, str]] = {
    "single": _seed_of("train"),
    "transfer": {
        "lm": f"lm_bridge (the bridge's settings); the language model's {_TEXT_KEYS} and encoder are in text",
    },
    "newitems": {"lm": "lm_bridge"},
    "fusion": {"text.max_text_length": "text.max_length", **_seed_of("mf.train", "fusion.train")},
    "multitask": {"features.max_text_length": "text.max_length", "features.encode_batch_size": "text.encode_batch_size",
                  **_seed_of("train")},
    "finetune": {"model.language_model": "text.model", "model.max_length": "text.max_length",
                 "evaluate.encode_batch_size": "text.encode_batch_size",
                 "batches.users": "batches.max_users (null: every user, as tuning.max_users in the other kinds)",
                 **_seed_of("train")},
    "sequential": _seed_of("pretrain", "train"),
}


#: the comparisons that repeat themselves for each seed of a list, and the kinds that run once with one seed
REPEATED = ("transfer", "newitems", "fewshot")
ONCE = ("single", "fusion", "finetune", "multitask", "sequential")


def seed_hint(kind: str, key: str) -> str | None:
    """What to write instead, when a config gives ``seed`` to a kind that repeats over ``seeds`` or the other way."""
    if key == "seed" and kind in REPEATED:
        return "this kind repeats its comparison for each seed of a list: write seeds: [0] (or [0, 1, 2])"
    if key == "seeds" and kind in ONCE:
        return "this kind runs once: write seed: 0, and run it again for another seed"
    return None


def renamed_key(kind: str, dotted: str) -> str | None:
    """Where the old key ``dotted`` of ``kind`` lives now, or None when it never had that name."""
    return RENAMED.get(kind, {}).get(dotted)
