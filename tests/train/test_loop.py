"""The shared training loop: learning, optimizers and schedules, early stopping, seeds, checkpoints and errors."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from train_toy import (
    BATCHES,
    DATA,
    TRUE_B,
    TRUE_W,
    LinearRegression,
    equal_weights,
    make_model,
    quick,
    same_weights,
    validation_mse,
    weights,
)

from cdtl import train
from cdtl.train import (
    TrainResult,
    fit,
)

# --------------------------------------------------------------------------- learning


def test_loss_decreases_and_recovers_the_true_weights():
    model = make_model()
    result = fit(model, BATCHES, quick(epochs=20, optimizer="sgd", lr=0.05))
    losses = [row["train_loss"] for row in result.history]
    assert isinstance(result, TrainResult)
    assert len(losses) == 20
    assert losses[-1] < 0.01 * losses[0]
    assert torch.allclose(model.linear.weight.detach().squeeze(), TRUE_W, atol=0.05)
    assert model.linear.bias.item() == pytest.approx(TRUE_B, abs=0.05)
    assert result.device == "cpu"
    assert result.best_epoch is None and result.best_metric is None and not result.stopped_early
    assert set(result.history[0]) == {"epoch", "train_loss", "lr", "seconds"}
    assert [row["epoch"] for row in result.history] == list(range(20))
    assert result.seconds >= sum(row["seconds"] for row in result.history)
    assert not model.training


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_each_optimizer_learns(optimizer):
    result = fit(make_model(), BATCHES, quick(optimizer=optimizer, lr=0.05 if optimizer != "sgd" else 0.02,
                                              weight_decay=1e-4, grad_clip=5.0))
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]


# --------------------------------------------------------------------------- validation and early stopping


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path):
    scores = [0.1, 0.5, 0.3, 0.2, 0.25, 0.9, 0.9]
    snapshots = []

    def validate(model):
        assert not model.training and torch.is_inference_mode_enabled()
        snapshots.append(weights(model))
        return {"ndcg@10": scores[len(snapshots) - 1], "recall@10": 0.0}

    model = make_model()
    result = fit(model, BATCHES, quick(epochs=7, monitor="ndcg@10", mode="max", patience=2,
                                       checkpoint_dir=str(tmp_path)), validate)
    assert result.stopped_early
    assert len(result.history) == 4 and len(snapshots) == 4
    assert result.best_epoch == 1 and result.best_metric == 0.5
    assert [row["ndcg@10"] for row in result.history] == [0.1, 0.5, 0.3, 0.2]
    assert not equal_weights(snapshots[1], snapshots[3])
    assert equal_weights(weights(model), snapshots[1])
    best = load_file(str(tmp_path / "best.safetensors"))
    assert equal_weights(best, snapshots[1])
    last = load_file(str(tmp_path / "last.safetensors"))
    assert equal_weights(last, snapshots[3])


def test_min_mode_and_min_delta():
    scores = iter([1.0, 0.95, 0.5, 0.49, 0.48, 0.47, 0.1, 0.1])
    result = fit(make_model(), BATCHES, quick(epochs=8, monitor="rmse", mode="min", min_delta=0.05, patience=3),
                 validate=lambda model: {"rmse": next(scores)})
    # 0.95, 0.49, 0.48 and 0.47 are not 0.05 better than the best so far: best is epoch 2, stop after epoch 5
    assert result.best_epoch == 2 and result.best_metric == 0.5
    assert result.stopped_early and len(result.history) == 6


def test_no_early_stop_without_a_stall():
    scores = iter([0.1, 0.2, 0.3, 0.4])
    result = fit(make_model(), BATCHES, quick(monitor="hit@5", patience=1), lambda model: {"hit@5": next(scores)})
    assert not result.stopped_early and result.best_epoch == 3 and len(result.history) == 4


def test_missing_monitor_key_names_the_available_ones():
    with pytest.raises(ValueError, match=r"'ndcg@10'.*\['hit@10', 'recall@10'\]"):
        fit(make_model(), BATCHES, quick(monitor="ndcg@10"), lambda model: {"recall@10": 0.1, "hit@10": 0.2})


def test_monitor_without_validate_is_an_error():
    with pytest.raises(ValueError, match="validate"):
        fit(make_model(), BATCHES, quick(monitor="rmse"))


def test_validation_metrics_are_logged_in_the_history():
    result = fit(make_model(), BATCHES, quick(epochs=3), validate=validation_mse)
    assert all(set(row) == {"epoch", "train_loss", "lr", "seconds", "mse"} for row in result.history)
    assert result.history[-1]["mse"] < result.history[0]["mse"]


# --------------------------------------------------------------------------- seeds and devices


def test_same_seed_same_weights_different_seed_different_weights():
    def run(seed):
        model = make_model(dropout=0.2)  # same initial weights every time; dropout draws from the loop's seed
        fit(model, BATCHES, quick(epochs=2, seed=seed, optimizer="sgd", lr=0.02))
        return weights(model)

    first = run(seed=3)
    assert equal_weights(first, run(seed=3))
    assert not same_weights(first, run(seed=4))


def test_batches_get_the_epoch_index_and_a_seeded_generator():
    calls = []

    def batches(epoch, generator):
        assert isinstance(generator, torch.Generator)
        calls.append((epoch, torch.randint(0, 2**31, (1,), generator=generator).item()))
        return BATCHES(epoch, generator)

    fit(make_model(), batches, quick(epochs=3, seed=7))
    first = list(calls)
    calls.clear()
    fit(make_model(), batches, quick(epochs=3, seed=7))
    assert [epoch for epoch, _ in first] == [0, 1, 2]
    assert calls == first
    assert len({draw for _, draw in first}) == 3  # every epoch draws different numbers


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_nan_loss_names_epoch_step_and_checkpoint(tmp_path, with_checkpoint):
    x, y = DATA

    def batches(epoch, generator):
        for step in range(30):
            bad = epoch == 1 and step == 23
            yield {"x": x[:8], "y": torch.full((8,), math.nan) if bad else y[:8]}

    config = quick(epochs=3, lr=0.01, checkpoint_dir=str(tmp_path) if with_checkpoint else None)
    with pytest.raises(FloatingPointError, match="epoch 1, step 23") as error:
        fit(make_model(), batches, config)
    if with_checkpoint:
        assert str(tmp_path / "last.safetensors") in str(error.value)
        assert json.loads((tmp_path / "last.json").read_text())["epoch"] == 0
    else:
        assert "no checkpoint" in str(error.value)


def test_model_contract_errors():
    with pytest.raises(TypeError, match="loss"):
        fit(nn.Linear(4, 1), BATCHES, quick())

    class VectorLoss(LinearRegression):
        def loss(self, batch):
            return (self(batch["x"]) - batch["y"]) ** 2

    with pytest.raises(ValueError, match="scalar"):
        fit(VectorLoss(), BATCHES, quick())
    with pytest.raises(ValueError, match="no batches"):
        fit(make_model(), lambda epoch, gen: [], quick())
    with pytest.raises(ValueError, match="reserved"):
        fit(make_model(), BATCHES, quick(), lambda model: {"lr": 1.0})


def test_config_dict_is_accepted_by_fit():
    result = fit(make_model(), BATCHES, {"epochs": 2, "progress": False, "device": "cpu"})
    assert len(result.history) == 2


# --------------------------------------------------------------------------- logging and speed


def test_progress_bar_and_epoch_summaries(capsys, monkeypatch):
    monkeypatch.delenv("CDTL_PROGRESS", raising=False)

    def unsized(epoch, generator):
        yield from BATCHES(epoch, generator)

    fit(make_model(), unsized, quick(epochs=2, progress=True), validation_mse)
    err = capsys.readouterr()
    text = err.out + err.err
    assert "epoch 0: train_loss=" in text and "mse=" in text and "epoch 1: " in text
    monkeypatch.setenv("CDTL_PROGRESS", "0")  # quiet logs: no bar, no summaries
    fit(make_model(), unsized, quick(epochs=1, progress=True), validation_mse)
    err = capsys.readouterr()
    assert "train_loss=" not in err.out + err.err


def test_log_dir_without_tensorboard_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        fit(make_model(), BATCHES, quick(log_dir=str(tmp_path)))


def test_log_dir_writes_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    fit(make_model(), BATCHES, quick(epochs=2, log_dir=str(tmp_path / "tb")), validation_mse)
    assert list(Path(tmp_path / "tb").glob("events.out.tfevents.*"))


def test_the_loop_reads_the_loss_back_only_every_few_steps(monkeypatch):
    reads = []
    original_item = torch.Tensor.item

    def counting_item(self):
        reads.append(1)
        return original_item(self)

    x, y = DATA
    batches = lambda epoch, gen: ({"x": x[:4], "y": y[:4]} for _ in range(200))  # noqa: E731
    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    fit(make_model(), batches, quick(epochs=2, optimizer="sgd", lr=0.01))
    monkeypatch.undo()
    # 200 steps per epoch: one read per 20 steps for the bar, one for the epoch's mean loss
    assert len(reads) <= 2 * (200 // train.SYNC_EVERY + 1)
