"""An on-disk embedding cache keyed by encoder identity and text, so encoding the same catalogue twice is a lookup.

Layout under ``root`` (one directory per encoder identity, so a cache written by one
model, pooling or max_length is never read for another)::

    <identity key>/                 first 32 hex digits of sha256(identity as canonical JSON)
        identity.json               {"format": 1, "identity": {...}}; compared with the requested identity on open
        shards/<name>.safetensors   "embeddings": float32 (rows, dim)
        shards/<name>.json          the shard's index: {"format": 2, "rows": n, "dim": d, "keys": [...],
                                    "sha256": sha256 of the .safetensors file}; keys[i] is sha256(text) of
                                    row i, and <name> is the start of sha256 of the keys joined by newlines

The index is one JSON file per shard (together they map text hash -> shard, row) rather
than one growing file: adding a shard never rewrites earlier ones, so filling the cache
costs time linear in the catalogue. Both files of a shard are written to a temporary
name and renamed into place, the index last, so a shard exists only once complete: a
run killed midway leaves every finished shard readable, and the next run skips them.

Every read is checked: a shard whose file does not match its recorded sha256, or whose
index is garbled or names other keys, is dropped with a warning naming the file, and
its texts are encoded again (``DamagedShardError`` tells the encoder to do so). An index
written before hashes were recorded (format 1) gets its hash on first read.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as _safetensors_load
from safetensors.torch import save as _safetensors_bytes

from cdtl.io import CorruptFileError, atomic_write, bytes_hash, read_json

FORMAT = 1  # of identity.json
SHARD_FORMAT = 2  # of a shard's index: 2 records the sha256 of the embeddings file, 1 did not
_ROW_BITS = 32  # a location is shard_index << 32 | row, packed in one int


def text_key(text: str) -> str:
    """The cache key of a text: the hex sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DamagedShardError(CorruptFileError):
    """A cached shard failed its check and was dropped: encode its texts again (the warning named the file)."""


def identity_key(identity: Mapping[str, Any]) -> str:
    """The directory name for an encoder identity: sha256 of its canonical JSON, 32 hex digits."""
    return hashlib.sha256(_canonical_json(identity).encode("utf-8")).hexdigest()[:32]


@dataclass
class CacheStats:
    """Texts served from the cache (hits) and texts that had to be encoded (misses)."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        """hits / (hits + misses), 0.0 before any lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def reset(self) -> None:
        """Start counting from zero."""
        self.hits = 0
        self.misses = 0


class EmbeddingCache:
    """Embeddings on disk under ``root``, looked up by (encoder identity, sha256 of the text).

    ``missing`` says which keys still need encoding, ``put`` stores one shard (a chunk
    of texts and their embeddings) atomically, ``get`` gathers rows in the order asked
    with one index operation per shard. ``stats`` is counted by the caller that knows
    what a hit is (``TextEncoder``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.stats = CacheStats()
        self._stores: dict[str, _Store] = {}

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r}, stats={self.stats})"

    def directory(self, identity: Mapping[str, Any]) -> Path:
        """The directory holding this identity's shards (created on the first ``put``)."""
        return self._store(identity).directory

    def size(self, identity: Mapping[str, Any]) -> int:
        """How many distinct texts are cached for this identity."""
        store = self._store(identity)
        store.refresh()
        return len(store.locations)

    def missing(self, identity: Mapping[str, Any], keys: Sequence[str]) -> list[int]:
        """Positions in ``keys`` whose embedding is not cached yet."""
        store = self._store(identity)
        store.refresh()
        locations = store.locations
        return [i for i, key in enumerate(keys) if key not in locations]

    def get(self, identity: Mapping[str, Any], keys: Sequence[str]) -> torch.Tensor:
        """The cached embeddings of ``keys``, in order, as float32 (len(keys), dim)."""
        return self._store(identity).get(keys)

    def put(self, identity: Mapping[str, Any], keys: Sequence[str], embeddings: torch.Tensor) -> None:
        """Store ``embeddings`` (len(keys), dim) as one shard; a chunk already stored is not written again."""
        self._store(identity).put(keys, embeddings)

    def _store(self, identity: Mapping[str, Any]) -> _Store:
        key = identity_key(identity)
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = _Store(self.root / key, identity)
        return store


