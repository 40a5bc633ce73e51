"""Tensor files carry the sha256 of their payload: a damaged one is named, never read as if whole."""

from __future__ import annotations

import probes
import pytest
import torch
from safetensors.torch import save_file

from cdtl.encoders.whitening import PCAWhitening
from cdtl.io import CorruptFileError
from cdtl.tensorfile import DIGEST_KEY, load_tensors, save_tensors, tensor_digest

TENSORS = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3, dtype=torch.bfloat16),
           "n": torch.zeros(0)}


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    path = save_tensors(tmp_path / "sub" / "t.safetensors", TENSORS, {"epoch": "3"})
    tensors, header = load_tensors(path, what="test file")
    assert header == {"epoch": "3"}
    for name, tensor in TENSORS.items():
        assert tensors[name].dtype == tensor.dtype and torch.equal(tensors[name], tensor)


def test_the_digest_sees_values_names_dtypes_and_shapes():
    base = tensor_digest(TENSORS)
    assert tensor_digest({**TENSORS, "w": TENSORS["w"] + 1}) != base
    assert tensor_digest({**TENSORS, "w": TENSORS["w"].reshape(3, 2)}) != base
    assert tensor_digest({**TENSORS, "w": TENSORS["w"].double()}) != base
    assert tensor_digest({"v" if k == "w" else k: v for k, v in TENSORS.items()}) != base
    assert tensor_digest(dict(reversed(TENSORS.items()))) == base


@pytest.mark.parametrize("damage,match", [
    ("flip", "is damaged: its tensors do not match the sha256"),
    ("truncate", "is not a readable safetensors file"),
    ("garbage", "is not a readable safetensors file"),
    ("empty", "is not a readable safetensors file"),
    ("delete", "is missing"),
])
def test_a_damaged_file_is_named(tmp_path, damage, match):
    path = save_tensors(tmp_path / "t.safetensors", TENSORS)
    probes.damage(path, damage)
    with pytest.raises(CorruptFileError, match=rf"{path}: test file {match}"):
        load_tensors(path, what="test file")


def test_a_file_without_a_digest_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "old.safetensors"
    save_file({"w": TENSORS["w"]}, str(path), metadata={"x": "1"})
    with pytest.raises(CorruptFileError, match="records no content hash"):
        load_tensors(path, what="test file")
    tensors, header = load_tensors(path, what="test file", require_digest=False)
    assert header == {"x": "1"} and torch.equal(tensors["w"], TENSORS["w"])
    assert DIGEST_KEY not in header


def test_a_whitening_file_is_checked_on_load(tmp_path):
    w = PCAWhitening(dim=2).fit(torch.randn(50, 4, generator=torch.Generator().manual_seed(0)))
    path = w.save(tmp_path / "w.safetensors")
    payload = bytearray(path.read_bytes())
    payload[-1] ^= 0x01
    path.write_bytes(bytes(payload))
    with pytest.raises(CorruptFileError, match=rf"{path}: PCAWhitening file is damaged"):
        PCAWhitening.load(path)
