"""Opening a bundle for serving: the text encoder it names must reproduce the bundle's probe vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from servekit import toy_bundle

from cdtl.serve.bundle import BundleError, read_bundle, write_bundle
from cdtl.serve.loading import load_encoder, load_recommender


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return toy_bundle(tmp_path_factory.mktemp("bundle") / "toy")


def test_an_encoder_that_does_not_reproduce_the_bundle_is_refused(bundle, tmp_path):
    b = read_bundle(bundle)
    encoder, check = load_encoder(b)
    assert check["min_probe_cosine"] > 0.9999
    tensors = {**b.tensors, "text": {**b.tensors["text"], "probe": torch.roll(b.tensors["text"]["probe"], 1, 0)}}
    write_bundle(tmp_path / "other", config=b.config, serving=b.serving, users=b.users, items=b.items, tensors=tensors)
    with pytest.raises(BundleError, match=r"text\.safetensors: the text encoder"):
        load_encoder(read_bundle(tmp_path / "other"))
    assert np.isfinite(encoder.encode(["a test"]).numpy()).all()


def test_load_recommender_without_text_serves_known_users_with_the_index_asked_for(bundle):
    rec = load_recommender(bundle, text=False, index={"kind": "exact"})
    assert rec.encoder is None and rec.encoder_check is None
    assert rec.index_settings.kind == "exact"
    answer = rec.recommend(user="u01", k=3)
    assert len(answer.items) == 3 and answer.scores == sorted(answer.scores, reverse=True)
    with_text = load_recommender(bundle)
    assert with_text.encoder is not None and with_text.encoder_check["min_probe_cosine"] > 0.9999
    assert with_text.recommend(user="u01", k=3).items == answer.items  # the encoder does not change a known user's answer
    with pytest.raises(ValueError, match="index kind must be one of"):
        load_recommender(bundle, text=False, index={"kind": "tree"})
