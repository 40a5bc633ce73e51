"""The embedding cache checks what it reads: damaged shards are dropped with a warning naming them, then re-encoded."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import probes
import pytest
import torch

from cdtl.encoders import EmbeddingCache, TextEncoder, text_key
from cdtl.encoders.cache import DamagedShardError

IDENTITY = {"model": "test", "dim": 3}
KEYS = [text_key(str(i)) for i in range(4)]
VECTORS = torch.arange(12, dtype=torch.float32).reshape(4, 3)


def _one_shard(root: Path) -> tuple[Path, Path]:
    EmbeddingCache(root).put(IDENTITY, KEYS, VECTORS)
    (weights,) = root.rglob("*.safetensors")
    return weights, weights.with_suffix(".json")


def test_the_index_records_the_sha256_of_its_shard(tmp_path):
    import hashlib

    weights, index = _one_shard(tmp_path)
    recorded = json.loads(index.read_text())
    assert recorded["format"] == 2 and recorded["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty", "delete"])
def test_a_damaged_shard_is_dropped_with_a_warning_naming_it(tmp_path, damage):
    weights, index = _one_shard(tmp_path)
    if damage != "delete":
        probes.damage(weights, damage)
    cache = EmbeddingCache(tmp_path)
    if damage == "delete":  # the file vanishes after the index was read
        cache.missing(IDENTITY, KEYS)
        weights.unlink()
    with pytest.warns(UserWarning, match=rf"shard {weights}.*dropped that shard, its texts will be encoded again"), \
            pytest.raises(DamagedShardError, match=str(weights)):
        cache.get(IDENTITY, KEYS)
    assert cache.missing(IDENTITY, KEYS) == [0, 1, 2, 3]  # nothing of it is served any more
    assert not weights.exists() and not index.exists()
    cache.put(IDENTITY, KEYS, VECTORS)  # the same chunk is written again
    torch.testing.assert_close(EmbeddingCache(tmp_path).get(IDENTITY, KEYS), VECTORS)


@pytest.mark.parametrize("damage", ["garbage-json", "truncated-json", "edited-keys", "no-hash"])
def test_a_damaged_index_is_dropped_never_a_raw_json_error(tmp_path, damage):
    weights, index = _one_shard(tmp_path)
    text = index.read_text()
    if damage == "garbage-json":
        index.write_bytes(b"\xff\xfe not json")
    elif damage == "truncated-json":
        index.write_text(text[: len(text) // 2])
    elif damage == "edited-keys":
        stored = json.loads(text)
        stored["keys"][0], stored["keys"][1] = stored["keys"][1], stored["keys"][0]  # rows now answer for others
        index.write_text(json.dumps(stored))
    else:
        stored = json.loads(text)
        del stored["sha256"]
        index.write_text(json.dumps(stored))
    with pytest.warns(UserWarning, match=rf"{index}.*dropped that shard"):
        cache = EmbeddingCache(tmp_path)
        assert cache.missing(IDENTITY, KEYS) == [0, 1, 2, 3]
    assert not weights.exists()


def test_a_shard_from_before_hashes_gets_its_hash_on_first_read(tmp_path):
    weights, index = _one_shard(tmp_path)
    stored = json.loads(index.read_text())
    legacy = {k: v for k, v in stored.items() if k != "sha256"} | {"format": 1}
    index.write_text(json.dumps(legacy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(EmbeddingCache(tmp_path).get(IDENTITY, KEYS), VECTORS)
    assert json.loads(index.read_text()) == stored  # upgraded in place, with the hash of the file as it is


def test_a_garbled_identity_file_is_rewritten_from_the_folder_name(tmp_path):
    _one_shard(tmp_path)
    (identity,) = tmp_path.rglob("identity.json")
    identity.write_text("{ not json")
    with pytest.warns(UserWarning, match=rf"{identity}: embedding cache identity is not valid JSON"):
        vectors = EmbeddingCache(tmp_path).get(IDENTITY, KEYS)
    torch.testing.assert_close(vectors, VECTORS)
    assert json.loads(identity.read_text())["identity"] == IDENTITY


def test_the_encoder_re_encodes_a_damaged_shard(tmp_path):
    titles = ["Toy Story (1995)", "Heat (1995)", "Casino (1995)"]
    first = TextEncoder(cache_dir=tmp_path)
    vectors = first.encode(titles)
    (weights,) = tmp_path.rglob("*.safetensors")
    payload = bytearray(weights.read_bytes())
    payload[-5] ^= 0x01  # one bit of one float: loads fine, silently wrong without the hash
    weights.write_bytes(bytes(payload))
    again = TextEncoder(cache_dir=tmp_path)
    with pytest.warns(UserWarning, match=rf"shard {weights} does not match its recorded sha256"):
        repaired = again.encode(titles)
    torch.testing.assert_close(repaired, vectors, atol=1e-5, rtol=0)
    assert again.cache.stats.misses == len(titles)  # all three encoded again
    assert TextEncoder(cache_dir=tmp_path).encode(titles).equal(repaired)  # and the repaired shard now reads back
