"""The store of items added through ``POST /items``: one hashed JSON-lines file that a restart and every replica read.

A bundle is immutable, so items added while serving live beside it in one file (by
default ``<bundle folder>.items.jsonl`` next to the bundle folder, when that folder's
parent is writable; ``cdtl serve --items-store PATH`` names another, e.g. on a volume
that every replica mounts). Its first line is a header with the sha256 of the lines
after it; each further line is one item: id, text, title, and its text vector (float32,
base64) with the id of the encoder that made it. A replica whose bundle names another
encoder re-encodes the text instead.

Every write is a read-modify-write of the whole file under an exclusive lock file
(``<store>.lock``, released by the operating system even after ``kill -9``), and goes
through ``cdtl.io.atomic_write``: a reader sees the old file or the new one. So when two
replicas add the same id at once, the second one to take the lock finds the first one's
item and is refused. A damaged file (a wrong hash, broken JSON, a malformed record) is
never overwritten: ``read`` raises ``CorruptFileError`` naming it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cdtl.io import CorruptFileError, atomic_write, bytes_hash, file_lock

FORMAT = "cdtl.serve.items"
VERSION = 1
SUFFIX = ".items.jsonl"
LOCK_TIMEOUT = 10.0  # seconds a write waits for another replica's write
FIX = "move the file aside (the service then starts without its items) or restore it from a backup"


@dataclass(frozen=True)
class StoredItem:
    """One added item as the store keeps it; ``vector`` is the encoder's raw text vector (``encoder`` names the encoder)."""

    item: str
    text: str
    title: str
    encoder: str
    vector: np.ndarray
    line: bytes | None = field(default=None, compare=False, repr=False)  # as read from the file, when it was

    def record(self) -> dict:
        data = np.ascontiguousarray(self.vector, dtype="<f4").tobytes()
        return {"item": self.item, "text": self.text, "title": self.title, "encoder": self.encoder,
                "dim": int(self.vector.shape[0]), "vector": base64.b64encode(data).decode("ascii")}

    def to_line(self) -> bytes:
        """The item's line in the file (without its newline)."""
        if self.line is None:
            return json.dumps(self.record(), ensure_ascii=False, separators=(",", ":")).encode()
        return self.line


def default_store_path(bundle: str | os.PathLike) -> Path:
    """``<bundle folder>.items.jsonl`` beside the bundle folder (a bundle folder holds only its hashed files)."""
    bundle = Path(bundle).resolve()
    return bundle.with_name(bundle.name + SUFFIX)


def _item(record: object, line: int, path: Path, raw: bytes) -> StoredItem:
    from cdtl.serve.schemas import check_id, check_text

    def bad(problem: str) -> CorruptFileError:
        return CorruptFileError(path, f"line {line}: {problem}", FIX)

    if not isinstance(record, dict) or not {"item", "text", "title", "encoder", "dim", "vector"} <= set(record):
        raise bad("expected an object with item, text, title, encoder, dim and vector")
    checks = {"item": check_id, "title": check_id, "text": check_text}
    for key, check in checks.items():
        try:
            check(record[key])
        except ValueError as err:
            raise bad(f"{key} {err}") from None
    item, title, text, encoder = record["item"], record["title"], record["text"], str(record["encoder"])
    try:
        vector = np.frombuffer(base64.b64decode(record["vector"], validate=True), dtype="<f4").astype(np.float32)
    except (ValueError, TypeError, binascii.Error) as err:
        raise bad(f"the vector of {item[:80]!r} is not base64 float32 ({err})") from None
    if vector.shape[0] != record["dim"] or not np.isfinite(vector).all():
        raise bad(f"the vector of {item[:80]!r} is not {record['dim']} finite numbers")
    return StoredItem(item, text, title, encoder, vector, raw)


