"""The Amazon pair from the public release: fetched from a loopback hub, verified, prepared into the offline tables."""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hub_server import ENTRY, HubServer, hub_source, release_files, sha256

import cdtl.data
from cdtl.data import download, hub, registry

ROOT = Path(__file__).resolve().parents[2]
PINNED = "meta_Home_and_Kitchen.jsonl"


@pytest.fixture
def files() -> dict[str, bytes]:
    return release_files()


@pytest.fixture
def colab_like(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, bytes]) -> dict:
    """No offline copy, an empty cache; the registry's hub source with its one pinned hash set to the served file's."""
    raw = copy.deepcopy(registry._raw())
    source = next(s for s in raw[ENTRY]["sources"] if s["kind"] == "hub")
    pinned = source["members"][PINNED]
    pinned["sha256"] = sha256(files[pinned["path"]])
    monkeypatch.setattr(registry, "_raw", lambda: raw)
    (tmp_path / "no-offline-copy").mkdir()
    monkeypatch.setenv("CDTL_AMAZON_FOOD_KITCHEN", str(tmp_path / "no-offline-copy"))
    monkeypatch.setenv("CDTL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CDTL_OFFLINE", raising=False)
    return raw


def test_fetch_verifies_prepares_and_loads_the_same_tables(colab_like, files, monkeypatch):
    publish = {path: sha256(body) for path, body in files.items()}
    with HubServer(files, publish=publish) as server:
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        data = cdtl.data.load(ENTRY)
        gets = [r for r in server.requests if r.startswith("GET")]
        again = cdtl.data.load(ENTRY)  # from the cache: nothing downloaded again
        assert len([r for r in server.requests if r.startswith("GET")]) == len(gets) == 4
    assert sorted(data.domains) == ["food", "kitchen"]
    shared = set(data.interactions.query("domain == 'food'")["user"]) & set(
        data.interactions.query("domain == 'kitchen'")["user"])
    assert len(shared) == 40
    titles = data.items.set_index("item")["title"]
    assert titles["K000000000"] == "Amazon Home product 0" and titles["F000000017"] == ""  # no metadata: no title
    first = data.interactions[data.interactions["user"] == "AB" + "0" * 26].sort_values("timestamp")
    assert first["domain"].tolist()[:2] == ["kitchen", "food"]  # position: the user's order in time, both domains
    assert len(again.interactions) == len(data.interactions)
    directory = download.fetch(ENTRY)
    marker = json.loads((directory / download.MARKER).read_text())
    assert marker["kind"] == "hub" and marker["counts"]["items_without_title"] == 2
    recorded = json.loads((directory.parent.parent / "downloads" / ENTRY / hub.RECORDED).read_text())
    assert recorded == {Path(p).name: h for p, h in publish.items()}


def test_the_prepared_files_match_the_offline_folders_columns(colab_like, files, monkeypatch):
    with HubServer(files) as server:
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        directory = download.fetch(ENTRY)
    with gzip.open(directory / "interactions.csv.gz", "rt") as fh:
        assert fh.readline().strip() == "user_id,item_id,domain,position"
    assert list(pd.read_csv(directory / "items.csv.gz").columns) == ["item_id", "domain", "title"]


def test_a_file_that_differs_from_the_hash_the_hub_publishes_is_refused(colab_like, files, monkeypatch):
    path = "benchmark/5core/rating_only/Grocery_and_Gourmet_Food.csv"
    tampered = {**files, path: files[path].replace(b",5.0,", b",1.0,")}
    with HubServer(tampered, publish={path: sha256(files[path])}) as server:
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        with pytest.raises(download.FetchError) as err:
            download.fetch(ENTRY)
    message = str(err.value)
    assert "refused" in message and "published by the hub" in message and sha256(files[path]) in message
    assert not list((Path(os.environ["CDTL_DATA_DIR"]) / "downloads" / ENTRY).glob("Grocery*"))  # never kept


