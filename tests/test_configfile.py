"""Experiment files: YAML mistakes named by line and column, 1e-3 read as a number, overrides and types checked;
hostile files (alias bombs, huge files, huge values) refused quickly with short messages."""

from __future__ import annotations

import time

import pytest

from cdtl.configfile import (
    MAX_CONFIG_BYTES,
    ConfigFileError,
    apply_override,
    check_name,
    check_type,
    parse_yaml,
    preview,
    read_yaml,
)
from cdtl.experiments import registry

# nine levels of nine-fold aliases: 9**9 (387 million) strings once expanded
BOMB = "".join([f"l0: &l0 [{', '.join(['lol'] * 9)}]\n"] +
               [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)])


@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), ("1E5", 1e5), ("-2.5e+3", -2500.0), (".5", 0.5), ("3", 3),
                                        ("0.001", 0.001), ("1e-3x", "1e-3x"), ("'1e-3'", "1e-3"), ("true", True)])
def test_numbers_are_read_as_everyone_writes_them(text, value):
    got = parse_yaml(f"lr: {text}", "x.yaml")["lr"]
    assert got == value and type(got) is type(value)


def test_bad_yaml_names_file_line_and_column(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\ntrain:\n  epochs: 5\n   lr: 0.1\n")
    with pytest.raises(ConfigFileError, match=rf"{path}:4:6: invalid YAML: mapping values are not allowed here"):
        read_yaml(path)


def test_folder_non_utf8_empty_and_non_mapping_files(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\n")
    with pytest.raises(ConfigFileError, match=r"is a folder, not a YAML file; it holds a\.yaml"):
        read_yaml(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(ConfigFileError, match=r"latin\.yaml is not UTF-8 text \(byte b'\\xe9' at offset 9\)"):
        read_yaml(latin)
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml(tmp_path / "empty.yaml") == {}
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigFileError, match="must be a mapping of sections"):
        read_yaml(tmp_path / "list.yaml")
    with pytest.raises(FileNotFoundError, match="nope.yaml: no such file"):
        read_yaml(tmp_path / "nope.yaml")


def test_overrides():
    config = {"train": {"lr": 0.1}, "seed": 0}
    apply_override(config, "train.lr=1e-3")
    apply_override(config, "model.dim=32")
    apply_override(config, "evaluate.metrics=[ndcg@10, recall@20]")
    assert config == {"train": {"lr": 1e-3}, "seed": 0, "model": {"dim": 32},
                      "evaluate": {"metrics": ["ndcg@10", "recall@20"]}}
    with pytest.raises(ConfigFileError, match=r"--set expects key=value \(e\.g\. --set train\.epochs=5\), got 'seed'"):
        apply_override(config, "seed")
    with pytest.raises(ConfigFileError, match=r"--set train\.lr=\[1,: the value .\[1,. \(quote text that is not YAML\): "
                                               "invalid YAML"):
        apply_override(config, "train.lr=[1,")
    with pytest.raises(ConfigFileError, match=r"train\.lr is 0\.001 \(float\), not a section"):
        apply_override(config, "train.lr.x=1")
    with pytest.raises(ConfigFileError, match="has an empty part"):
        apply_override(config, "train..lr=1")


@pytest.mark.parametrize("value,default,ok", [
    (1, 0.5, True), (1.5, 2, False), ("64", 64, False), (True, 1, False), (1, True, False), ("x", "y", True),
    (1.0, "auto", True), ([1], "auto", False), (True, "auto", False),
    ([0.2, 1], [0.5], True), ("ndcg@10", ["recall@10"], False), ([1, "a"], [0], False), (None, 3, False),
    ("anything", None, True),
])
def test_values_must_have_the_type_of_their_default(value, default, ok):
    if ok:
        check_type("section.key", value, default)
    else:
        with pytest.raises(ConfigFileError, match=r"^section\.key must be "):
            check_type("section.key", value, default)


# --------------------------------------------------------------------------- hostile files


@pytest.mark.parametrize("where,text,key", [
    ("name", BOMB + "name: *l8\n", "the key l0"),
    ("train.grad_clip", "name: x\ntrain:\n  grad_clip: *a\n", "the key train.grad_clip"),
    ("evaluate.metrics", "evaluate:\n  metrics: [ndcg@10, *a]\n", "the key evaluate.metrics[1]"),
    ("anchor", "train: &t {epochs: 1}\n", "the key train"),
    ("merge key", "train:\n  <<: *t\n", "the key train.<<"),
])
def test_anchors_and_aliases_are_refused_where_they_appear(tmp_path, where, text, key):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(ConfigFileError) as caught:
        read_yaml(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:") and key in message and "anchors and aliases are not allowed" in message
    assert len(message) < 300 and time.perf_counter() - started < 5


def test_an_override_cannot_hold_an_alias_either():
    with pytest.raises(ConfigFileError, match=r"--set name=\[&a x, \*a\].*YAML anchor"):
        apply_override({}, "name=[&a x, *a]")


def test_deep_nesting_is_refused_by_key_not_by_a_recursion_error(tmp_path):
    with pytest.raises(ConfigFileError, match=r"nested more than \d+ levels deep"):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000, "deep.yaml")


def test_a_config_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:  # 512 MiB, sparse: reading it all would take seconds and the memory
        handle.truncate(512 << 20)
    started = time.perf_counter()
    with pytest.raises(ConfigFileError, match=rf"{path} is 536,870,912 bytes: an experiment config may be at most "
                                              rf"{MAX_CONFIG_BYTES:,} bytes"):
        read_yaml(path)
    assert time.perf_counter() - started < 2
    path.write_text("name: x\n" + "# padding\n" * (MAX_CONFIG_BYTES // 10))  # a little over, as text
    with pytest.raises(ConfigFileError, match="may be at most"):
        read_yaml(path)
    path.write_text("name: x\n" + "# padding\n" * (MAX_CONFIG_BYTES // 20))  # under the cap: read as usual
    assert read_yaml(path) == {"name": "x"}


def _shared(levels: int) -> list:
    """Nested lists that share their children: 10**levels leaves, built in microseconds (what an alias bomb gives)."""
    value: list = ["lol"] * 10
    for _ in range(levels):
        value = [value] * 10
    return value


@pytest.mark.parametrize("value", [_shared(30), list(range(1_000_000)), "x" * 1_000_000, 10**20000,
                                   {f"k{i}": i for i in range(100_000)}],
                         ids=["alias-bomb-like", "long-list", "long-text", "huge-int", "big-mapping"])
def test_no_error_formats_a_whole_value(value):
    started = time.perf_counter()
    checks = [  # (what raises, whether the message shows the value itself: its type and a prefix)
        (lambda: check_type("train.amp", value, True), True), (lambda: check_name(value), True),
        (lambda: apply_override({"seed": [value]}, "seed.x=1"), False), (lambda: registry.resolve({"name": value}), True),
        (lambda: registry.resolve({"kind": value}), True),
        (lambda: registry.resolve({"kind": "transfer", "models": [value]}), False)]
    for check, shows_type in checks:
        with pytest.raises(ConfigFileError) as caught:
            check()
        message = str(caught.value)
        assert len(message) < 400, message[:500]
        assert not shows_type or f"({type(value).__name__}" in message, message
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("config", [{"model": {"name": "m" * 5000}}, {"evaluate": {"metrics": ["ndcg@10", "n" * 5000]}},
                                    {"kind": "transfer", "text": {"model": "x" * 5000}}, {"name": "r" * 5000}])
def test_text_longer_than_any_setting_is_refused_by_its_key(config):
    with pytest.raises(ConfigFileError, match=r"holds text of 5,000 characters, over the 4,096") as caught:
        registry.resolve(config)
    assert len(str(caught.value)) < 300


def test_preview_shows_type_size_and_a_short_prefix():
    assert preview("abc") == "'abc' (str)" and preview(0.002) == "0.002 (float)"
    assert preview(list(range(9))) == "[0, 1, 2, 3, ...] (list of 9)"
    assert preview("y" * 500).endswith("(str of 500 characters)") and len(preview("y" * 500)) < 100
    assert preview(_shared(50)).endswith("(list of 10)") and len(preview(_shared(50))) < 100


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "", "   ", "a\\b", "tab\there", "nul\x00", "/abs",
                                  "x" * 201, ["a"], True, None])
def test_a_run_name_must_be_a_plain_file_name(name):
    with pytest.raises(ConfigFileError, match=r"^name must be a plain file name"):
        check_name(name)
    with pytest.raises(ConfigFileError, match=r"^name must be a (plain file )?name"):
        registry.resolve({"name": name})


@pytest.mark.parametrize("name", ["mf_bpr_ml100k", "run 2", "café-1", 2024, "a.b"])
def test_plain_names_are_kept(name):
    assert check_name(name) == str(name)
