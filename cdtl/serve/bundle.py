"""A serving bundle: one folder holding what a recommendation service needs and nothing else, every file hashed; no pickle.

Layout (format version 1)::

    manifest.json            format, format version, cdtl version, the versions that wrote it (cdtl.versions),
                             and the sha256 and size of every other file
    config.json              the experiment config the models were trained with
    serving.json             how to serve them: domains, scorers, fusion settings, the text encoder's identity
    users.parquet            user ids in model row order, with their history lengths
    items.parquet            item ids of both domains: domain, title, text, training interactions
    histories.safetensors    each known user's source-domain history and seen target items (CSR arrays)
    text.safetensors         the language model's vector of every item, and of a few probe texts
    mf.safetensors           target-domain matrix factorisation (warm users)
    bridge.safetensors       the cold-user bridge and the transform of its text input
    fusion.safetensors       the fusion's gate, feature statistics and temperatures (optional)
    sequential.safetensors   a next-item model that reads an ordered history (optional; cdtl.serve.sequential)

Weights are safetensors, tables Parquet, settings JSON: nothing a reader executes.
``write_bundle`` writes the folder beside its destination and renames it into place, so a
bundle is complete or absent, and an existing bundle is replaced only when asked.
``read_bundle`` re-hashes every file from the bytes it then parses and refuses a bundle
with a wrong hash, a missing or unlisted file, or an unknown format version, naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from cdtl.io import atomic_directory, atomic_write

FORMAT = "cdtl.serve.bundle"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MANIFEST = "manifest.json"
JSON_FILES = ("config.json", "serving.json")
TABLES = ("users", "items")
TENSOR_FILES = ("histories", "text", "mf", "bridge", "fusion", "sequential")
OPTIONAL = ("fusion", "sequential")
HOLDS = {
    "config.json": "the experiment config the models were trained with",
    "serving.json": "how to serve: domains, scorers, fusion settings, the text encoder's identity",
    "users.parquet": "user ids in model row order, with their history lengths",
    "items.parquet": "item ids of both domains with domain, title, text and training interactions",
    "histories.safetensors": "each known user's source history and seen target items (CSR arrays)",
    "text.safetensors": "the language model's vector of every item and of the probe texts",
    "mf.safetensors": "target-domain matrix factorisation for warm users",
    "bridge.safetensors": "the cold-user bridge and the transform of its text input",
    "fusion.safetensors": "the fusion gate, its feature statistics and temperatures",
    "sequential.safetensors": "a next-item model that reads an ordered history of items of both domains",
}


class BundleError(ValueError):
    """A bundle that cannot be written or served; the message names the file and what is wrong."""


@dataclass
class Bundle:
    """A loaded, verified bundle: settings as dicts, tables as DataFrames, weights as tensors by file."""

    path: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    serving: dict[str, Any]
    users: pd.DataFrame
    items: pd.DataFrame
    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    @functools.cached_property
    def id(self) -> str:
        """A short content id: the first 12 hex digits of a sha256 over every file's name and sha256."""
        return bundle_id(self.manifest)

    def summary(self) -> dict[str, Any]:
        """What a client may want to know about the bundle being served (JSON-ready)."""
        return {"id": self.id, "path": str(self.path), "format_version": self.manifest["format_version"],
                "cdtl_version": self.manifest["cdtl_version"], "created": self.manifest.get("created"),
                "files": len(self.manifest["files"]), **self.manifest.get("summary", {})}


def bundle_id(manifest: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for name in sorted(manifest["files"]):
        digest.update(f"{name}\0{manifest['files'][name]['sha256']}\n".encode())
    return digest.hexdigest()[:12]


def _table_bytes(frame: pd.DataFrame, name: str) -> bytes:
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and not values.map(lambda v: v is None or isinstance(v, str)).all():
            raise BundleError(f"{name}.parquet column {column!r} must hold strings or numbers (no Python objects)")
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buffer, index=False)
    return buffer.getvalue()


