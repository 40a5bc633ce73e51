"""ServiceState: loads the bundle, writes an added item through the store before serving it, shares it, keeps it on reload."""

from __future__ import annotations

import pytest
from serveapp import load
from servekit import toy_bundle

from cdtl.serve.monitoring import ServiceMetrics
from cdtl.serve.recommender import RequestError
from cdtl.serve.state import ServiceState
from cdtl.serve.store import ItemStore

TEXT = "A comedy film about a penguin who opens a bakery"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return toy_bundle(tmp_path_factory.mktemp("state") / "toy")


def _state(bundle, store=None) -> ServiceState:
    return ServiceState(bundle, load, metrics=ServiceMetrics({"/items"}), store=store)


def test_nothing_is_served_until_the_bundle_is_loaded_and_a_failed_load_says_why(bundle, tmp_path):
    state = _state(bundle)
    with pytest.raises(RequestError, match="still loading") as err:
        state.current()
    assert err.value.status == 503
    state.start()
    assert state.current().n_items == state.recommender.n_items and state.failure is None
    told = []
    broken = _state(tmp_path / "no-bundle")
    broken.start(on_fatal=told.append)
    assert broken.recommender is None and told == [broken.failure] and broken.failure


def test_an_added_item_is_in_the_store_before_it_is_served_and_its_id_is_taken(bundle, tmp_path):
    store = ItemStore(tmp_path / "items.jsonl")
    state = _state(bundle, store)
    state.start()
    before = state.current().n_items
    rec = state.add_item("f-penguin", TEXT, None)
    assert rec.n_items == before + 1 and rec.has_item("f-penguin")
    stored, _ = store.read()
    assert [(s.item, s.title) for s in stored] == [("f-penguin", TEXT)]  # a one-line text is its own title
    with pytest.raises(RequestError, match="already exists") as err:
        state.add_item("f-penguin", "another text", "Another")
    assert err.value.status == 409
    assert state.store_report(with_paths=False) == {**state.store_report(with_paths=True), "file": "items.jsonl"}


def test_another_replica_serves_the_item_after_a_refresh_and_a_reload_keeps_it(bundle, tmp_path):
    store = tmp_path / "items.jsonl"
    one, two = _state(bundle, ItemStore(store)), _state(bundle, ItemStore(store))
    one.start()
    two.start()
    assert two.refresh() is False  # nothing changed yet
    one.add_item("f-penguin", TEXT, "Penguin Bakery")
    assert not two.current().has_item("f-penguin")
    assert two.refresh() is True and two.current().has_item("f-penguin")
    old, new, carried = one.reload(bundle)
    assert new is not old and carried == 1 and one.current() is new and new.has_item("f-penguin")


def test_without_a_store_an_add_is_refused_and_paths_are_hidden_from_readers(bundle):
    state = _state(bundle)
    state.start()
    with pytest.raises(RequestError, match="--items-store") as err:
        state.add_item("f-x", TEXT, None)
    assert err.value.status == 503
    message = f"cannot read {bundle.resolve()}/manifest.json"
    assert state.hide(message, with_paths=False) == "cannot read toy/manifest.json"
    assert state.hide(message, with_paths=True) == message
