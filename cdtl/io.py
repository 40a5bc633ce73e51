"""Every file cdtl writes goes through here: atomic writes, content hashes checked on read, file locks.

A write goes to a temporary file beside its destination, is flushed to disk, and is then
renamed over it, so a reader (or a run killed midway) sees the old file or the new one,
never half of one. What cdtl reads back (caches, checkpoints, bundles) records the sha256
of its payload; :func:`check_hash` and :func:`read_json` turn a damaged file into a
:class:`CorruptFileError` that names the file, never a raw parser error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike

__all__ = [
    "CorruptFileError", "atomic_directory", "atomic_write", "bytes_hash", "check_hash", "file_hash", "file_lock",
    "move_aside", "read_json",
]


class CorruptFileError(ValueError):
    """A file cdtl wrote earlier is damaged (truncated, edited, or not what its hash says); the message names it."""

    def __init__(self, path: PathLike, problem: str, fix: str = "") -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}" + (f"; {fix}" if fix else ""))


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX only; elsewhere the rename itself is what we can do)."""
    if sys.platform.startswith("win"):  # pragma: no cover - no directory handles on Windows
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: PathLike, data: bytes | str | Callable[[Path], object], *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``.

    ``data`` is bytes, text (encoded with ``encoding``), or a function that writes a file
    at the temporary path it is given (e.g. ``lambda tmp: df.to_csv(tmp, index=False)``).
    The temporary file is removed on any failure, so nothing half-written is ever left.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        if callable(data):
            data(tmp)
            if not tmp.is_file():
                raise OSError(f"writing {path}: the writer produced no file at {tmp}")
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        else:
            payload = data.encode(encoding) if isinstance(data, str) else bytes(data)
            with open(tmp, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return path


@contextlib.contextmanager
def atomic_directory(target: PathLike, *, merge: bool = False) -> Iterator[Path]:
    """Fill a temporary folder beside ``target``; on success it becomes ``target`` in one rename.

    On any failure the temporary folder is removed and ``target`` is left as it was. An
    existing ``target`` is replaced (moved aside first, removed after the rename); with
    ``merge=True`` each new file is renamed into it instead, and its other files are kept.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} is a file; expected a folder (or nothing) there")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(target)
    tmp.mkdir()
    try:
        yield tmp
        if merge and target.exists():
            for path in sorted(tmp.rglob("*")):
                destination = target / path.relative_to(tmp)
                if path.is_dir():
                    destination.mkdir(exist_ok=True)
                else:
                    os.replace(path, destination)
            return
        old = None
        if target.exists():
            old = _temporary_name(target)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _fsync_directory(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def bytes_hash(data: bytes, algorithm: str = "sha256") -> str:
    """Hex digest of ``data``."""
    return hashlib.new(algorithm, data).hexdigest()


def file_hash(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_hash(path: PathLike, expected: str | None, *, what: str, fix: str = "") -> None:
    """Raise :class:`CorruptFileError` unless ``path`` exists and its sha256 is ``expected``."""
    path = Path(path)
    if expected is None:
        raise CorruptFileError(path, f"{what} has no recorded sha256 to check it against", fix)
    if not path.is_file():
        raise CorruptFileError(path, f"{what} is missing", fix)
    actual = file_hash(path)
    if actual != expected:
        raise CorruptFileError(path, f"{what} is damaged (sha256 {actual[:12]}..., recorded {expected[:12]}...)", fix)


def read_json(path: PathLike, *, what: str, fix: str = "") -> Any:
    """Parse a JSON file cdtl wrote; a missing, truncated or garbled one raises :class:`CorruptFileError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptFileError(path, f"{what} is missing", fix) from None
    except (UnicodeDecodeError, ValueError) as err:
        raise CorruptFileError(path, f"{what} is not valid JSON (truncated or edited? {err})", fix) from None


def move_aside(path: PathLike, label: str = "bad") -> Path:
    """Rename ``path`` to ``<name>.<label>-<time>`` beside it (never deleting it) and return the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.{label}-{stamp}")
    counter = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.{label}-{stamp}-{counter}")
        counter += 1
    os.replace(path, aside)
    return aside


@contextlib.contextmanager
def file_lock(path: PathLike, *, timeout: float | None = None, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes.

    The operating system releases the lock when its holder exits, even after ``kill -9``,
    so a crash never leaves a stale lock. ``waiting`` is printed once if another process
    holds the lock for more than a second; after ``timeout`` seconds a ``TimeoutError``
    names the lock file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - held open for the lock's lifetime; never written to
    started = time.monotonic()
    told = False
    try:
        while not _try_lock(handle):
            waited = time.monotonic() - started
            if timeout is not None and waited > timeout:
                raise TimeoutError(f"waited {waited:.0f} s for the lock {path} held by another process; "
                                   "if no other cdtl process is running, delete that file")
            if waiting and not told and waited > 1.0:
                print(waiting, file=sys.stderr)
                told = True
            time.sleep(0.1)
        yield
    finally:
        _unlock(handle)
        handle.close()


def _try_lock(handle: Any) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _unlock(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        with contextlib.suppress(OSError):
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    with contextlib.suppress(OSError):
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
