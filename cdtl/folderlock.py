"""One run at a time per output folder: a lock file inside it, taken before any data is loaded, released on exit.

``claim(folder)`` creates the folder if needed and takes an exclusive lock on
``folder/.cdtl-run.lock`` (the operating system's ``flock``, released when its holder
exits, even after ``kill -9``); the file records who holds it (pid, host, start time,
command), so a second run is refused naming the first. Opening the lock file and a
throw-away file is also the test that the folder can be written, so a read-only folder
is refused at the same moment, not after training. A lock file left by a run that ended
without releasing it is taken over with a message. ``release(folder)`` (also run at
exit) removes the lock file. Claims are per process: claiming a folder twice is harmless.
``claim(target, beside=True)`` locks ``target.lock`` next to ``target`` instead, for a folder
that is replaced whole by a rename (a bundle), which would carry a lock inside it away.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from cdtl.io import _try_lock, _unlock

LOCK_NAME = ".cdtl-run.lock"
_HELD: dict[Path, IO[bytes]] = {}  # resolved folder -> the open lock file this process holds


class FolderLockError(ValueError):
    """A folder that another run holds, or that cannot be written; the message names it and what to do."""


def lock_path(folder: str | os.PathLike[str], *, beside: bool = False) -> Path:
    """The lock file of ``folder``: inside it, or with ``beside`` next to it (``bundle`` -> ``bundle.lock``)."""
    folder = Path(folder).absolute() if beside else Path(folder)  # "." has a name once absolute
    if beside and not folder.name:
        raise FolderLockError(f"{folder} is the root of a file system: choose a folder inside it")
    return folder.with_name(folder.name + ".lock") if beside else folder / LOCK_NAME


def claim(folder: str | os.PathLike[str], *, beside: bool = False) -> Path:
    """Take ``folder`` (created if needed; with ``beside`` only its parent) for this process, or raise
    ``FolderLockError`` naming who holds it."""
    folder = Path(folder)
    try:
        (folder.absolute().parent if beside else folder).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FolderLockError(f"cannot create the output folder {folder}: {err.strerror or err}") from err
    lock = lock_path(folder, beside=beside)
    key = _key(lock)
    if key in _HELD:
        return folder
    handle = _locked(folder, lock)
    earlier = _holder(handle)
    if earlier and earlier.get("host") not in (None, socket.gethostname()):
        _let_go(handle, lock, remove=False)
        raise FolderLockError(f"{folder} is locked by a run on another machine ({describe(earlier)}); if that run "
                              f"has ended, delete {lock}")
    if earlier:
        gone = "is no longer running" if not _alive(earlier.get("pid")) else "no longer holds it"
        print(f"cdtl: {folder}: taking over the lock of a run that ended without releasing it ({describe(earlier)}; "
              f"that process {gone})", file=sys.stderr)
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:200]}
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(mine).encode())
    handle.flush()
    os.fsync(handle.fileno())
    _check_writable(lock.parent, handle, lock)
    _HELD[key] = handle
    return folder


def _locked(folder: Path, lock: Path) -> IO[bytes]:
    """The lock file, opened and locked by this process; refused if another process holds it."""
    for _ in range(10):  # the holder may remove the file between our open and our lock: then open the new one
        try:
            handle = open(os.open(lock, os.O_RDWR | os.O_CREAT, 0o644), "r+b")  # noqa: SIM115 - held while the run lasts
        except OSError as err:
            raise FolderLockError(f"{folder} cannot be written ({err.strerror or err}): choose a folder you can write "
                                  "to with --out") from None
        try:
            locked = _try_lock(handle)
        except OSError as err:  # a file system without locks (some network mounts): go on, and say so
            print(f"cdtl: {folder}: this file system cannot lock files ({err.strerror or err}); the run goes on "
                  "unlocked: start no second run on this folder until it ends", file=sys.stderr)
            return handle
        if not locked:
            holder = _holder(handle)
            handle.close()
            who = describe(holder) if holder else "its details are not written yet"
            raise FolderLockError(f"{folder} is in use by another run ({who}): wait for it to finish, or choose "
                                  "another --out")
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(lock)):
                return handle
        _unlock(handle)
        handle.close()
    raise FolderLockError(f"{folder}: could not take its lock {lock}; is another program removing it?")


def _check_writable(folder: Path, handle: IO[bytes], lock: Path) -> None:
    """Create and remove a file in ``folder`` (results are written through temporary files beside them)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".cdtl-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        _let_go(handle, lock, remove=True)
        raise FolderLockError(f"{folder} cannot be written ({err.strerror or err}): choose a folder you can write to "
                              "with --out") from None


def _holder(handle: IO[bytes]) -> dict[str, Any] | None:
    """What the lock file says about who holds (or held) it; None when it is empty or unreadable."""
    try:
        handle.seek(0)
        info = json.loads(handle.read(4096).decode("utf-8", "replace") or "null")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(pid: Any) -> bool:
    """Whether a process ``pid`` runs on this machine (a number that is not one is not running)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # it exists, owned by someone else (or the question cannot be asked): assume it runs
    return True


def describe(holder: dict[str, Any]) -> str:
    """``pid 123 on host, started 2026-01-01T10:00:00+00:00: cdtl run ...``."""
    text = f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
    return text + (f": {str(holder['command'])[:80]}" if holder.get("command") else "")


def _let_go(handle: IO[bytes], lock: Path, *, remove: bool) -> None:
    """Empty (so nobody takes it for a crashed run's) and remove the lock file, then unlock and close it."""
    with contextlib.suppress(OSError):
        if remove:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(lock)):
                lock.unlink()
    _unlock(handle)
    handle.close()


def release(folder: str | os.PathLike[str], *, beside: bool = False) -> None:
    """Give ``folder`` back (remove its lock file); nothing happens if this process does not hold it."""
    _release_lock(lock_path(folder, beside=beside))


def _key(lock: Path) -> Path:
    """A lock file's name in its folder's resolved path (the folder may be named by a link; the file is not followed)."""
    return lock.parent.resolve() / lock.name


def _release_lock(lock: Path) -> None:
    try:
        key = _key(lock)
    except OSError:
        return
    handle = _HELD.pop(key, None)
    if handle is not None:
        _let_go(handle, lock, remove=True)


def held(folder: str | os.PathLike[str], *, beside: bool = False) -> bool:
    """Whether this process holds ``folder``."""
    return _key(lock_path(folder, beside=beside)) in _HELD


@atexit.register
def _release_all() -> None:
    for key in list(_HELD):
        _release_lock(key)


__all__ = ["LOCK_NAME", "FolderLockError", "claim", "describe", "held", "lock_path", "release"]
