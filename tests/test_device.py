"""choose_device: the CPU when asked or when nothing else is there, a clear error for an unknown or absent device."""

from __future__ import annotations

import pytest
import torch

from cdtl.device import choose_device


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert choose_device() == torch.device("cpu")
        assert choose_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda")
    with pytest.raises(ValueError, match="valid choices: auto, cpu, cuda"):
        choose_device("banana")
