"""Items added through POST /items survive a restart, reach every replica that shares the store, and a damaged store is refused.

The apps run in-process (``serveapp``); two apps on one store file stand for two
replicas (they share nothing else: each has its own recommender, lock and refresh
thread, and takes the store's lock file through its own file handle).
"""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
from serveapp import AUTH, catalogue, running, wait_for
from servekit import toy_bundle

from cdtl.io import CorruptFileError
from cdtl.serve.store import (
    ItemStore,
    StoredItem,
    default_store_path,
    open_store,
    parse_store,
    store_bytes,
)

PENGUIN = {"item": "f-penguin", "text": "A comedy film about a penguin who opens a bakery", "title": "Penguin Bakery"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return toy_bundle(tmp_path_factory.mktemp("store") / "toy")


def _item(n: int, dim: int = 4) -> StoredItem:
    return StoredItem(f"x{n}", f"text {n}\nsecond line", f"title {n}", "enc", np.arange(dim, dtype=np.float32) + n)


def test_the_store_file_round_trips_and_names_itself_when_damaged(tmp_path):
    path = tmp_path / "s.items.jsonl"
    store = ItemStore(path)
    assert store.read() == ([], None)
    store.write([_item(1), _item(2)])
    items, signature = store.read()
    assert [i.item for i in items] == ["x1", "x2"] and signature == store.signature()
    np.testing.assert_array_equal(items[1].vector, _item(2).vector)
    good = path.read_bytes()
    damaged = {
        "hash": good.replace(b"title 1", b"title 9"),
        "truncated": good[: len(good) // 2],
        "header": b"not json\n" + good.partition(b"\n")[2],
        "empty": b"",
    }
    for data in damaged.values():
        with pytest.raises(CorruptFileError, match=str(path).replace(".", r"\.")):
            parse_store(data, path)
    bad_id = store_bytes([StoredItem("x\u0000y", "t", "t", "enc", np.zeros(2, np.float32))])
    with pytest.raises(CorruptFileError, match=r"line 2: item holds a control"):
        parse_store(bad_id, path)
    twice = store_bytes([_item(1), _item(1)])
    with pytest.raises(CorruptFileError, match="appears twice"):
        parse_store(twice, path)


def test_the_default_store_sits_beside_the_bundle_and_a_read_only_service_never_writes(tmp_path):
    bundle = tmp_path / "bundles" / "ml"
    bundle.mkdir(parents=True)
    assert default_store_path(bundle) == (tmp_path / "bundles" / "ml.items.jsonl").resolve()
    store = open_store(bundle, None, read_only=False)
    assert store.path == default_store_path(bundle) and store.writable
    assert not open_store(bundle, None, read_only=True).writable
    named = open_store(bundle, tmp_path / "elsewhere.jsonl", read_only=False)
    assert named.path == tmp_path / "elsewhere.jsonl"
    with pytest.raises(PermissionError, match="read-only"):
        ItemStore(tmp_path / "r.jsonl", writable=False).write([_item(1)])


def test_a_restart_serves_the_items_added_before_it(bundle, tmp_path):
    store = tmp_path / "items.jsonl"
    with running(bundle, items_store=store) as first:
        assert first.post("/items", json=PENGUIN, headers=AUTH).status_code == 201
        assert first.get("/ready").json()["n_items"] == 13
    with running(bundle, items_store=store) as second:
        assert second.get("/ready").json()["n_items"] == 13
        assert catalogue(second)["f-penguin"] == "Penguin Bakery"
        found = second.post("/similar-items", json={"text": PENGUIN["text"], "k": 1}).json()
        assert found["items"][0]["item"] == "f-penguin"
        assert second.post("/items", json=PENGUIN, headers=AUTH).status_code == 409
        reloaded = second.post("/reload", headers=AUTH).json()
        assert reloaded["carried_items"] == 1 and second.get("/ready").json()["n_items"] == 13


def test_two_replicas_on_one_store_serve_each_others_items_after_a_refresh(bundle, tmp_path):
    store = tmp_path / "shared.jsonl"
    with running(bundle, items_store=store, store_refresh=0.1) as a, running(bundle, items_store=store,
                                                                             store_refresh=0.1) as b:
        assert a.post("/items", json=PENGUIN, headers=AUTH).status_code == 201
        wait_for(lambda: "f-penguin" in catalogue(b), 10, "replica b serving a's item")
        other = {"item": "f-otter", "text": "A comedy film about an otter who runs a cafe"}
        assert b.post("/items", json=other, headers=AUTH).status_code == 201
        wait_for(lambda: "f-otter" in catalogue(a), 10, "replica a serving b's item")
        assert catalogue(a) == catalogue(b)
        assert a.post("/items", json=other, headers=AUTH).status_code == 409
        assert b.get("/ready", headers=AUTH).json()["store"]["file"] == str(store)


def test_two_replicas_adding_the_same_ids_at_once_one_wins_and_both_agree(bundle, tmp_path):
    store = tmp_path / "race.jsonl"
    with running(bundle, items_store=store, store_refresh=0.1) as a, running(bundle, items_store=store,
                                                                             store_refresh=0.1) as b:
        answers: dict[tuple[str, str], int] = {}
        start = threading.Barrier(2)

        def add(client, name: str) -> None:
            start.wait(30)
            for n in range(6):
                body = {"item": f"f-race{n}", "text": f"A comedy film number {n} told by replica {name}",
                        "title": f"race {n} by {name}"}
                answers[(name, body["item"])] = client.post("/items", json=body, headers=AUTH).status_code

        threads = [threading.Thread(target=add, args=(a, "a")), threading.Thread(target=add, args=(b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for n in range(6):
            assert sorted([answers[("a", f"f-race{n}")], answers[("b", f"f-race{n}")]]) == [201, 409], answers
        wait_for(lambda: catalogue(a) == catalogue(b), 10, "both replicas serving the same catalogue")
        stored, _ = ItemStore(store).read()
        winners = {s.item: s.title for s in stored}
        assert len(stored) == 6 and {i: t for i, t in catalogue(a).items() if i.startswith("f-race")} == winners
        for n in range(6):  # the title each replica serves is the one whose add answered 201
            winner = "a" if answers[("a", f"f-race{n}")] == 201 else "b"
            assert winners[f"f-race{n}"] == f"race {n} by {winner}"


def test_a_damaged_store_is_refused_by_name_and_the_bundle_alone_serves(bundle, tmp_path, caplog):
    store = tmp_path / "items.jsonl"
    with running(bundle, items_store=store) as first:
        assert first.post("/items", json=PENGUIN, headers=AUTH).status_code == 201
    good = store.read_bytes()
    for damaged in (good.replace(b"Penguin Bakery", b"Penguin Bakerz"), good[: len(good) // 2]):
        store.write_bytes(damaged)
        with caplog.at_level(logging.ERROR, logger="cdtl.serve"), running(bundle, items_store=store,
                                                                           store_refresh=0.1) as app:
            ready = app.get("/ready")
            assert ready.status_code == 200 and ready.json()["n_items"] == 12
            report = ready.json()["store"]
            assert report["status"] == "damaged" and store.name in report["detail"]
            assert str(tmp_path) not in json.dumps(ready.json())  # no folder to anyone without the token
            assert str(store) in app.get("/ready", headers=AUTH).json()["store"]["detail"]
            refused = app.post("/items", json={"item": "f-new", "text": "A comedy film about a kite"}, headers=AUTH)
            assert refused.status_code == 503 and "store" in refused.json()["detail"], refused.text
            assert app.post("/recommend", json={"user": "u01"}).status_code == 200
            assert store.read_bytes() == damaged  # never written over
            store.write_bytes(good)  # repaired: the next refresh serves its items and takes writes again
            wait_for(lambda: app.get("/ready").json()["n_items"] == 13, 10, "the repaired store read")
            assert app.get("/ready").json()["store"]["status"] == "ok"
            assert app.post("/items", json={"item": "f-kite", "text": "A comedy film about a kite"},
                            headers=AUTH).status_code == 201
        assert any(str(store) in r.getMessage() for r in caplog.records if r.name == "cdtl.serve")


def test_a_store_from_another_encoder_is_re_encoded_from_its_texts(bundle, tmp_path):
    store = tmp_path / "items.jsonl"
    with running(bundle, items_store=store) as first:
        assert first.post("/items", json=PENGUIN, headers=AUTH).status_code == 201
    items, _ = ItemStore(store).read()
    foreign = [StoredItem(i.item, i.text, i.title, "another-encoder", np.zeros_like(i.vector)) for i in items]
    ItemStore(store).write(foreign)
    with running(bundle, items_store=store) as app:  # zero vectors would not find it; its re-encoded text does
        found = app.post("/similar-items", json={"text": PENGUIN["text"], "k": 1}).json()
        assert found["items"][0]["item"] == "f-penguin"


def test_without_a_writable_store_post_items_is_a_503_that_names_the_flag(bundle, tmp_path):
    store = tmp_path / "items.jsonl"
    with running(bundle, token=None, read_only=True, items_store=store) as app:
        assert app.post("/items", json=PENGUIN).status_code == 403
        assert app.get("/ready").json()["store"]["writable"] is False
    from cdtl.serve.state import ServiceState

    with running(bundle, items_store=store) as app:
        state: ServiceState = app.service
        state.store = None  # what open_store gives when the bundle's folder is not writable and no store is named
        refused = app.post("/items", json=PENGUIN, headers=AUTH)
        assert refused.status_code == 503 and "--items-store" in refused.json()["detail"]


def test_a_folder_as_the_store_is_refused_before_the_service_starts(tmp_path):
    with pytest.raises(ValueError, match="is a folder; name a file in it"):
        open_store(tmp_path / "bundle", tmp_path, read_only=False)


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf")])
def test_a_refresh_interval_that_is_not_a_positive_number_of_seconds_is_refused(tmp_path, seconds):
    from cdtl.serve.app import create_app

    with pytest.raises(ValueError, match="--store-refresh must be a number of seconds"):
        create_app(tmp_path / "bundle", token="x" * 16, store_refresh=seconds)


def test_a_store_damaged_while_serving_is_refused_at_reload_and_no_served_item_is_lost(bundle, tmp_path):
    store = tmp_path / "items.jsonl"
    with running(bundle, items_store=store, store_refresh=0.1) as app:
        assert app.post("/items", json=PENGUIN, headers=AUTH).status_code == 201
        store.write_bytes(store.read_bytes().replace(b"Penguin Bakery", b"Penguin Bakerz"))
        reloaded = app.post("/reload", headers=AUTH)
        assert reloaded.status_code == 200 and reloaded.json()["carried_items"] == 1, reloaded.text
        ready = app.get("/ready").json()
        assert ready["n_items"] == 13 and ready["store"]["status"] == "damaged"
        assert catalogue(app)["f-penguin"] == "Penguin Bakery"
        assert app.post("/items", json={"item": "f-kite", "text": "A comedy film about a kite"},
                        headers=AUTH).status_code == 503
