"""Export settings are checked before any training: the kind, the scorers, the bridge, the section's keys, the destination."""

from __future__ import annotations

import pytest

from cdtl.cli import main
from cdtl.experiments.export import split_config

FUSION = {"kind": "fusion", "name": "f", "scorers": ["mf", "lm_bridge", "popularity"]}


def test_an_export_section_is_split_off_with_defaults():
    experiment, settings = split_config({**FUSION, "export": {"bundle": "b", "fusion": "global"}})
    assert "export" not in experiment and experiment["scorers"] == ["mf", "lm_bridge", "popularity"]
    assert settings == {"bundle": "b", "fusion": "global", "overwrite": False, "sequential": None}


@pytest.mark.parametrize("config, message", [
    ({"kind": "transfer"}, "kind: fusion"),
    ({**FUSION, "scorers": ["mf", "text", "popularity"]}, "serves the scorers"),
    ({**FUSION, "lm_bridge": {"model": "ptupcdr"}}, "cannot serve a new user"),
    ({**FUSION, "export": {"colour": 1}}, "export.colour"),
    ({**FUSION, "export": {"fusion": "mixture"}}, "export.fusion"),
    ({**FUSION, "export": "here"}, "export must be a mapping"),
    ({**FUSION, "export": {"sequential": {"dim": 0}}}, "export.sequential.dim"),
])
def test_bad_export_settings_fail_before_training(config, message):
    with pytest.raises(ValueError, match=message):
        split_config(config)


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, capsys):
    config = tmp_path / "x.yaml"
    config.write_text("kind: fusion\nscorers: [mf, text, popularity]\n")
    assert main(["export", str(config), "--out", str(tmp_path / "b")]) == 2
    assert "serves the scorers" in capsys.readouterr().err
    config.write_text("kind: fusion\nexport: {fusion: none}\n")
    assert main(["run", str(config)]) == 2  # cdtl run hands a config with an export section to the exporter
    assert "export.fusion" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "no bundle folder" in capsys.readouterr().err
