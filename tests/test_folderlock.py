"""One run at a time per output folder: a second run is refused naming the first, a crashed run's lock is taken over,
a folder that cannot be written is refused before any data is loaded, and the lock never outlives its run."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from own_data import CONFIGS, SLOW_KINDS, own_data
from probes import ROOT, cli, cli_process, lock_held_elsewhere
from toy_data import two_domains

from cdtl import folderlock
from cdtl.experiments import OutputError, run
from cdtl.experiments import single as single_kind
from cdtl.experiments.common import prepare_output, write_results

MSE = "configs/mf_mse_ml100k.yaml"
QUICK = ["--set", "train.epochs=1", "--set", "batches.batch_size=65536", "--set", "evaluate.bootstrap=10",
         "--set", "train.progress=false"]
def held_elsewhere(path: Path) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """``path`` held by another process for the length of the block (``probes.lock_held_elsewhere``)."""
    return lock_held_elsewhere(path)


def crashed_holder(folder: Path) -> int:
    """The pid of a process that claimed ``folder`` and was killed (kill -9) without releasing it."""
    with held_elsewhere(folder) as proc:
        proc.kill()
        proc.wait()
    return proc.pid


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(single_kind, "fit", refuse)


def _can_create_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder this user cannot create files in. Mode 0555 stops everyone but root; root ignores mode bits, so as
    root (as in CI) it is /sys, where the kernel refuses new files to root too (EACCES, or EROFS in a container)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if _can_create_in(folder):
        folder = Path("/sys")
        if not folder.is_dir() or _can_create_in(folder):
            pytest.skip("no folder on this machine refuses new files to this user")
    yield folder
    (tmp_path / "read-only").chmod(0o755)


# --------------------------------------------------------------------------- a second run is refused


def test_a_second_run_on_a_held_folder_is_refused_naming_the_first(tmp_path, no_training):
    out = tmp_path / "out"
    with held_elsewhere(out) as first:
        with pytest.raises(OutputError, match=rf"{out} is in use by another run \(pid {first.pid} on "):
            run(CONFIGS["single"], out, data=two_domains())
        assert (out / folderlock.LOCK_NAME).exists()  # the first run's claim is untouched
        assert json.loads((out / folderlock.LOCK_NAME).read_text())["pid"] == first.pid
    assert not (out / folderlock.LOCK_NAME).exists()  # the first run ended: its lock is gone
    assert not (out / "metrics.json").exists()


@pytest.fixture(scope="module")
def held_folder(tmp_path_factory) -> Iterator[tuple[Path, int]]:
    folder = tmp_path_factory.mktemp("held")
    with held_elsewhere(folder) as first:
        yield folder, first.pid


# every kind test_runs has a config for (its test_every_kind_has_a_config_here keeps that list complete)
@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_KINDS else k for k in CONFIGS])
def test_every_kind_claims_its_folder(held_folder, kind):
    folder, pid = held_folder
    with pytest.raises(OutputError, match=rf"in use by another run \(pid {pid} "):
        run(CONFIGS[kind], folder, data=own_data(kind))
    assert sorted(p.name for p in folder.iterdir()) == [folderlock.LOCK_NAME]


def test_the_command_line_refuses_a_second_run_before_loading_data(capsys, tmp_path, no_training, monkeypatch):
    from cdtl.experiments import single

    monkeypatch.setattr(single, "prepare", lambda *a: pytest.fail("data loaded while another run held the folder"))
    out = tmp_path / "out"
    with held_elsewhere(out) as first:
        cli(capsys, ["run", MSE, *QUICK, "--out", str(out)], f"{out} is in use by another run (pid {first.pid} on ",
            "wait for it to finish, or choose another --out")


@pytest.mark.slow
def test_two_real_runs_on_one_folder_never_both_write(tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "cdtl.cli", "run", MSE, *QUICK, "--out", str(out)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    # the loser may look before the winner has written who it is: all three are honest refusals
    seen = ("is in use by another run (pid ", "is in use by another run (its details are not written yet)",
            "holds an earlier run")
    assert any(message in refused for message in seen), refused
    assert json.loads((out / "metrics.json").read_text())["metrics"]
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


# --------------------------------------------------------------------------- a crashed run's lock, and releasing


def test_a_crashed_runs_lock_is_taken_over_with_a_message(tmp_path, capsys):
    out = tmp_path / "out"
    pid = crashed_holder(out)
    assert json.loads((out / folderlock.LOCK_NAME).read_text())["pid"] == pid  # left behind by kill -9
    result = run(CONFIGS["single"], out, data=two_domains())
    err = capsys.readouterr().err
    assert f"taking over the lock of a run that ended without releasing it (pid {pid} on " in err
    assert "is no longer running" in err
    assert result["metrics"] and sorted(p.name for p in out.iterdir()) == ["metrics.json", "per_user.csv"]


@pytest.mark.slow
def test_a_crashed_runs_lock_does_not_stop_the_command_line(tmp_path):
    out = tmp_path / "out"
    pid = crashed_holder(out)
    done = cli_process(["run", MSE, *QUICK, "--out", str(out)], {**os.environ})
    assert done.returncode == 0, done.stderr
    assert f"(pid {pid} on " in done.stderr and (out / "metrics.json").exists()


def test_a_lock_from_another_machine_is_not_taken_over(tmp_path, no_training):
    out = tmp_path / "out"
    out.mkdir()
    (out / folderlock.LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "yesterday"}))
    with pytest.raises(OutputError, match=r"locked by a run on another machine \(pid 1 on elsewhere.*delete .*"
                                          r"\.cdtl-run\.lock"):
        run(CONFIGS["single"], out, data=two_domains())


def test_the_lock_is_released_when_a_run_fails(tmp_path, no_training):
    with pytest.raises(AssertionError, match="training started"):
        run(CONFIGS["single"], tmp_path, data=two_domains())
    assert list(tmp_path.iterdir()) == [] and not folderlock.held(tmp_path)
    with held_elsewhere(tmp_path):  # another process can take it at once
        pass


def test_the_lock_is_released_when_results_are_written(tmp_path):
    out = prepare_output(tmp_path / "out")
    assert folderlock.held(out) and (out / folderlock.LOCK_NAME).exists()
    assert prepare_output(out) == out  # claiming twice in one process is harmless
    write_results(out, {"run": 1})
    assert not folderlock.held(out) and sorted(p.name for p in out.iterdir()) == ["metrics.json"]


def test_an_earlier_run_is_still_refused_and_the_claim_given_back(tmp_path):
    write_results(tmp_path, {"earlier": True})
    with pytest.raises(OutputError, match="holds an earlier run"):
        prepare_output(tmp_path)
    assert not folderlock.held(tmp_path) and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


# --------------------------------------------------------------------------- a folder that cannot be written


def test_an_unwritable_folder_is_refused_before_any_data(unwritable, no_training, monkeypatch):
    from cdtl.experiments import single

    monkeypatch.setattr(single, "prepare", lambda *a: pytest.fail("data loaded before the folder was checked"))
    with pytest.raises(OutputError, match=rf"^{unwritable} cannot be written \(.+\): choose a folder you can write"):
        run(CONFIGS["single"], unwritable, data=two_domains())


def test_the_command_line_names_an_unwritable_folder_in_one_line(capsys, unwritable, no_training):
    message = cli(capsys, ["run", MSE, *QUICK, "--out", str(unwritable)], f"{unwritable} cannot be written",
                  max_lines=1)
    assert "Errno" not in message


def test_a_folder_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        prepare_output(tmp_path / "file" / "run")


def test_a_file_system_without_locks_runs_unlocked_and_says_so(tmp_path, monkeypatch, capsys):
    def no_locks(handle):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(folderlock, "_try_lock", no_locks)
    out = prepare_output(tmp_path / "out")
    assert "cannot lock files (No locks available); the run goes on unlocked" in capsys.readouterr().err
    write_results(out, {"run": 1})
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]
