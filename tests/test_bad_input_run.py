"""Bad input to `cdtl run` as a new user types it, on MovieLens 100K: files, overrides, values, training, resuming.

Every probe runs the command line in-process (``cdtl.cli.main``, under a deadline) and
needs a clear error (a few lines naming the file or key, exit 2, no traceback) or the
right result. Probes that must fail before any training replace the training loop with
one that fails the probe if it is ever reached.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import probes
import pytest
from probes import cli, cli_process

from cdtl.experiments import registry
from cdtl.train import TrainingState

MSE = "configs/mf_mse_ml100k.yaml"
BPR = "configs/mf_bpr_ml100k.yaml"
# a quick explicit-rating run: 2 steps an epoch, 10 bootstrap resamples
QUICK = ["--set", "train.epochs=2", "--set", "batches.batch_size=65536", "--set", "evaluate.bootstrap=10",
         "--set", "train.progress=false"]


@pytest.fixture
def no_training(monkeypatch):
    """Training must not start (in any kind): the probe's error has to come first."""

    def refuse(cls, *args, **kwargs):
        raise AssertionError("training started before the config was checked")

    monkeypatch.setattr(TrainingState, "start", classmethod(refuse))


def _file(tmp_path: Path, text: str | bytes, name: str = "exp.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


# -- the config file -------------------------------------------------------------------------------------------------


def test_probe_bad_yaml_names_line_and_column(capsys, tmp_path):
    path = _file(tmp_path, "name: x\ntrain:\n  epochs: 5\n   lr: 0.1\n")
    cli(capsys, ["run", path], f"{path}:4:6: invalid YAML", "mapping values are not allowed here")


def test_probe_config_is_a_folder(capsys, tmp_path):
    _file(tmp_path, "name: x\n", "inside.yaml")
    cli(capsys, ["run", str(tmp_path)], f"{tmp_path} is a folder, not a YAML file", "inside.yaml")


def test_probe_config_is_not_utf8(capsys, tmp_path):
    path = _file(tmp_path, "name: caf\xe9\n".encode("latin-1"))
    cli(capsys, ["run", path], f"{path} is not UTF-8 text", "save it as UTF-8")


def test_probe_config_does_not_exist(capsys, tmp_path):
    cli(capsys, ["run", str(tmp_path / "nope.yaml")], "nope.yaml: no such experiment config", "mf_bpr_ml100k")


def test_probe_config_is_a_list(capsys, tmp_path):
    cli(capsys, ["run", _file(tmp_path, "- name: x\n")], "must be a mapping of sections")


# nine levels of nine-fold YAML aliases (387 million strings once expanded), then a known key that uses them
BOMB = "".join([f"l0: &l0 [{', '.join(['lol'] * 9)}]\n"] +
               [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)])


@pytest.mark.parametrize("key,text", [("name", "name: *l8\n"), ("train.grad_clip", "train:\n  grad_clip: *l8\n"),
                                      ("evaluate.metrics", "evaluate:\n  metrics: *l8\n")])
def test_probe_alias_bomb_is_refused_at_once_in_a_real_process(tmp_path, key, text):
    path = _file(tmp_path, BOMB + text)
    result = cli_process(["run", path], {**os.environ}, seconds=60)  # a hang (or a memory blow-up) fails here
    assert result.returncode == 2, result.stderr[-2000:]
    probes.assert_clear(result.stderr, f"{path}:1:5: the key l0 holds a YAML anchor (&l0)",
                        "anchors and aliases are not allowed", max_lines=2)
    assert len(result.stderr) < 400


def test_probe_alias_in_an_override_names_the_override(capsys, no_training):
    cli(capsys, ["run", MSE, "--set", "train.grad_clip=*x"], "--set train.grad_clip=*x", "YAML alias (*x)")


