"""TrainConfig: unknown keys listed, bad values and types refused with the setting named."""

from __future__ import annotations

import pytest

from cdtl.train.config import TrainConfig


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
