"""The training loop's checkpoints: resume equals an uninterrupted run, the files are safetensors and JSON, weights round-trip."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from train_toy import BATCHES, DATA, equal_weights, make_model, quick, same_weights, validation_mse, weights

from cdtl.tensorfile import DIGEST_KEY
from cdtl.train import ResumeError, TrainingState, fit, load_weights, save_weights
from cdtl.train.checkpoint import Checkpoint, join_tensors, load_checkpoint, save_checkpoint, split_tensors

# --------------------------------------------------------------------------- checkpoints


def test_resume_equals_an_uninterrupted_run(tmp_path):
    config = {"epochs": 4, "optimizer": "adamw", "lr": 0.02, "scheduler": "step", "step_size": 1}
    straight = make_model(dropout=0.1)
    fit(straight, BATCHES, quick(**config))

    first_half = make_model(dropout=0.1)
    fit(first_half, BATCHES, quick(**{**config, "epochs": 2}, checkpoint_dir=str(tmp_path)))
    saved = json.loads((tmp_path / "last.json").read_text())
    assert saved["epoch"] == 1 and len(saved["history"]) == 2

    resumed = make_model(dropout=0.1)
    result = fit(resumed, BATCHES, quick(**config, checkpoint_dir=str(tmp_path), resume=True))
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3]
    assert not same_weights(weights(first_half), weights(straight))  # the resumed run had work left to do
    assert same_weights(weights(resumed), weights(straight))


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_resume_after_a_crash_with_schedule_and_early_stopping_state(tmp_path, scheduler):
    # Scripted validation scores: plateau (patience 3 // 2 = 1) cuts the lr after epochs 2, 4, 5 and 6,
    # and early stopping gives up after epoch 6, three epochs after the best, epoch 3.
    scores = [1.0, 0.9, 0.95, 0.85, 0.86, 0.87, 0.88, 0.8]
    current = {}

    def scripted_batches(epoch, generator):
        current["epoch"] = epoch
        if epoch == current.get("crash_at"):
            raise KeyboardInterrupt
        return BATCHES(epoch, generator)

    def validate(model):
        return {"mse": scores[current["epoch"]]}

    def config(name, **overrides):
        return quick(epochs=8, lr=0.05, scheduler=scheduler, warmup_epochs=1, gamma=0.5, monitor="mse",
                     mode="min", patience=3, checkpoint_dir=str(tmp_path / name), **overrides)

    straight = make_model(dropout=0.1)
    expected = fit(straight, scripted_batches, config("straight"), validate)
    assert expected.stopped_early and len(expected.history) == 7 and expected.best_epoch == 3

    current["crash_at"] = 5  # two epochs after the best: the patience count must survive the crash
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(dropout=0.1), scripted_batches, config("crash"), validate)
    del current["crash_at"]
    resumed = make_model(dropout=0.1)
    result = fit(resumed, scripted_batches, config("crash", resume=True), validate)

    assert result.stopped_early and result.best_epoch == 3 and len(result.history) == 7
    assert [row["lr"] for row in result.history] == pytest.approx([row["lr"] for row in expected.history])
    assert same_weights(weights(resumed), weights(straight))  # the best weights, restored
    last = {name: load_file(str(tmp_path / name / "last.safetensors")) for name in ("straight", "crash")}
    assert same_weights(last["crash"], last["straight"])
    assert not same_weights(last["crash"], weights(resumed))


def test_resume_of_a_finished_run_trains_no_more(tmp_path):
    model = make_model()
    fit(model, BATCHES, quick(epochs=2, checkpoint_dir=str(tmp_path)))
    again = make_model()
    calls = []
    result = fit(again, lambda epoch, gen: calls.append(epoch) or BATCHES(epoch, gen),
                 quick(epochs=2, checkpoint_dir=str(tmp_path), resume=True))
    assert calls == [] and len(result.history) == 2
    assert equal_weights(weights(again), weights(model))


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    with pytest.warns(UserWarning, match="from scratch"):
        result = fit(make_model(), BATCHES, quick(epochs=1, checkpoint_dir=str(tmp_path / "new"), resume=True))
    assert len(result.history) == 1 and (tmp_path / "new" / "last.safetensors").is_file()


def test_checkpoints_are_safetensors_and_json_only(tmp_path):
    scores = iter([0.3, 0.4])
    model = make_model()
    fit(model, BATCHES, quick(epochs=2, optimizer="adam", checkpoint_dir=str(tmp_path), monitor="auc"),
        lambda m: {"auc": next(scores)})
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["best.safetensors", "last.json", "last.safetensors", "last_optimizer.safetensors"]
    model_state = load_file(str(tmp_path / "last.safetensors"))
    assert equal_weights(model_state, weights(model))
    optimizer_state = load_file(str(tmp_path / "last_optimizer.safetensors"))
    assert {"optimizer.state.0.exp_avg", "optimizer.state.0.exp_avg_sq", "optimizer.state.1.step"} <= set(
        optimizer_state
    )
    assert optimizer_state["optimizer.state.0.exp_avg"].shape == model.linear.weight.shape
    saved = json.loads((tmp_path / "last.json").read_text())
    assert saved["epoch"] == 1 and saved["best_epoch"] == 1 and saved["best_metric"] == 0.4
    assert saved["config"]["optimizer"] == "adam"
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.05)
    for path in tmp_path.glob("*.safetensors"):
        assert not path.read_bytes().startswith(b"\x80")  # a pickle stream starts with the PROTO opcode


# the keys of last.json, in the order they are written: a checkpoint from any earlier cdtl has exactly these
LAST_JSON_KEYS = ["epoch", "history", "best_metric", "best_epoch", "stopped_early", "epochs_without_improvement",
                  "config", "fingerprint", "reference_loss", "scheduler", "optimizer", "grad_scaler", "sha256"]


def _header(path):
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata())


def test_the_checkpoint_files_keep_their_layout(tmp_path):
    scores = iter([0.3, 0.4])
    fit(make_model(), BATCHES, quick(epochs=2, optimizer="adam", scheduler="plateau", checkpoint_dir=str(tmp_path),
                                     monitor="auc"), lambda m: {"auc": next(scores)}, fingerprint={"data": "toy"})
    saved = json.loads((tmp_path / "last.json").read_text())
    assert list(saved) == LAST_JSON_KEYS
    assert saved["fingerprint"] == {"data": "toy"} and saved["epochs_without_improvement"] == 0
    assert [row["epoch"] for row in saved["history"]] == [0, 1] and saved["stopped_early"] is False
    assert set(saved["scheduler"]) == {"plateau_scale", "plateau_best", "plateau_bad_epochs"}
    assert set(saved["optimizer"]) == {"state", "param_groups"}
    assert [key for key, _ in saved["optimizer"]["state"]["__items__"]] == [0, 1]  # int keys, kept as pairs
    assert saved["optimizer"]["state"]["__items__"][0][1]["exp_avg"] == {"__tensor__": "optimizer.state.0.exp_avg"}
    assert saved["optimizer"]["param_groups"][0]["betas"] == {"__tuple__": [0.9, 0.999]}
    assert saved["grad_scaler"] == {}  # no mixed precision on a CPU
    assert {name: set(_header(tmp_path / name)) for name in ("last.safetensors", "last_optimizer.safetensors",
                                                             "best.safetensors")} == {
        "last.safetensors": {"epoch", DIGEST_KEY}, "last_optimizer.safetensors": {"epoch", DIGEST_KEY},
        "best.safetensors": {"epoch", "monitor", "value", DIGEST_KEY}}
    assert json.loads(_header(tmp_path / "last.safetensors")["epoch"]) == 1
    assert json.loads(_header(tmp_path / "last_optimizer.safetensors")["epoch"]) == 1
    assert set(load_file(str(tmp_path / "last.safetensors"))) == {"linear.weight", "linear.bias"}
    assert set(load_file(str(tmp_path / "last_optimizer.safetensors"))) == {
        f"optimizer.state.{i}.{key}" for i in (0, 1) for key in ("step", "exp_avg", "exp_avg_sq")}


def test_a_checkpoint_written_by_fit_restores_a_new_state_that_writes_it_back_unchanged(tmp_path):
    config = quick(epochs=3, optimizer="adam", scheduler="plateau", monitor="mse", mode="min", patience=1,
                   checkpoint_dir=str(tmp_path))
    trained = make_model(dropout=0.1)
    result = fit(trained, BATCHES, config, validation_mse, fingerprint={"data": "toy"})
    checkpoint = load_checkpoint(tmp_path, {"data": "toy"}, config.to_dict())
    assert checkpoint.values["epoch"] == 2 and "sha256" not in checkpoint.values

    state = TrainingState.start(make_model(dropout=0.1, seed=7), replace(config, checkpoint_dir=None), {"data": "toy"})
    assert not same_weights(weights(state.model), load_file(str(tmp_path / "last.safetensors")))
    state.restore(checkpoint)
    assert state.next_epoch == 3 and state.result.best_epoch == result.best_epoch
    assert state.result.history == json.loads((tmp_path / "last.json").read_text())["history"]
    assert equal_weights(weights(state.model), load_file(str(tmp_path / "last.safetensors")))
    assert equal_weights(state.best_state, weights(trained))  # fit left the best weights in the model

    again = state.to_checkpoint(2)
    assert json.loads(json.dumps(again.values)) == {**checkpoint.values, "config": replace(config, checkpoint_dir=None)
                                                    .to_dict()}
    assert equal_weights(dict(again.weights), checkpoint.weights)
    assert equal_weights(dict(again.optimizer), checkpoint.optimizer)


def test_the_checkpoint_module_saves_and_loads_plain_values(tmp_path):
    values = {"epoch": 4, "best_epoch": None, "config": {"lr": 0.1, "epochs": 5}, "fingerprint": {"data": "x"},
              "anything": [1, "two", {"three": 3.0}]}
    save_checkpoint(tmp_path, Checkpoint({"w": torch.arange(3.0)}, {"opt.m": torch.ones(2)}, values))
    back = load_checkpoint(tmp_path, {"data": "x"}, {"lr": 0.1, "epochs": 9})  # more epochs: the same run
    assert back.values == values and back.best_weights is None
    assert torch.equal(back.weights["w"], torch.arange(3.0)) and torch.equal(back.optimizer["opt.m"], torch.ones(2))
    assert list(json.loads((tmp_path / "last.json").read_text())) == [*values, "sha256"]
    with pytest.raises(ResumeError, match=r"train\.lr \(0\.1 -> 0\.2\)"):
        load_checkpoint(tmp_path, {"data": "x"}, {"lr": 0.2, "epochs": 5})
    with pytest.raises(ResumeError, match=r"data \('x' -> 'y'\)"):
        load_checkpoint(tmp_path, {"data": "y"}, {"lr": 0.1, "epochs": 5})


def test_optimizer_state_round_trips_exactly():
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model.loss({"x": DATA[0], "y": DATA[1]}).backward()
    optimizer.step()
    tensors = {}
    encoded = json.loads(json.dumps(split_tensors(optimizer.state_dict(), "opt", tensors)))
    decoded = join_tensors(encoded, tensors)
    original = optimizer.state_dict()
    assert decoded["param_groups"] == original["param_groups"]
    assert decoded["state"].keys() == original["state"].keys()  # int keys survive JSON
    for index, state in original["state"].items():
        assert all(torch.equal(decoded["state"][index][key], value) for key, value in state.items())


def test_save_and_load_weights_round_trip(tmp_path):
    model = make_model(seed=1)
    path = save_weights(model, tmp_path / "sub" / "model.safetensors", {"epoch": 3, "metrics": {"rmse": 0.9}})
    assert path.is_file()
    other = make_model(seed=2)
    assert not same_weights(weights(other), weights(model))
    metadata = load_weights(other, path)
    assert metadata == {"epoch": 3, "metrics": {"rmse": 0.9}}
    assert equal_weights(weights(other), weights(model))
    assert equal_weights(load_file(str(path)), weights(model))
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_weights(other, tmp_path / "missing.safetensors")


def test_save_weights_handles_tied_and_transposed_tensors(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(5, 3)
            self.out = nn.Linear(3, 5, bias=False)
            self.out.weight = self.embed.weight
            self.register_buffer("transposed", torch.arange(6.0).reshape(2, 3).t())

    model = Tied()
    save_weights(model, tmp_path / "tied.safetensors")
    copy = Tied()
    load_weights(copy, tmp_path / "tied.safetensors")
    assert torch.equal(copy.embed.weight, model.embed.weight) and copy.out.weight is copy.embed.weight
    assert torch.equal(copy.transposed, model.transposed)


# --------------------------------------------------------------------------- errors