def test_probe_config_over_the_size_cap_is_refused_before_it_is_read(capsys, tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as handle:  # 50 MB (sparse): the file of the report, read in full in 69 s before the cap
        handle.truncate(50_000_000)
    cli(capsys, ["run", str(path)], f"{path} is 50,000,000 bytes", "at most 1,048,576 bytes", seconds=10)


@pytest.mark.parametrize("argv", [["--set", "name=../escaped"], ["--set", "name=/tmp/abs"], ["--set", "name=''"],
                                  ["--set", "name=a/../../b"], ["--set", "name=\"tab\\there\""]])
def test_probe_a_name_that_is_a_path_is_refused_before_any_folder_is_made(capsys, no_training, monkeypatch, tmp_path,
                                                                          argv):
    work, config = tmp_path / "work", str(Path(MSE).resolve())
    work.mkdir()
    monkeypatch.chdir(work)
    cli(capsys, ["run", config, *argv], "name must be a plain file name", "runs/<name>")
    assert not any(tmp_path.rglob("*escaped*")) and list(work.iterdir()) == []


def test_probe_a_name_that_is_a_path_in_the_file_is_refused(capsys, no_training, tmp_path):
    path = _file(tmp_path, "name: ../x\n")
    cli(capsys, ["run", path, "--out", str(tmp_path / "out")], "name must be a plain file name", "got '../x' (str)")


# -- overrides and values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("override,needles", [
    ("seed", ("--set expects key=value",)),
    ("train.lr=[1,", ("--set train.lr=[1,", "invalid YAML")),
    ("train.lr.x=1", ("train.lr is 0.002 (float), not a section",)),
    ("seed=abc", ("seed must be an integer, got 'abc' (str)",)),
    ("train.epoch=3", ("unknown key train.'epoch'", "epochs")),
    ("model.dim=big", ("model.dim must be an integer, got 'big'",)),
    ("train.epochs=1.5", ("train.epochs must be an integer, got 1.5",)),
    ("evaluate.metrics=rmse", ("evaluate.metrics must be a list of names, got 'rmse'",)),
    ("evaluate.bootstrap=-5", ("evaluate.bootstrap must be >= 1, got -5",)),
    ("evaluate.bootstrap=0", ("evaluate.bootstrap must be >= 1, got 0",)),
    ("train.lr=0", ("train.lr must be > 0, got 0",)),
    ("protocol.test=abc", ("protocol.test must be a number", "got 'abc'")),
    ("train.monitor=auc", ("train.monitor 'auc' (str) is not a validation metric", "rmse, mae")),
    ("train.amp=1", ("train.amp must be true or false, got 1",)),
    ("model.name=svd", ("unknown model 'svd'", "mf, popularity")),
    ("kind=graph", ("unknown kind 'graph'", "transfer")),
])
def test_probe_bad_override_fails_before_any_data(capsys, no_training, override, needles):
    cli(capsys, ["run", MSE, "--set", override], *needles)


def test_probe_cutoff_larger_than_the_catalogue_fails_before_training(capsys, no_training):
    cli(capsys, ["run", BPR, "--set", "evaluate.metrics=[recall@10, ndcg@5000]", "--set", "train.monitor=recall@10"],
        "evaluate.metrics: ndcg@5000 asks for the top 5000 of a catalogue of 1682 items")


@pytest.mark.parametrize("config,override,needles", [
    ("transfer_ml100k", "evaluate.metrics=[ndcg@10, recall@99999]", ("recall@99999 asks for the top 99999",)),
    ("fusion_ml100k", "evaluate.metrics=[ndcg@10, recall@99999]", ("recall@99999 asks for the top 99999",)),
    ("multitask_ml100k", "evaluate.ks=[10, 99999]", ("evaluate.ks: 99999 asks for the top 99999",)),
    ("transfer_ml100k", "mf.ranking.dim=big", ("mf.ranking.dim must be an integer, got 'big'",)),
    ("transfer_ml100k", "protocol.cold_ratios=[0.2, 1.5]", ("protocol.cold_ratios must be > 0 and < 1, got 1.5",)),
    ("fusion_ml100k", "fusion.hidden=0", ("fusion.hidden must be >= 1, got 0",)),
    ("fusion_ml100k", "mf.train.lr=fast", ("mf.train.lr must be a number", "got 'fast'")),
    ("multitask_ml100k", "evaluate.bootstrap=-1", ("evaluate.bootstrap must be >= 1, got -1",)),
    ("multitask_ml100k", "seed=1.5", ("seed must be an integer, got 1.5",)),
])
@pytest.mark.slow
def test_probe_every_kind_checks_values_before_training(capsys, no_training, config, override, needles):
    cli(capsys, ["run", config, "--set", override], *needles, seconds=300)


