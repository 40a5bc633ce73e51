"""Experiment files: YAML mistakes named by line and column, 1e-3 read as a number, overrides and types checked."""

from __future__ import annotations

import pytest

from cdtl.configfile import ConfigFileError, apply_override, check_type, parse_yaml, read_yaml


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
    with pytest.raises(ConfigFileError, match=r"--set train\.lr=\[1,: the value .\[1,. \(quote text that is not YAML\): invalid YAML"):
        apply_override(config, "train.lr=[1,")
    with pytest.raises(ConfigFileError, match=r"train\.lr is 0\.001, not a section"):
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
