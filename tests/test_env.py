"""Environment variables read one way: yes/no flags, positive seconds and the cache root, a bad value named."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdtl.env import CACHE_VAR, EnvError, cache_dir, flag, seconds


@pytest.mark.parametrize("raw, value", [("1", True), ("Yes", True), (" on ", True), ("TRUE", True), ("0", False),
                                        ("no", False), ("Off", False), ("false", False)])
def test_flags_read_every_spelling_of_yes_and_no(monkeypatch, raw, value):
    monkeypatch.setenv("CDTL_TEST_FLAG", raw)
    assert flag("CDTL_TEST_FLAG") is value and flag("CDTL_TEST_FLAG", default=not value) is value


def test_an_unset_or_empty_flag_is_the_default_and_a_bad_one_is_named(monkeypatch):
    monkeypatch.delenv("CDTL_TEST_FLAG", raising=False)
    assert flag("CDTL_TEST_FLAG") is False and flag("CDTL_TEST_FLAG", default=True) is True
    monkeypatch.setenv("CDTL_TEST_FLAG", "  ")
    assert flag("CDTL_TEST_FLAG", default=True) is True
    monkeypatch.setenv("CDTL_TEST_FLAG", "maybe")
    with pytest.raises(EnvError, match=r"CDTL_TEST_FLAG='maybe' is not a yes/no value; use one of 1, 0"):
        flag("CDTL_TEST_FLAG")


def test_seconds_are_positive_finite_numbers(monkeypatch):
    monkeypatch.delenv("CDTL_TEST_WAIT", raising=False)
    assert seconds("CDTL_TEST_WAIT", 30.0) == 30.0
    monkeypatch.setenv("CDTL_TEST_WAIT", "2.5")
    assert seconds("CDTL_TEST_WAIT", 30.0) == 2.5
    for bad, message in [("soon", "is not a number of seconds, e.g. CDTL_TEST_WAIT=30"), ("0", "must be a positive"),
                         ("-1", "must be a positive"), ("inf", "must be a positive"), ("nan", "must be a positive")]:
        monkeypatch.setenv("CDTL_TEST_WAIT", bad)
        with pytest.raises(EnvError, match=message):
            seconds("CDTL_TEST_WAIT", 30.0)


def test_the_cache_root_is_the_variable_else_xdg_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_VAR, str(tmp_path / "data"))
    assert cache_dir() == (tmp_path / "data").resolve()
    monkeypatch.delenv(CACHE_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == (tmp_path / "xdg" / "cdtl").resolve()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == (Path(tmp_path) / "home" / ".cache" / "cdtl").resolve()