def test_a_file_that_differs_from_the_pinned_hash_is_refused(colab_like, files, monkeypatch):
    path = hub_source()["members"][PINNED]["path"]
    with HubServer({**files, path: files[path] + b"\n"}) as server:
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        with pytest.raises(download.FetchError, match=r"\(registry\)"):
            download.fetch(ENTRY)


def test_hashes_recorded_on_first_use_refuse_a_changed_file_later(colab_like, files, monkeypatch, tmp_path):
    with HubServer(files) as server:  # no published hash: the first download is trusted and recorded
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        download.fetch(ENTRY)
    cache = tmp_path / "cache"
    for name in ("Grocery_and_Gourmet_Food.csv",):
        (cache / "downloads" / ENTRY / name).unlink()
    (cache / ENTRY / "hub" / download.MARKER).unlink()  # the prepared copy no longer verifies
    path = "benchmark/5core/rating_only/Grocery_and_Gourmet_Food.csv"
    with HubServer({**files, path: files[path] + b"AX,F000000001,5.0,1\n"}) as server:
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        with pytest.raises(download.FetchError, match=r"first use"):
            download.fetch(ENTRY)


def test_a_refused_download_is_one_message_saying_why_and_how_to_fix(colab_like, files, monkeypatch):
    with HubServer(files, status=403) as server:
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        with pytest.raises(download.FetchError) as err:
            cdtl.data.load(ENTRY)
    message = str(err.value)
    assert "HTTP Error 403" in message  # why
    assert "CDTL_AMAZON_FOOD_KITCHEN" in message  # how: the offline copy ...
    assert hub.HUB_VAR in message and server.url + "/datasets/McAuley-Lab/" in message  # ... or the files by hand


def test_offline_with_nothing_cached_downloads_nothing(colab_like, files, monkeypatch):
    monkeypatch.setenv("CDTL_OFFLINE", "1")
    with HubServer(files) as server:
        monkeypatch.setenv(hub.HUB_VAR, server.url)
        with pytest.raises(download.FetchError, match="offline"):
            download.fetch(ENTRY)
        assert server.requests == []


COLAB_SCRIPT = """
import cdtl.data
from cdtl.data.fewshot import few_shot_split
data = cdtl.data.load("amazon-food-kitchen")          # chapters 04 and 05: the pair, fetched on first use
few = few_shot_split(data, "kitchen", "food", shots=[0, 1, 3, 5], seed=0)
print("users", data.interactions["user"].nunique(), "domains", sorted(data.domains))
"""


@pytest.mark.slow
def test_a_colab_like_process_fetches_the_pair_the_chapters_use(tmp_path, files):
    """A fresh process, run from a folder with no shared/ above it: download, verification, preparation, split."""
    raw = copy.deepcopy(registry._raw())
    pinned = next(s for s in raw[ENTRY]["sources"] if s["kind"] == "hub")["members"][PINNED]
    publish = {p: sha256(b) for p, b in files.items()}
    # the real pinned hash cannot match a test file: the registry in that process pins the served file's instead
    patch = tmp_path / "sitecustomize.py"
    patch.write_text("import json, cdtl.data.registry as r\n"
                     f"raw = json.loads({json.dumps(json.dumps(raw))})\n"
                     f"raw[{ENTRY!r}]['sources'][1]['members'][{PINNED!r}]['sha256'] = {sha256(files[pinned['path']])!r}\n"
                     "r._raw = lambda: raw\n")
    work = tmp_path / "colab"
    work.mkdir()
    with HubServer(files, publish=publish) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDTL_")}
        env.update(CDTL_DATA_DIR=str(tmp_path / "cache"), CDTL_HUB_URL=server.url, PYTHONPATH=str(tmp_path),
                   CDTL_AMAZON_FOOD_KITCHEN=str(work / "absent"))
        done = subprocess.run([sys.executable, "-c", COLAB_SCRIPT], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "users 100 domains ['food', 'kitchen']" in done.stdout
    assert (tmp_path / "cache" / ENTRY / "hub" / "items.csv.gz").exists()
