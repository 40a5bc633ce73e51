"""The bundle: everything serving needs in hashed files, no pickle, and a refusal to load anything that is not as exported."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from servekit import toy_bundle, toy_trained

from cdtl.serve.bundle import FORMAT_VERSION, BundleError, read_bundle, verify_bundle, write_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return toy_bundle(tmp_path_factory.mktemp("bundle") / "toy")


def fresh_copy(bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    return copy


def test_manifest_lists_every_file_with_its_sha256_and_the_versions(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "cdtl.serve.bundle" and manifest["format_version"] == FORMAT_VERSION
    import cdtl

    assert manifest["cdtl_version"] == cdtl.__version__
    on_disk = {p.name for p in bundle.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert all(len(entry["sha256"]) == 64 and entry["bytes"] > 0 for entry in manifest["files"].values())
    assert {p.suffix for p in bundle.iterdir()} == {".json", ".parquet", ".safetensors"}  # nothing that unpickles


def test_the_bundle_holds_what_serving_needs(bundle):
    b = read_bundle(bundle)
    trained = toy_trained()
    assert torch.equal(b.tensors["mf"]["item_emb.weight"], trained.mf.item_emb.weight.detach())
    assert b.serving["encoder"]["model"] == trained.encoder.identity["model"]
    assert b.serving["fusion"]["mode"] == "user" and b.serving["fusion"]["scorers"] == ["mf", "lm_bridge", "popularity"]
    assert set(b.items["domain"]) == {"books", "films"} and {"item", "title", "text", "interactions"} <= set(b.items)
    assert len(b.users) == trained.cd.n_users and b.tensors["text"]["target"].shape == (trained.cd.n_target_items, 384)
    assert b.config == {"kind": "fusion", "name": "toy"} and len(b.id) == 12


def test_a_changed_byte_is_refused_naming_the_file(bundle, tmp_path):
    copy = fresh_copy(bundle, tmp_path)
    data = bytearray((copy / "mf.safetensors").read_bytes())
    data[-1] ^= 0x01
    (copy / "mf.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"mf\.safetensors: sha256"):
        read_bundle(copy)


@pytest.mark.parametrize("name", ["bridge.safetensors", "items.parquet", "serving.json"])
def test_a_missing_file_is_refused_naming_it(bundle, tmp_path, name):
    copy = fresh_copy(bundle, tmp_path)
    (copy / name).unlink()
    with pytest.raises(BundleError, match=f"{name}: missing"):
        verify_bundle(copy)


def test_an_unknown_format_version_or_an_unlisted_file_is_refused(bundle, tmp_path):
    copy = fresh_copy(bundle, tmp_path)
    (copy / "extra.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(BundleError, match=r"extra\.pkl: not listed"):
        read_bundle(copy)
    (copy / "extra.pkl").unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unknown format_version 99"):
        read_bundle(copy)


def test_an_existing_bundle_is_replaced_only_when_asked(bundle, tmp_path):
    copy = fresh_copy(bundle, tmp_path)
    b = read_bundle(copy)
    args = dict(config={"x": 1}, serving=b.serving, users=b.users, items=b.items, tensors=b.tensors)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_bundle(copy, **args)
    write_bundle(copy, **args, overwrite=True)
    assert read_bundle(copy).config == {"x": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_python_objects_never_enter_a_table(bundle, tmp_path):
    b = read_bundle(bundle)
    items = b.items.copy()
    items["title"] = [object()] * len(items)
    with pytest.raises(BundleError, match="title"):
        write_bundle(tmp_path / "x", config={}, serving=b.serving, users=b.users, items=items, tensors=b.tensors)
