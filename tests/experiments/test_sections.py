"""One name per concept: every kind that reads item texts has the same text section, every model trains with the
training loop's names and defaults, and an older key is refused with its new name rather than ignored."""

from __future__ import annotations

import importlib
import re
from dataclasses import fields
from pathlib import Path

import pytest

from cdtl.configfile import read_yaml
from cdtl.experiments import KINDS
from cdtl.experiments.common import ConfigError
from cdtl.experiments.sections import RENAMED, TextSection, TrainSection, train_section
from cdtl.train import TrainConfig

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


# --------------------------------------------------------------------------- text length: one name


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_a_profile_sizes_text_max_length_from_its_field_of_the_same_name(kind):
    from cdtl.profiles import profile

    smoke = profile("smoke", max_length=24, encode_batch_size=8)
    sized = importlib.import_module(KINDS[kind]).size({"kind": kind}, smoke)
    assert TextSection.of(_resolve(kind, sized)["text"]) == TextSection(max_length=24, encode_batch_size=8)


def test_the_encoder_arguments_are_read_from_the_typed_section():
    text = TextSection.of({"model": "m", "max_length": 16, "encode_batch_size": 4, "encoder": "frozen"})
    assert text.encoder_arguments() == {"model": "m", "max_length": 16, "batch_size": 4}
    assert text.tuning_arguments() == {"model": "m", "max_length": 16, "encode_batch_size": 4}


def test_item_vectors_and_the_bundles_encoder_go_through_the_typed_section(monkeypatch):
    import pandas as pd

    from cdtl.experiments import common, export

    seen = {}
    monkeypatch.setattr("cdtl.encoders.catalogue.encode_items", lambda items, **kw: seen.setdefault("encode", kw))
    items = pd.DataFrame({"item": ["a", "b"], "text": ["one", "two"]})
    common.item_vectors({"model": None, "max_length": 16, "encode_batch_size": 4, "encoder": "frozen"}, items)
    assert seen["encode"] == {"model": None, "max_length": 16, "batch_size": 4}
    monkeypatch.setattr(export, "TextEncoder", lambda **kw: kw)
    made, _ = export._encoder({"lm_bridge": {"config": {"text": {"max_length": 16, "encode_batch_size": 4}}}})
    assert {k: made[k] for k in ("model", "max_length", "batch_size", "pooling")} == \
        {"model": None, "max_length": 16, "batch_size": 4, "pooling": "mean"}


# --------------------------------------------------------------------------- training: one set of names


TRAIN_SECTIONS = {"single": ["train"], "fusion": ["mf.train", "fusion.train"], "multitask": ["train"],
                  "finetune": ["train"], "sequential": ["pretrain", "train"]}
FLAT_SECTIONS = {"transfer": ["mf.ranking", "mf.rating", "mapping", "ptupcdr", "cmf", "lm_bridge"],
                 "newitems": ["mf", "dropoutnet", "lm_bridge", "ptupcdr"], "fewshot": ["mf", "dropoutnet"]}


def _section(cfg: dict, dotted: str) -> dict:
    for key in dotted.split("."):
        cfg = cfg[key]
    return cfg


def test_every_kind_that_trains_is_listed_here():
    assert set(TRAIN_SECTIONS) | set(FLAT_SECTIONS) == set(KINDS)


def test_the_training_defaults_are_the_training_loops():
    from cdtl.train.config import defaults

    loop = defaults()
    assert train_section() == {k: v for k, v in loop.items() if k != "seed"}
    assert TrainSection.flat() == {k: loop[k] for k in ("epochs", "lr", "weight_decay", "patience")}
    assert TrainSection().train_config(3) == TrainConfig(seed=3)
    with pytest.raises(ValueError, match="not settings of the training loop"):
        train_section(learning_rate=0.1)


@pytest.mark.parametrize(("kind", "where"), [(k, w) for k, ws in TRAIN_SECTIONS.items() for w in ws])
def test_a_kinds_train_section_holds_every_setting_of_the_loop_but_the_seed(kind, where):
    section = _section(_resolve(kind, {}), where)
    assert set(section) == set(train_section())
    typed = TrainSection.of(section)
    assert typed.train_config(7).seed == 7 and typed.train_config(7).epochs == section["epochs"]
    assert typed.train_config(7).to_dict() == {**section, "seed": 7}  # nothing dropped on the way to the loop


