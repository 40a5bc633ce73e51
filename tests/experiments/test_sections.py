"""One name per concept: every kind that reads item texts has the same text section, and an older key is refused
with its new name rather than ignored."""

from __future__ import annotations

import importlib
import re
from dataclasses import fields
from pathlib import Path

import pytest

from cdtl.configfile import read_yaml
from cdtl.experiments import KINDS
from cdtl.experiments.common import ConfigError
from cdtl.experiments.sections import RENAMED, TextSection

ROOT = Path(__file__).resolve().parents[2]
TEXT_KINDS = ["transfer", "newitems", "fewshot", "finetune", "fusion", "multitask", "sequential"]


def _resolve(kind: str, config: dict) -> dict:
    return importlib.import_module(KINDS[kind]).resolve({"kind": kind, **config})


def _nested(dotted: str, value: object) -> dict:
    head, _, rest = dotted.partition(".")
    return {head: _nested(rest, value) if rest else value}


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_every_kind_that_reads_texts_has_the_one_text_section(kind):
    text = _resolve(kind, {})["text"]
    assert {f.name for f in fields(TextSection)} <= set(text)
    typed = TextSection.of(text)
    assert typed == TextSection()  # the defaults live in one place
    assert typed.encoder_arguments() == {"model": None, "max_length": 64, "batch_size": 64}


@pytest.mark.parametrize(("kind", "old"), [(kind, old) for kind, keys in RENAMED.items() for old in keys])
def test_an_old_key_is_refused_with_its_new_name(kind, old):
    value = {"epochs": 3} if "." not in old else 32
    with pytest.raises(ConfigError, match=rf"^{old.replace('.', '[.]')} was renamed to \S+") as caught:
        _resolve(kind, _nested(old, value))
    assert RENAMED[kind][old] in str(caught.value)


def test_the_bridge_section_is_named_after_its_model_and_reads_no_text_keys():
    cfg = _resolve("transfer", {"lm_bridge": {"dim": 16}, "text": {"max_length": 32, "encoder": "frozen"}})
    assert cfg["lm_bridge"]["dim"] == 16 and cfg["text"]["max_length"] == 32
    with pytest.raises(ConfigError, match="unknown key lm_bridge.'max_length'"):
        _resolve("transfer", {"lm_bridge": {"max_length": 32}})


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_no_shipped_config_uses_an_old_name(path):
    config = read_yaml(path)
    kind = config.get("kind", "single")
    flat = {f"{section}.{key}" for section, body in config.items() if isinstance(body, dict) for key in body}
    old = set(RENAMED.get(kind, {}))
    assert not (old & (set(config) | flat)), f"{path.name} uses {sorted(old & (set(config) | flat))}"


@pytest.mark.parametrize("kind", ["transfer", "newitems", "fewshot"])
def test_the_mf_section_takes_the_models_own_defaults(kind):
    import inspect

    from cdtl.models.mf import MF

    mf = _resolve(kind, {})["mf"]
    sections = [mf["ranking"]] if kind == "transfer" else [mf]
    for section in sections:
        for name in ("dim", "reg"):
            assert section[name] == inspect.signature(MF).parameters[name].default


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_seed_in_the_other_form_says_which_form_this_kind_takes(kind):
    from cdtl.experiments.sections import ONCE, REPEATED

    assert kind in ONCE + REPEATED
    wrong, right = ("seed", "seeds: [0]") if kind in REPEATED else ("seeds", "seed: 0")
    assert (wrong == "seed") == ("seeds" in importlib.import_module(KINDS[kind]).DEFAULTS)
    with pytest.raises(ConfigError, match=rf"unknown key '{wrong}': .*write {re.escape(right)}"):
        _resolve(kind, {wrong: 0 if wrong == "seed" else [0]})
