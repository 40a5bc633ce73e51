"""Training under faults: divergence with any optimiser, damaged checkpoints, and resuming only the same run."""

from __future__ import annotations

import json

import probes
import pytest
import torch
from train_toy import BATCHES, make_model, quick, same_weights, weights

from cdtl.io import CorruptFileError
from cdtl.train import ResumeError, fit

FINGERPRINT = {"dataset.sha256": "aa11", "split.sha256": "bb22", "model.dim": 4}


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_a_diverging_run_stops_with_one_message_for_every_optimiser(optimizer):
    with pytest.raises(FloatingPointError) as error:
        fit(make_model(), BATCHES, quick(epochs=5, optimizer=optimizer, lr=1e6))
    message = str(error.value)
    assert message.startswith("training loss is ") and message.endswith("Try a lower lr or grad_clip.")
    assert "(both counted from 0)" in message and "no checkpoint to go back to" in message
    if optimizer != "sgd":  # Adam's steps are bounded by lr: the loss explodes without turning NaN
        assert "times the first step's" in message and "training diverged" in message


def test_divergence_none_lets_an_exploding_run_finish():
    result = fit(make_model(), BATCHES, quick(epochs=2, optimizer="adam", lr=1e6, divergence=None))
    assert result.history[-1]["train_loss"] > 1e6


def test_divergence_must_be_a_factor_above_one():
    with pytest.raises(ValueError, match="divergence must be a finite factor > 1"):
        quick(divergence=0.5)
    with pytest.raises(TypeError, match="divergence must be a number"):
        quick(divergence="big")


def _checkpointed(tmp_path, **overrides):
    config = {"epochs": 2, "optimizer": "adam", "lr": 0.02, "monitor": None, **overrides}
    model = make_model()
    fit(model, BATCHES, quick(**config, checkpoint_dir=str(tmp_path)), fingerprint=FINGERPRINT)
    return model, config


def test_the_checkpoint_records_fingerprint_reference_loss_and_its_own_hash(tmp_path):
    _checkpointed(tmp_path)
    state = json.loads((tmp_path / "last.json").read_text())
    assert state["fingerprint"] == FINGERPRINT and state["reference_loss"] > 0 and len(state["sha256"]) == 64


@pytest.mark.parametrize("name,damage", [
    ("last.safetensors", "flip"), ("last.safetensors", "truncate"), ("last_optimizer.safetensors", "flip"),
    ("last_optimizer.safetensors", "garbage"), ("last.json", "garbage"), ("last.json", "truncate"),
    ("last.json", "edit"), ("last.safetensors", "delete"),
])
def test_a_damaged_checkpoint_refuses_to_resume_and_names_the_file(tmp_path, name, damage):
    _checkpointed(tmp_path)
    path = tmp_path / name
    if damage == "edit":
        state = json.loads(path.read_text())
        state["epochs_without_improvement"] = 0 if state["epochs_without_improvement"] else 3
        path.write_text(json.dumps(state))
    else:
        probes.damage(path, damage)
    fresh = make_model(seed=5)
    before = weights(fresh)
    with pytest.raises(CorruptFileError) as error:
        fit(fresh, BATCHES, quick(epochs=4, optimizer="adam", lr=0.02, checkpoint_dir=str(tmp_path), resume=True),
            fingerprint=FINGERPRINT)
    assert str(error.value).startswith(f"{path}: ") and "cannot be resumed" in str(error.value)
    assert same_weights(weights(fresh), before)  # nothing was half-loaded


@pytest.mark.parametrize("change,needle", [
    ({"fingerprint": {**FINGERPRINT, "split.sha256": "cc33"}}, "split.sha256 ('bb22' -> 'cc33')"),
    ({"fingerprint": {**FINGERPRINT, "model.dim": 8}}, "model.dim (4 -> 8)"),
    ({"fingerprint": {}}, "dataset.sha256 ('aa11' -> None)"),
    ({"lr": 0.05}, "train.lr (0.02 -> 0.05)"),
    ({"optimizer": "sgd"}, "train.optimizer ('adam' -> 'sgd')"),
])
def test_resuming_another_run_is_refused_with_the_keys_that_differ(tmp_path, change, needle):
    _, config = _checkpointed(tmp_path)
    fingerprint = change.pop("fingerprint", FINGERPRINT)
    with pytest.raises(ResumeError) as error:
        fit(make_model(), BATCHES, quick(**{**config, "epochs": 4, **change}, checkpoint_dir=str(tmp_path),
                                        resume=True), fingerprint=fingerprint)
    assert needle in str(error.value) and str(tmp_path) in str(error.value)


def test_the_same_run_resumes_with_more_epochs(tmp_path):
    _, config = _checkpointed(tmp_path)
    straight = make_model()
    fit(straight, BATCHES, quick(**{**config, "epochs": 4}))
    resumed = make_model()
    result = fit(resumed, BATCHES, quick(**{**config, "epochs": 4}, checkpoint_dir=str(tmp_path), resume=True),
                 fingerprint=FINGERPRINT)
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3]
    assert same_weights(weights(resumed), weights(straight))
    assert torch.isfinite(torch.tensor(result.history[-1]["train_loss"]))