@pytest.mark.parametrize(("kind", "where"), [(k, w) for k, ws in FLAT_SECTIONS.items() for w in ws])
def test_a_models_own_section_names_its_training_keys_as_the_loop_does(kind, where):
    section = _section(_resolve(kind, {}), where)
    assert {"epochs", "lr", "weight_decay", "batch_size"} <= set(section)
    typed = TrainSection.within(section)
    assert (typed.epochs, typed.lr, typed.batch_size) == (section["epochs"], section["lr"], section["batch_size"])
    assert typed.patience == section.get("patience", TrainConfig().patience)
    for old in ("learning_rate", "num_epochs", "wd", "max_epochs"):
        assert old not in section
    bad = _nested(where, {"lr": 0})
    with pytest.raises(ConfigError, match=rf"{where.replace('.', '[.]')}[.]lr must be > 0"):
        _resolve(kind, bad)


def test_the_transfer_loop_config_reads_the_typed_section():
    from cdtl.experiments.transfer_models import train_config

    config = train_config({"dim": 8, "epochs": 4, "lr": 0.01, "batch_size": 64}, 5, "val", "min")
    assert (config.epochs, config.lr, config.weight_decay, config.patience) == (4, 0.01, 0.0, TrainConfig().patience)
    assert (config.optimizer, config.monitor, config.mode, config.seed) == ("adam", "val", "min", 5)


@pytest.mark.parametrize(("section", "message"), [
    ({"seed": 3}, "seed is the run's own"),
    ({"batch_size": 64}, "the batches section has it"),
    ({"lr": 0}, "lr must be > 0"),
    ({"optimizer": "adagrad"}, "unknown optimizer"),
])
def test_a_train_section_the_loop_would_refuse_is_refused_when_read(section, message):
    with pytest.raises(ValueError, match=message):
        TrainSection.of(section)


@pytest.mark.parametrize(("kind", "where"), [(k, w) for k, ws in TRAIN_SECTIONS.items() for w in ws])
def test_a_training_sections_seed_is_refused_with_the_runs_seed(kind, where):
    with pytest.raises(ConfigError, match=rf"^{where.replace('.', '[.]')}[.]seed was renamed to seed"):
        _resolve(kind, _nested(f"{where}.seed", 3))


@pytest.mark.parametrize("kind", ["transfer", "newitems", "fewshot"])
@pytest.mark.parametrize(("tuning", "message"), [
    ({"max_users": 0}, r"tuning.max_users must be an integer >= 1 or null \(every user\), got 0"),
    ({"max_users": "all"}, "tuning.max_users must be an integer >= 1 or null"),
    ({"freeze_layers": -1}, "tuning.freeze_layers must be an integer >= 0, got -1"),
])
def test_the_tuning_section_is_checked_alike_in_every_kind_that_tunes(kind, tuning, message):
    assert _resolve(kind, {"tuning": {"max_users": None}})["tuning"]["max_users"] is None  # every user
    assert _resolve(kind, {"tuning": {"max_users": 30}})["tuning"]["max_users"] == 30
    with pytest.raises(ConfigError, match=message):
        _resolve(kind, {"tuning": tuning})


@pytest.mark.parametrize(("kind", "config", "where"), [
    ("single", {"train": {"lr": 1, "weight_decay": 0}}, ["train.lr", "train.weight_decay"]),
    ("transfer", {"lm_bridge": {"lr": 1}, "cmf": {"alpha": 1}}, ["lm_bridge.lr", "cmf.alpha"]),
    ("fusion", {"fusion": {"train": {"lr": 2}}}, ["fusion.train.lr"]),
])
def test_the_resolved_config_metrics_json_records_is_typed_alike_whoever_wrote_it(kind, config, where):
    cfg = _resolve(kind, config)
    for dotted in where:
        value = _section(cfg, dotted)
        assert type(value) is float and value == _section(config, dotted)  # lr: 1 is recorded as 1.0
    assert type(_resolve("sequential", {"protocol": {"budgets": [1]}})["protocol"]["budgets"][0]) is float
    assert type(_resolve("single", {"batches": {"batch_size": 64}})["batches"]["batch_size"]) is int