class _Store:
    """The shards of one identity: a key -> location map kept in memory, shards read on demand."""

    def __init__(self, directory: Path, identity: Mapping[str, Any]) -> None:
        self.directory = directory
        self.shards_dir = directory / "shards"
        self.identity = json.loads(_canonical_json(identity))
        self.names: list[str] = []  # shard names; a location's shard index points in here
        self.rows: list[int] = []
        self.hashes: list[str | None] = []  # sha256 of each shard's file (None: format 1, not yet recorded)
        self.locations: dict[str, int] = {}
        self.dim: int | None = None
        if (directory / "identity.json").exists():
            self._check_identity()
        self.refresh()

    def _create(self) -> None:
        """Make the directory on the first write (reads never create anything), identity.json first."""
        if not (self.directory / "identity.json").exists():
            self.shards_dir.mkdir(parents=True, exist_ok=True)
            identity = json.dumps({"format": FORMAT, "identity": self.identity}, indent=2, sort_keys=True)
            atomic_write(self.directory / "identity.json", identity)
        self._check_identity()  # another process may have created it for another identity in between

    def _check_identity(self) -> None:
        path = self.directory / "identity.json"
        try:
            stored = read_json(path, what="embedding cache identity")
        except CorruptFileError as err:  # the folder's name is the hash of the identity: rewrite what it must say
            warnings.warn(f"{err}; rewriting it from the folder's identity", stacklevel=4)
            stored = {"format": FORMAT, "identity": self.identity}
            atomic_write(path, json.dumps(stored, indent=2, sort_keys=True))
        if stored.get("format") != FORMAT or stored.get("identity") != self.identity:
            raise ValueError(
                f"embedding cache {self.directory} was written for a different encoder:\n"
                f"  stored:    {_canonical_json(stored.get('identity'))}\n"
                f"  requested: {_canonical_json(self.identity)}\n"
                "it is never read for another encoder; delete the directory or use another cache root"
            )

    def refresh(self) -> None:
        """Take in shards written since the last look (by this or another process); drop damaged ones."""
        known = set(self.names)
        for index_path in sorted(self.shards_dir.glob("*.json")):
            name = index_path.stem
            if name in known or not (self.shards_dir / f"{name}.safetensors").exists():
                continue
            try:
                index = self._read_index(index_path)
            except CorruptFileError as err:
                self._discard(name, str(err))
                continue
            self._check_dim(int(index["dim"]), index_path)
            self._register(name, index["keys"], index.get("sha256"))

    def _read_index(self, path: Path) -> dict[str, Any]:
        """A shard's index, checked: readable JSON, a known format, one key per row, keys that match the name."""
        index = read_json(path, what="embedding cache shard index")
        try:
            keys, rows, dim, fmt = index["keys"], int(index["rows"]), int(index["dim"]), index["format"]
        except (KeyError, TypeError, ValueError):
            raise CorruptFileError(path, "shard index lacks keys, rows, dim or format") from None
        if fmt not in (1, SHARD_FORMAT) or not isinstance(keys, list) or len(keys) != rows or dim < 1:
            raise CorruptFileError(path, f"shard index is malformed (format {fmt!r}, {rows} rows, dim {dim})")
        if fmt == SHARD_FORMAT and not isinstance(index.get("sha256"), str):
            raise CorruptFileError(path, "shard index records no sha256")
        if not all(isinstance(k, str) for k in keys) or _shard_name(keys) != path.stem:
            raise CorruptFileError(path, "shard index keys do not match the shard's name (edited?)")
        return index

    def _discard(self, name: str, why: str) -> None:
        """Remove a damaged shard (both files) with a warning naming it; its texts are encoded again."""
        warnings.warn(f"embedding cache: {why}; dropped that shard, its texts will be encoded again", stacklevel=3)
        for suffix in (".json", ".safetensors"):  # the index first: without it the shard does not exist
            (self.shards_dir / f"{name}{suffix}").unlink(missing_ok=True)
        if name in self.names:
            shard = self.names.index(name)
            self.locations = {k: v for k, v in self.locations.items() if v >> _ROW_BITS != shard}
            self.hashes[shard] = None
            self.names[shard] = ""  # keeps the other shards' indices; "" never matches a real name

    def _register(self, name: str, keys: Sequence[str], sha256: str | None) -> None:
        shard = len(self.names)
        self.names.append(name)
        self.rows.append(len(keys))
        self.hashes.append(sha256)
        locations = self.locations
        base = shard << _ROW_BITS
        for row, key in enumerate(keys):
            locations.setdefault(key, base | row)  # a key in two shards: the first one wins

    def _check_dim(self, dim: int, where: object) -> None:
        if self.dim is None:
            self.dim = dim
        elif dim != self.dim:
            raise ValueError(f"embedding cache {self.directory}: {where} has dim {dim}, the cache holds dim {self.dim}")

    def get(self, keys: Sequence[str]) -> torch.Tensor:
        locations = self.locations
        try:
            codes = np.fromiter((locations[key] for key in keys), dtype=np.int64, count=len(keys))
        except KeyError:
            self.refresh()
            absent = sum(key not in self.locations for key in keys)
            if absent:
                raise KeyError(f"{absent} of {len(keys)} texts are not in the embedding cache {self.directory}") from None
            return self.get(keys)
        out = torch.empty(len(keys), self.dim or 0, dtype=torch.float32)
        if not len(keys):
            return out
        shards = codes >> _ROW_BITS
        rows = codes & ((1 << _ROW_BITS) - 1)
        order = np.argsort(shards, kind="stable")
        bounds = np.flatnonzero(np.diff(shards[order])) + 1
        for positions in np.split(order, bounds):  # one group per shard: one read, one gather
            embeddings = self._load(int(shards[positions[0]]))
            wanted = rows[positions]
            first, count = int(positions[0]), len(positions)
            if positions[-1] - first == count - 1 and wanted[-1] - wanted[0] == count - 1 and (np.diff(wanted) == 1).all():
                out[first:first + count] = embeddings[int(wanted[0]):int(wanted[0]) + count]  # a run in order: one copy
            else:
                out.index_copy_(0, torch.from_numpy(positions), embeddings.index_select(0, torch.from_numpy(wanted)))
        return out

    def _load(self, shard: int) -> torch.Tensor:
        """A shard's embeddings, after checking its sha256 (and shape); a damaged one is dropped."""
        name = self.names[shard]
        path = self.shards_dir / f"{name}.safetensors"
        embeddings, digest, problem = None, "", None
        try:
            payload = path.read_bytes()
            digest = bytes_hash(payload)
        except OSError as err:
            problem = f"cannot be read ({err.strerror or err})"
        recorded = self.hashes[shard]
        if problem is None and recorded is not None and digest != recorded:
            problem = f"does not match its recorded sha256 ({digest[:12]}... != {recorded[:12]}...)"
        if problem is None:
            try:
                embeddings = _safetensors_load(payload)["embeddings"]
            except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for any garbage
                problem = f"is not a readable safetensors file ({type(err).__name__})"
        if embeddings is not None and tuple(embeddings.shape) != (self.rows[shard], self.dim):
            problem = f"holds shape {tuple(embeddings.shape)}, its index says ({self.rows[shard]}, {self.dim})"
        if problem is not None:
            self._discard(name, f"shard {path} {problem}")
            raise DamagedShardError(path, f"damaged shard {problem}", "dropped; encode its texts again")
        if recorded is None:  # format 1: record the hash now that the file has passed every other check
            keys = read_json(self.shards_dir / f"{name}.json", what="embedding cache shard index")["keys"]
            self._write_index(name, keys, digest)
            self.hashes[shard] = digest
        return embeddings

    def _write_index(self, name: str, keys: list[str], sha256: str) -> None:
        index = {"format": SHARD_FORMAT, "rows": len(keys), "dim": self.dim, "keys": keys, "sha256": sha256}
        atomic_write(self.shards_dir / f"{name}.json", json.dumps(index))

    def put(self, keys: Sequence[str], embeddings: torch.Tensor) -> None:
        keys = list(keys)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(keys):
            raise ValueError(f"embeddings must have shape (len(keys)={len(keys)}, dim), got {tuple(embeddings.shape)}")
        if not keys:
            return
        self._check_dim(int(embeddings.shape[1]), "the new shard")
        name = _shard_name(keys)  # same chunk -> same shard
        if name in self.names:
            return
        self._create()
        data = _safetensors_bytes({"embeddings": embeddings.detach().to("cpu", torch.float32).contiguous()})
        atomic_write(self.shards_dir / f"{name}.safetensors", data)
        digest = bytes_hash(data)
        self._write_index(name, keys, digest)  # last: the shard now exists
        self._register(name, keys, digest)


def _canonical_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except TypeError as err:
        raise ValueError(f"an encoder identity must be JSON-serialisable (str, int, float, bool, lists, dicts): {err}") from err


def _shard_name(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode("ascii", "replace")).hexdigest()[:32]


__all__ = ["CacheStats", "DamagedShardError", "EmbeddingCache", "identity_key", "text_key"]