def test_probe_unknown_language_model_offline_fails_before_any_data(capsys, monkeypatch, no_training):
    import huggingface_hub.constants

    from cdtl.experiments import transfer

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # an offline machine
    monkeypatch.setattr(transfer, "prepare_data", lambda *a: pytest.fail("data loaded before the model was checked"))
    cli(capsys, ["run", "transfer_ml100k", "--set", "text.model=cdtl-tests/no-such-model"],
        "text.model: cannot load model 'cdtl-tests/no-such-model'", "hf download")


def test_probe_lr_written_1e_minus_3_is_a_number(capsys, tmp_path):
    config = registry.load_config(MSE, ["train.lr=1e-3"])
    assert config["train"]["lr"] == 0.001 and isinstance(config["train"]["lr"], float)
    path = _file(tmp_path, Path(MSE).read_text().replace("lr: 0.002", "lr: 1e-3"))
    assert registry.resolve(registry.load_config(path))["train"]["lr"] == 0.001
    out = cli(capsys, ["run", MSE, "--set", "train.lr=1e-3", *QUICK, "--out", str(tmp_path / "run")], code=0)
    assert "rmse" in out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["train"]["lr"] == 0.001


# -- training and resuming -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_probe_diverging_loss_is_one_clear_line(capsys, tmp_path, optimizer):
    cli(capsys, ["run", MSE, *QUICK, "--set", f"train.optimizer={optimizer}", "--set", "train.lr=1e6",
                 "--out", str(tmp_path / "run")],
        "training loss is", "Try a lower lr or grad_clip")
    assert not (tmp_path / "run" / "metrics.json").exists()


def _first_run(capsys, tmp_path: Path, *extra: str) -> list[str]:
    checkpoint = ["--set", f"train.checkpoint_dir={tmp_path / 'ck'}"]
    cli(capsys, ["run", MSE, *QUICK, *checkpoint, *extra, "--out", str(tmp_path / "a")], code=0)
    return [*checkpoint, "--set", "train.resume=true", "--set", "train.epochs=3"]


@pytest.mark.parametrize("change,needles", [
    (["--set", "seed=1"], ("is of another run", "seed (0 -> 1)", "split.train.sha256")),
    (["--set", "protocol.test=0.2"], ("protocol.test (0.1 -> 0.2)", "split.test.sha256")),
    (["--set", "model.dim=8"], ("model.dim (64 -> 8)",)),
    (["--set", "train.lr=0.01"], ("train.lr (0.002 -> 0.01)",)),
])
def test_probe_resume_of_another_run_is_refused_by_key(capsys, tmp_path, change, needles):
    resume = _first_run(capsys, tmp_path)
    cli(capsys, ["run", MSE, *QUICK, *resume, *change, "--out", str(tmp_path / "b")], *needles, str(tmp_path / "ck"))


def test_probe_resume_of_the_same_run_continues(capsys, tmp_path):
    resume = _first_run(capsys, tmp_path)
    cli(capsys, ["run", MSE, *QUICK, *resume, "--out", str(tmp_path / "b")], code=0)
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["epochs_run"] == 3


@pytest.mark.parametrize("name,how", [("last.safetensors", "flip"), ("last_optimizer.safetensors", "truncate"),
                                      ("last.json", "garbage")])
def test_probe_damaged_checkpoint_refuses_to_resume_naming_the_file(capsys, tmp_path, name, how):
    resume = _first_run(capsys, tmp_path)
    probes.damage(tmp_path / "ck" / name, how)
    cli(capsys, ["run", MSE, *QUICK, *resume, "--out", str(tmp_path / "b")], str(tmp_path / "ck" / name),
        "cannot be resumed")


@pytest.mark.slow
def test_probe_a_real_process_prints_no_traceback(tmp_path):
    path = _file(tmp_path, "name: x\ntrain: {epochs: 5\n")
    result = cli_process(["run", path], {**os.environ})
    assert result.returncode == 2
    probes.assert_clear(result.stderr, f"{path}:3:1: invalid YAML")
    debug = cli_process(["run", path, "--debug"], {**os.environ})
    assert debug.returncode == 1 and "Traceback" in debug.stderr
