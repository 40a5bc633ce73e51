"""Finding a language model: bad names and paths named, a fingerprint of its files, layers frozen from the bottom."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch import nn

from cdtl.encoders.language_model import fingerprint, freeze_lowest_layers, resolve_model, revision, transformer_layers


def test_a_model_that_cannot_be_loaded_is_named_before_any_work(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from cdtl.encoders.language_model import check_loadable

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # an offline machine
    with pytest.raises(OSError, match=r"lm\.model: cannot load model 'cdtl-tests/no-such-model'.*hf download"):
        check_loadable("cdtl-tests/no-such-model", "lm.model")
    with pytest.raises(OSError, match="holds no config.json"):
        check_loadable(str(tmp_path), "lm.model")
    check_loadable(None)  # the packaged default


def test_a_name_resolves_to_a_hub_id_or_a_local_folder_and_a_bad_one_is_named(tmp_path):
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == ("sentence-transformers/all-MiniLM-L6-v2", None)
    assert resolve_model(str(tmp_path)) == (str(tmp_path), tmp_path.resolve())
    with pytest.raises(OSError, match="looks like a local path, but there is no directory"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="model must be a Hugging Face hub id"):
        resolve_model("  ")


def test_the_fingerprint_reads_the_model_files_only_and_the_revision_the_snapshot_folder(tmp_path):
    model = tmp_path / "snapshots" / "abc123"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"dim": 4}')
    (model / "model.safetensors").write_bytes(b"weights")
    first = fingerprint(model)
    assert len(first) == 64 and fingerprint(None) is None
    (model / "NOTES.md").write_text("not part of the model")
    assert fingerprint(model) == first
    (model / "model.safetensors").write_bytes(b"other weights")
    assert fingerprint(model) != first
    assert revision(model) == "abc123" and revision(tmp_path) is None and revision(None) is None


class _Tiny(nn.Module):
    """The shape of a transformer: embeddings, a config naming its layer count, and that many blocks."""

    def __init__(self, n_layers: int = 3) -> None:
        super().__init__()
        self.config = SimpleNamespace(num_hidden_layers=n_layers)
        self.embeddings = nn.Embedding(5, 2)
        self.encoder = nn.ModuleList(nn.Linear(2, 2) for _ in range(n_layers))


def test_freezing_stops_the_embeddings_and_the_lowest_layers_only():
    lm = _Tiny()
    assert transformer_layers(lm) is lm.encoder
    freeze_lowest_layers(lm, 0)
    assert all(p.requires_grad for p in lm.parameters())
    freeze_lowest_layers(lm, 2)
    assert not lm.embeddings.weight.requires_grad
    assert [all(not p.requires_grad for p in block.parameters()) for block in lm.encoder] == [True, True, False]
    odd = _Tiny()
    odd.config = SimpleNamespace(num_hidden_layers=7)
    with pytest.raises(ValueError, match="cannot find the 7 transformer layers of _Tiny"):
        transformer_layers(odd)
