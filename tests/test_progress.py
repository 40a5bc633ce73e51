"""Progress: bars for interactive use, one summary line per training or encoding run in a book or a test log."""

from __future__ import annotations

import warnings

import pytest
import torch

from cdtl import progress
from cdtl.train import TrainConfig, fit


def test_modes_from_the_environment(monkeypatch):
    for raw, mode in [("", "bars"), ("1", "bars"), ("bars", "bars"), ("summary", "summary"), ("0", "off"), ("no", "off")]:
        monkeypatch.setenv(progress.ENV_VAR, raw)
        assert progress.mode() == mode
    monkeypatch.setenv(progress.ENV_VAR, "loud")
    with pytest.raises(ValueError, match="CDTL_PROGRESS='loud'"):
        progress.mode()


def test_a_bar_becomes_one_line_in_summary_mode(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV_VAR, "summary")
    with progress.bar(total=3, desc="encode", unit="batch", done="encoded 96 texts") as bar:
        for _ in range(3):
            bar.update(1)
    captured = capsys.readouterr()
    assert captured.err == ""  # no bar drawn
    assert captured.out.startswith("encoded 96 texts in ") and captured.out.count("\n") == 1
    monkeypatch.setenv(progress.ENV_VAR, "off")
    with progress.bar(total=3, desc="encode", unit="batch", done="encoded 96 texts"):
        pass
    assert capsys.readouterr().out == ""


class _Line(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def loss(self, batch):
        return ((self.w * batch["x"] - batch["y"]) ** 2).mean()


def _batches(epoch, generator):
    x = torch.rand(8, generator=generator)
    return [{"x": x, "y": 2 * x}]


def test_training_prints_one_summary_line_not_a_line_per_epoch(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV_VAR, "summary")
    config = TrainConfig(epochs=4, lr=0.1, monitor="mse", mode="min", device="cpu")
    fit(_Line(), _batches, config, validate=lambda model: {"mse": float(((model.w - 2) ** 2).item())})
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trained 4 epochs in ") and "best mse" in lines[0], captured.out
    assert captured.err == ""
    monkeypatch.setenv(progress.ENV_VAR, "bars")
    fit(_Line(), _batches, config, validate=lambda model: {"mse": 1.0})
    assert capsys.readouterr().out.count("epoch ") == 4  # interactive use keeps a line per epoch


def test_tqdm_notebook_advice_is_silenced_only_where_no_bar_is_drawn(monkeypatch):
    monkeypatch.setenv(progress.ENV_VAR, "summary")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        progress.quiet_notebook_warnings()
        warnings.warn("IProgress not found. Please update jupyter and ipywidgets.", UserWarning)
    assert not caught


def test_loading_a_language_model_draws_no_bar_in_summary_mode(monkeypatch, capfd):
    from transformers.utils import logging as transformers_logging

    from cdtl.encoders.language_model import load_model, resolve_model

    monkeypatch.setenv(progress.ENV_VAR, "summary")
    name, directory = resolve_model(None)
    load_model(name, directory, is_default=True)
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert transformers_logging.is_progress_bar_enabled()  # the library's own setting is restored
