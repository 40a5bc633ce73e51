"""The config sections several experiment kinds share, each concept under one name, and the keys that were renamed.

Every kind that reads item texts has a ``text`` section with the same keys (the language model, its text
length, texts per forward pass); the language-model bridge's training settings are its ``lm_bridge``
section, named after the model. A key from an older config is refused with its new name, never ignored.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, fields
from typing import Any

from cdtl.models.mf import MF


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

    def encoder_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``cdtl.encoders.catalogue.encode_items`` for this section."""
        return {"model": self.model, "max_length": int(self.max_length), "batch_size": int(self.encode_batch_size)}


def mf_section(**overrides: Any) -> dict[str, Any]:
    """The MF section of the kinds that train MF with their own small loop (transfer, new items, few shots): the
    model's size and regularisation from ``MF``'s constructor, then the loop's settings; a kind's own ``overrides``."""
    model = {name: inspect.signature(MF).parameters[name].default for name in ("dim", "reg")}
    return {**model, "lr": 0.005, "epochs": 20, "batch_size": 4096, "weight_decay": 0.0, "n_negatives": 1, **overrides}


_TEXT_KEYS = ", ".join(f.name for f in fields(TextSection))

# old dotted key -> where it is now, for each kind that had it
RENAMED: dict[str, dict[str, str]] = {
    "transfer": {
        "lm": f"lm_bridge (the bridge's settings); the language model's {_TEXT_KEYS} and encoder are in text",
    },
    "newitems": {"lm": "lm_bridge"},
    "fusion": {"text.max_text_length": "text.max_length"},
    "multitask": {"features.max_text_length": "text.max_length", "features.encode_batch_size": "text.encode_batch_size"},
    "finetune": {"model.language_model": "text.model", "model.max_length": "text.max_length",
                 "evaluate.encode_batch_size": "text.encode_batch_size"},
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
