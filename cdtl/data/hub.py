"""Files of one pinned revision of a dataset repository on the Hugging Face hub, downloaded and hash-checked.

A file's expected sha256 is, in this order: the value pinned in the registry; else the
sha256 the hub publishes for that file at the pinned revision (the Git LFS object id, sent
as ``X-Linked-Etag`` when the file is asked for without following the redirect to storage);
else the hash recorded on this machine the first time the file was downloaded
(trust on first use), which every later download and every cached copy must match.
The hub's address is ``$CDTL_HUB_URL`` (default https://huggingface.co), so a mirror or a
test server can stand in for it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path

from cdtl.data.registry import Source
from cdtl.io import atomic_write, file_hash, move_aside

HUB_VAR = "CDTL_HUB_URL"
DEFAULT_HUB = "https://huggingface.co"
RECORDED = "hub-sha256.json"  # per dataset, in the downloads folder: hashes recorded on first use
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hub_url() -> str:
    """The hub's base address: ``$CDTL_HUB_URL`` or https://huggingface.co (no trailing slash)."""
    return (os.environ.get(HUB_VAR) or DEFAULT_HUB).rstrip("/")


def file_url(source: Source, path: str) -> str:
    """The download address of ``path`` at the source's pinned revision (the hub's ``resolve`` route)."""
    return f"{hub_url()}/datasets/{source.repo}/resolve/{source.revision}/{path}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # keep the hub's own answer: its headers carry the published hash


def published_sha256(url: str, timeout: float = 30.0) -> str | None:
    """The sha256 the hub publishes for the file at ``url`` (``X-Linked-Etag``), or None where it sends none."""
    request = urllib.request.Request(url, method="HEAD")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        response = opener.open(request, timeout=timeout)
        headers = response.headers
        response.close()
    except urllib.error.HTTPError as err:  # a 302 to storage arrives here: its headers are what we want
        headers = err.headers
        if err.code >= 400:
            return None
    except OSError:
        return None
    for key in ("X-Linked-Etag", "ETag"):
        value = (headers.get(key) or "").strip().removeprefix("W/").strip('"').lower()
        if _SHA256.match(value):
            return value
    return None


def _recorded(folder: Path) -> dict[str, str]:
    path = folder / RECORDED
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}


def _record(folder: Path, hashes: dict[str, str]) -> None:
    atomic_write(folder / RECORDED, json.dumps(dict(sorted(hashes.items())), indent=2) + "\n")


def expected_hash(source: Source, local: str, recorded: dict[str, str]) -> tuple[str | None, str]:
    """A member's expected sha256 and where it comes from ("registry", "first use" or "" when unknown)."""
    member = source.members[local]
    if isinstance(member, dict) and member.get("sha256"):
        return member["sha256"], "registry"
    if local in recorded:
        return recorded[local], "first use"
    return None, ""


def _place_checked(path: Path, expected: str | None, origin: str) -> bool:
    """True if a file already in the downloads folder matches; a mismatch is moved aside (never deleted)."""
    if not path.exists():
        return False
    if expected is None:
        return False  # nothing to check it against: download it again and record what the hub sends
    digest = file_hash(path)
    if digest == expected:
        return True
    aside = move_aside(path, "hash-mismatch")
    warnings.warn(f"hash mismatch: {path} has sha256 {digest}, expected {expected} ({origin}); "
                  f"moved it aside to {aside.name}, not deleted", stacklevel=4)
    return False


def obtain(dataset: str, source: Source, downloads: Path, offline: bool,
           download: Callable[[str, Path], None]) -> dict[str, Path]:
    """Every member of a hub source in ``downloads/<dataset>/``, each verified; ``OSError`` says which failed and why."""
    folder = downloads / dataset
    folder.mkdir(parents=True, exist_ok=True)
    recorded = _recorded(folder)
    paths: dict[str, Path] = {}
    for local, member in source.members.items():
        path = folder / local
        remote = member["path"] if isinstance(member, dict) else member
        expected, origin = expected_hash(source, local, recorded)
        if _place_checked(path, expected, origin):
            paths[local] = path
            continue
        url = file_url(source, remote)
        if offline:
            raise OSError(f"offline (CDTL_OFFLINE is set) and {path} is not in the cache")
        published = published_sha256(url)
        if expected and published and published != expected:
            raise OSError(f"{remote}: the hub publishes sha256 {published} at revision {source.revision}, "
                          f"but {expected} is expected ({origin}); the file changed, nothing was downloaded")
        if expected is None and published:
            expected, origin = published, "published by the hub"
        paths[local] = _download_checked(url, path, expected, origin, download)
        recorded[local] = file_hash(paths[local])
        _record(folder, recorded)
    return paths


def _download_checked(url: str, path: Path, expected: str | None, origin: str,
                      download: Callable[[str, Path], None]) -> Path:
    """Download ``url`` to ``path`` through a private temporary folder; a copy whose hash is wrong is never kept."""
    last = ""
    for _attempt in range(2):  # a truncated transfer gets one more try
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            got = Path(tmp) / path.name
            download(url, got)
            digest = file_hash(got)
            if expected is None or digest == expected:
                os.replace(got, path)
                return path
            last = f"{url}: sha256 {digest}, expected {expected} ({origin})"
    raise OSError(f"refused {last}: a different or damaged file")