def _json_bytes(value: Any, name: str) -> bytes:
    try:
        return json.dumps(value, indent=2, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise BundleError(f"{name} must be plain JSON (str, numbers, bools, lists, dicts): {err}") from err


def _tensor_bytes(tensors: dict[str, torch.Tensor], name: str) -> bytes:
    if not tensors:
        raise BundleError(f"{name}.safetensors would be empty")
    clean = {}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise BundleError(f"{name}.safetensors entry {key!r} must be a tensor, got {type(value).__name__}")
        clean[key] = value.detach().cpu().contiguous()
    return save_tensors(clean)


def write_bundle(path: str | os.PathLike, *, config: dict[str, Any], serving: dict[str, Any], users: pd.DataFrame,
                 items: pd.DataFrame, tensors: dict[str, dict[str, torch.Tensor]], summary: dict[str, Any] | None = None,
                 overwrite: bool = False) -> Path:
    """Write a bundle folder at ``path`` (see the module docstring); returns its path.

    ``tensors`` maps each tensor file's stem (``TENSOR_FILES``) to its tensors. An existing
    folder at ``path`` raises FileExistsError unless ``overwrite``; even then the new
    bundle is complete on disk before the old one is removed.
    """
    path = Path(path)
    unknown = sorted(set(tensors) - set(TENSOR_FILES))
    missing = sorted(set(TENSOR_FILES) - set(OPTIONAL) - set(tensors))
    if unknown or missing:
        raise BundleError(f"tensor files: unknown {unknown}, missing {missing}; a bundle holds {list(TENSOR_FILES)}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another folder or ask to overwrite it (--overwrite)")
    payload: dict[str, bytes] = {name: _json_bytes(value, name)
                                 for name, value in (("config.json", config), ("serving.json", serving))}
    payload.update({f"{name}.parquet": _table_bytes(frame, name) for name, frame in (("users", users), ("items", items))})
    payload.update({f"{name}.safetensors": _tensor_bytes(values, name) for name, values in tensors.items()})
    from cdtl import __version__
    from cdtl.versions import versions

    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "cdtl_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "summary": summary or {},
                "versions": versions(),  # what wrote it (informational: a reader does not require it)
                "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "holds": HOLDS[name]}
                          for name, data in sorted(payload.items())}}
    payload[MANIFEST] = _json_bytes(manifest, MANIFEST)
    with atomic_directory(path) as folder:  # complete on disk before it replaces an older bundle
        for name, data in payload.items():
            atomic_write(folder / name, data)
    return path


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise BundleError(f"{path}: no bundle folder there")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError as err:
        raise BundleError(f"{path / MANIFEST}: missing; a bundle folder starts with its manifest") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path / MANIFEST}: not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path / MANIFEST}: not a cdtl bundle manifest (format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, "
                          f"expected {FORMAT!r})")
    version = manifest.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(f"{path / MANIFEST}: unknown format_version {version!r}; this cdtl "
                          f"reads {list(SUPPORTED_VERSIONS)} (export the bundle again with this cdtl, or upgrade cdtl)")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, dict) and "sha256" in v for v in files.values()):
        raise BundleError(f"{path / MANIFEST}: 'files' must map each file name to its sha256")
    return manifest


def _verified_bytes(path: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """Every listed file's bytes, each checked against the manifest; missing or unlisted files refused."""
    files = manifest["files"]
    required = [*JSON_FILES, *(f"{t}.parquet" for t in TABLES),
                *(f"{t}.safetensors" for t in TENSOR_FILES if t not in OPTIONAL)]
    absent_from_manifest = [name for name in required if name not in files]
    if absent_from_manifest:
        raise BundleError(f"{path / MANIFEST}: does not list {absent_from_manifest}")
    on_disk = {p.name for p in path.iterdir()} - {MANIFEST}
    unlisted = sorted(on_disk - set(files))
    if unlisted:
        raise BundleError(f"{path / unlisted[0]}: not listed in the manifest; a bundle holds only its listed files")
    out = {}
    for name, entry in files.items():
        if name not in HOLDS:
            raise BundleError(f"{path / MANIFEST}: lists {name!r}, which is not a file of format {FORMAT_VERSION}")
        try:
            data = (path / name).read_bytes()
        except FileNotFoundError as err:
            raise BundleError(f"{path / name}: missing (the manifest lists it)") from err
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise BundleError(f"{path / name}: sha256 {digest[:16]}... does not match the manifest's "
                              f"{str(entry['sha256'])[:16]}...; the file was changed after export: export it again")
        out[name] = data
    return out


def verify_bundle(path: str | os.PathLike) -> dict[str, Any]:
    """Check a bundle's manifest and every file's hash without loading it; returns the manifest."""
    path = Path(path)
    manifest = _read_manifest(path)
    _verified_bytes(path, manifest)
    return manifest


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Load and verify a bundle (see the module docstring); a ``BundleError`` names the file at fault."""
    path = Path(path).resolve()
    manifest = _read_manifest(path)
    data = _verified_bytes(path, manifest)
    parsed: dict[str, Any] = {}
    for name, raw in data.items():
        try:
            if name.endswith(".json"):
                parsed[name] = json.loads(raw)
            elif name.endswith(".parquet"):
                parsed[name] = pd.read_parquet(io.BytesIO(raw))
            else:
                parsed[name] = load_tensors(raw)
        except Exception as err:  # a hashed file that still does not parse was written wrong
            raise BundleError(f"{path / name}: cannot be read ({type(err).__name__}: {err})") from err
    return Bundle(path=path, manifest=manifest, config=parsed["config.json"], serving=parsed["serving.json"],
                  users=parsed["users.parquet"], items=parsed["items.parquet"],
                  tensors={name.removesuffix(".safetensors"): value for name, value in parsed.items()
                           if name.endswith(".safetensors")})


__all__ = ["FORMAT", "FORMAT_VERSION", "HOLDS", "Bundle", "BundleError", "bundle_id", "read_bundle", "verify_bundle",
           "write_bundle"]
