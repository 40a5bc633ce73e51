"""One export at a time per bundle folder: ``BUNDLE.lock`` beside the folder (which a rename replaces whole) is taken
before any data is loaded, a second export is refused naming the first, and the lock goes when the export ends."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from probes import cli, lock_held_elsewhere

from cdtl import folderlock
from cdtl.experiments import fusion
from cdtl.experiments.export import export
from cdtl.experiments.registry import load_config

CONFIG = "configs/fusion_ml100k.yaml"
def export_in_progress(path: Path) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """``path`` held by another process for the length of the block (``probes.lock_held_elsewhere``)."""
    return lock_held_elsewhere(path, beside=True)


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(fusion, "fit_all", refuse)


def test_lock_lives_beside_the_bundle(tmp_path):
    assert folderlock.lock_path(tmp_path / "bundle", beside=True) == tmp_path / "bundle.lock"
    assert folderlock.lock_path(tmp_path / "bundle") == tmp_path / "bundle" / folderlock.LOCK_NAME


def test_a_second_export_on_the_same_bundle_is_refused_at_once_naming_the_first(tmp_path, capsys, no_training):
    bundle = tmp_path / "bundle"
    with export_in_progress(bundle) as first:
        message = cli(capsys, ["export", CONFIG, "--out", str(bundle)], str(bundle), f"pid {first.pid}",
                      "in use by another run", seconds=30)
        assert "training started" not in message
        lock = tmp_path / "bundle.lock"
        assert json.loads(lock.read_text())["pid"] == first.pid  # the first export's claim is untouched
        assert not bundle.exists()  # nothing was written where the first export will write
    assert not (tmp_path / "bundle.lock").exists()  # the first export ended: its lock is gone


def test_an_export_section_is_held_the_same_way(tmp_path, no_training):
    bundle = tmp_path / "served"
    config = load_config(CONFIG, [f"export.bundle={bundle}"])
    with export_in_progress(bundle) as first, pytest.raises(folderlock.FolderLockError, match=f"pid {first.pid}"):
        export(config)


def test_cdtl_run_of_an_export_config_writes_its_bundle_at_out_under_the_same_lock(tmp_path, capsys, no_training):
    bundle = tmp_path / "bundle"
    with export_in_progress(bundle) as first:
        cli(capsys, ["run", CONFIG, "--set", "export.fusion=user", "--out", str(bundle)], f"pid {first.pid}", seconds=30)


def test_the_lock_is_held_while_training_and_released_after_an_error(tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    seen = {}

    def fail_during_training(*args, **kwargs):
        seen["held"] = folderlock.held(bundle, beside=True)
        seen["holder"] = json.loads((tmp_path / "bundle.lock").read_text())["pid"]
        raise RuntimeError("the data went away")

    monkeypatch.setattr(fusion, "fit_all", fail_during_training)
    with pytest.raises(RuntimeError, match="the data went away"):
        export(load_config(CONFIG, []), bundle)
    assert seen == {"held": True, "holder": os.getpid()}
    assert not folderlock.held(bundle, beside=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no lock, no half-written bundle left behind


def test_an_existing_bundle_is_still_refused_under_the_lock(tmp_path, capsys, no_training):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    cli(capsys, ["export", CONFIG, "--out", str(bundle)], str(bundle), "already exists", "--overwrite", seconds=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # the lock went with the refused export
    assert (bundle / "manifest.json").read_text() == "{}"


def test_a_crashed_exports_lock_is_taken_over(tmp_path, capsys, no_training):
    from cdtl.cli import main

    bundle = tmp_path / "bundle"
    with export_in_progress(bundle) as first:
        first.kill()
        first.wait()
    assert json.loads((tmp_path / "bundle.lock").read_text())["pid"] == first.pid  # left behind by kill -9
    assert main(["export", CONFIG, "--out", str(bundle)]) == 1  # it went on to training (refused by no_training)
    err = capsys.readouterr().err
    assert "taking over the lock" in err and f"pid {first.pid}" in err and "training started" in err
    assert not (tmp_path / "bundle.lock").exists()


def _can_create_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def test_a_bundle_whose_folder_cannot_be_written_is_refused_before_training(tmp_path, capsys, no_training):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if _can_create_in(parent):  # root ignores mode bits, but not /sys
            parent = Path("/sys")
            if not parent.is_dir() or _can_create_in(parent):
                pytest.skip("no folder on this machine refuses new files to this user")
        cli(capsys, ["export", CONFIG, "--out", str(parent / "bundle")], "cannot be written", "--out", seconds=30)
        assert not (parent / "bundle").exists()
    finally:
        (tmp_path / "read-only").chmod(0o755)