def parse_store(data: bytes, path: Path) -> list[StoredItem]:
    """The items of a store file's bytes; ``CorruptFileError`` naming ``path`` if anything is wrong."""
    head, _, body = data.partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError as err:
        raise CorruptFileError(path, f"the header line is not JSON ({err})", FIX) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CorruptFileError(path, f"not an added-item store (expected a header with format {FORMAT!r})", FIX)
    if header.get("version") != VERSION:
        raise CorruptFileError(path, f"store version {header.get('version')!r} is not supported (expected {VERSION})", FIX)
    actual = bytes_hash(body)
    if actual != header.get("sha256"):
        raise CorruptFileError(path, f"is damaged (sha256 {actual[:12]}..., recorded {str(header.get('sha256'))[:12]}...)",
                               FIX)
    items, seen = [], set()
    for number, line in enumerate(body.splitlines(), start=2):
        try:
            record = json.loads(line)
        except ValueError as err:
            raise CorruptFileError(path, f"line {number} is not JSON ({err})", FIX) from None
        found = _item(record, number, path, line)
        if found.item in seen:
            raise CorruptFileError(path, f"line {number}: item {found.item[:80]!r} appears twice", FIX)
        seen.add(found.item)
        items.append(found)
    if len(items) != header.get("count"):
        raise CorruptFileError(path, f"holds {len(items)} items, its header says {header.get('count')}", FIX)
    return items


def store_bytes(items: list[StoredItem]) -> bytes:
    """The file for ``items``: a header line with their count and sha256, then one JSON line per item."""
    body = b"".join(i.to_line() + b"\n" for i in items)
    header = {"format": FORMAT, "version": VERSION, "count": len(items), "sha256": bytes_hash(body)}
    return json.dumps(header).encode() + b"\n" + body


class ItemStore:
    """The store file at ``path``; ``writable=False`` never writes it (a read-only service or folder)."""

    def __init__(self, path: str | os.PathLike, *, writable: bool = True, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path, self.writable, self.lock_timeout = Path(path), writable, lock_timeout
        self.lock_path = self.path.with_name(self.path.name + ".lock")

        self._last: tuple[tuple, list[StoredItem]] | None = None  # (signature, items) of the last file read or written

    def signature(self) -> tuple[int, ...] | None:
        """(inode, mtime, ctime in ns, size) of the file, or None when there is none: a write changes it (a rename)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size

    def read(self) -> tuple[list[StoredItem], tuple[int, ...] | None]:
        """(items, signature of the file read); no file is an empty store. An unchanged file is not parsed again."""
        for _ in range(5):  # a write that renames between the stat and the read: read again
            before = self.signature()
            if before is None:
                return [], None
            if self._last is not None and self._last[0] == before:
                return list(self._last[1]), before
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as err:
                raise CorruptFileError(self.path, f"cannot be read ({err.strerror})", FIX) from None
            if self.signature() == before:
                items = parse_store(data, self.path)
                self._last = (before, items)
                return list(items), before
        raise CorruptFileError(self.path, "kept changing while it was read", "retry")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock file (one writer at a time, across processes)."""
        with file_lock(self.lock_path, timeout=self.lock_timeout):
            yield

    def write(self, items: list[StoredItem]) -> tuple[int, ...] | None:
        """Replace the file with ``items`` atomically (call under ``locked``); returns the new signature."""
        if not self.writable:
            raise PermissionError(f"{self.path}: the added-item store is read-only here")
        atomic_write(self.path, store_bytes(items))
        signature = self.signature()
        self._last = (signature, list(items))
        return signature


def open_store(bundle: str | os.PathLike, path: str | os.PathLike | None, *, read_only: bool) -> ItemStore | None:
    """The store a service uses: ``path`` if given, else the default beside ``bundle`` (see the module docstring).

    The default is used for writing only when the bundle's parent folder is writable; an
    existing default store in a read-only folder is still read. None: no store at all.
    """
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"--items-store {path} is a folder; name a file in it, e.g. {path / 'items.jsonl'}")
        return ItemStore(path, writable=not read_only and _can_write(path))
    default = default_store_path(bundle)
    writable = _can_write(default)
    if not writable and not default.exists():
        return None
    return ItemStore(default, writable=writable and not read_only)


def _can_write(path: Path) -> bool:
    """Whether ``path`` can be (re)placed: its folder, or the nearest one that exists, is writable."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


__all__ = ["FORMAT", "LOCK_TIMEOUT", "SUFFIX", "ItemStore", "StoredItem", "default_store_path", "open_store",
           "parse_store", "store_bytes"]
