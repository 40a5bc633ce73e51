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

from cdtl import train
from cdtl.train.checkpoint import join_tensors, split_tensors
from cdtl.train import (
    TrainConfig,
    TrainResult,
    choose_device,
    fit,
    load_weights,
    save_weights,
    set_seed,
)

TRUE_W = torch.tensor([1.5, -2.0, 0.5, 3.0])
TRUE_B = 0.7


class LinearRegression(nn.Module):
    """y = w.x + b with a squared-error loss: the smallest model that follows the loop's contract."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x)).squeeze(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.mse_loss(self(batch["x"]), batch["y"])


def make_model(dropout: float = 0.0, seed: int = 0) -> LinearRegression:
    set_seed(seed)
    return LinearRegression(dropout)


def make_data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = x @ TRUE_W + TRUE_B + 0.1 * torch.randn(n, generator=generator)
    return x, y


def make_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int = 32):
    """A batches(epoch, generator) function that shuffles with the loop's generator."""

    def batches(epoch: int, generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
        order = torch.randperm(len(x), generator=generator)
        return [{"x": x[idx], "y": y[idx]} for idx in order.split(batch_size)]

    return batches


def quick(**overrides) -> TrainConfig:
    settings = {"epochs": 4, "lr": 0.05, "progress": False, "device": "cpu"}
    settings.update(overrides)
    return TrainConfig(**settings)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[key], b[key]) for key in a)


def equal_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


DATA = make_data()
BATCHES = make_batches(*DATA)


def validation_mse(model: nn.Module) -> dict[str, float]:
    x, y = make_data(64, seed=1)
    return {"mse": float(nn.functional.mse_loss(model(x), y))}


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


def test_optimizer_choice_and_settings_reach_torch():
    model = make_model()
    sgd = train.make_optimizer(model, quick(optimizer="sgd", momentum=0.8, weight_decay=0.1))
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.8 and sgd.param_groups[0]["weight_decay"] == 0.1
    assert type(train.make_optimizer(model, quick(optimizer="adam"))) is torch.optim.Adam
    assert type(train.make_optimizer(model, quick(optimizer="adamw"))) is torch.optim.AdamW


@pytest.mark.parametrize(
    ("settings", "factors"),
    [
        ({"scheduler": None}, [1, 1, 1, 1, 1]),
        ({"scheduler": "step", "step_size": 2, "gamma": 0.5}, [1, 1, 0.5, 0.5, 0.25]),
        ({"scheduler": "cosine"}, [0.5 * (1 + math.cos(math.pi * t / 5)) for t in range(5)]),
        ({"scheduler": "cosine", "warmup_epochs": 2}, [1 / 3, 2 / 3, 1, 0.75, 0.25]),
        ({"scheduler": "step", "warmup_epochs": 1, "step_size": 1, "gamma": 0.1}, [0.5, 1, 0.1, 0.01, 0.001]),
    ],
)
def test_schedules_set_the_lr_of_each_epoch(settings, factors):
    result = fit(make_model(), BATCHES, quick(epochs=5, lr=0.01, **settings))
    assert [row["lr"] for row in result.history] == pytest.approx([0.01 * f for f in factors])
    assert all(math.isfinite(row["train_loss"]) for row in result.history)


def test_plateau_cuts_the_lr_when_the_monitored_metric_stalls():
    scores = iter([0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3])
    result = fit(make_model(), BATCHES, quick(epochs=7, lr=0.01, scheduler="plateau", gamma=0.1, patience=4,
                                              monitor="auc"), validate=lambda model: {"auc": next(scores)})
    # plateau patience is patience // 2 = 2: stalls at epochs 2 and 3 cut the lr for epoch 4 on
    assert [row["lr"] for row in result.history] == pytest.approx([0.01] * 4 + [0.001] * 3)
    assert result.best_epoch == 5 and not result.stopped_early


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


def test_set_seed_repeats_every_generator():
    import random

    import numpy as np

    set_seed(11)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(ValueError, match="seed"):
        set_seed(-1)


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert choose_device() == torch.device("cpu")
        assert choose_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda")
    with pytest.raises(ValueError, match="valid choices: auto, cpu, cuda"):
        choose_device("banana")


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


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"\['learning_rate'\].*valid keys: epochs, optimizer, lr"):
        TrainConfig.from_dict({"epochs": 3, "learning_rate": 0.1})
    assert TrainConfig.from_dict({"epochs": 3, "lr": 1}).lr == 1.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer": "rmsprop"}, "valid choices: adamw, adam, sgd"),
        ({"scheduler": "linear"}, "valid choices: None, cosine, step, plateau"),
        ({"mode": "maximize"}, "valid choices: max, min"),
        ({"epochs": 0}, "epochs must be > 0"),
        ({"resume": True}, "checkpoint_dir"),
    ],
)
def test_bad_config_values_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_config_types_are_checked():
    with pytest.raises(TypeError, match="lr must be a number"):
        TrainConfig.from_dict({"lr": "1e-3"})
    with pytest.raises(TypeError, match="epochs must be an integer"):
        TrainConfig(epochs=2.5)


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
