"""What a running service holds and how it changes: the recommender, the store of added items, loads, adds and reloads.

Every request reads ``ServiceState.recommender`` once and answers from it; a reload
builds a new recommender and swaps it in with one assignment. Changes to the catalogue
(an item added here, items another replica added to the shared store, a reload) happen
one at a time under ``write_lock``, and across processes under the store's lock file.
The store (``cdtl.serve.store``) is read at start, on every reload, and whenever its file
changes (checked every ``store_refresh`` seconds); an item is served only once it is in
the store. A damaged store is never written: the service keeps serving what it has and
answers ``POST /items`` with 503 until the file is repaired or moved aside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdtl.io import CorruptFileError
from cdtl.serve.monitoring import ServiceMetrics
from cdtl.serve.recommender import Recommender, RequestError
from cdtl.serve.schemas import title_from_text
from cdtl.serve.store import ItemStore, StoredItem

log = logging.getLogger("cdtl.serve")
STORE_REFRESH = 2.0  # seconds between checks of the store file for items another replica added


class ServiceState:
    """The recommender being served, the added-item store, and the operations that change them (see the module)."""

    def __init__(self, bundle_path: Path, load: Callable[[Path], Recommender], *, metrics: ServiceMetrics,
                 store: ItemStore | None, store_refresh: float = STORE_REFRESH, token: str | None = None,
                 read_only: bool = False) -> None:
        self.bundle_path, self.load, self.metrics = bundle_path, load, metrics
        self.store, self.store_refresh = store, store_refresh
        self.token, self.read_only = token, read_only
        self.recommender: Recommender | None = None
        self.failure: str | None = None
        self.write_lock = threading.Lock()  # catalogue changes (adds, store refreshes, the swap of a reload), one at a time
        self.store_problem: str | None = None
        self.store_signature: tuple | None = None
        self.store_items = 0
        self.not_served: dict[str, str] = {}  # stored item id -> why this bundle does not serve it

    # ------------------------------------------------------------------ reading

    def current(self) -> Recommender:
        rec = self.recommender
        if rec is None:
            raise RequestError("service", "the bundle is still loading; retry when GET /ready answers 200", 503)
        return rec

    def start(self, on_fatal: Callable[[str], None] | None = None) -> None:
        """Load the bundle and the store (run in a background thread at start-up)."""
        try:
            rec = self.load(self.bundle_path)
        except Exception as err:  # the service cannot serve anything: say why, then stop
            self.failure = f"{type(err).__name__}: {err}"
            if on_fatal is not None:
                on_fatal(self.failure)
            return
        with self.write_lock:
            self._sync(rec)
            self.recommender = rec
        self.metrics.serving(rec.bundle.id, rec.n_items)

    def refresh(self) -> bool:
        """Re-read the store if its file changed since the last read; True when it was read."""
        rec = self.recommender
        if self.store is None or rec is None or self.store.signature() == self.store_signature:
            return False
        with self.write_lock:
            self._sync(self.current())
        self.metrics.catalogue.set(self.current().n_items)
        return True

    def _read_store(self) -> list[StoredItem] | None:
        """The store's items, or None (and ``store_problem`` set, logged once) when it is damaged."""
        try:
            items, self.store_signature = self.store.read()
        except CorruptFileError as err:
            if self.store_problem != str(err):
                log.error("cdtl serve: the added-item store is refused; serving without its changes, POST /items "
                          "answers 503 until it is repaired: %s", err)
            self.store_problem, self.store_signature = str(err), self.store.signature()
            self.metrics.store_reads.labels("damaged").inc()
            return None
        if self.store_problem is not None:
            log.warning("cdtl serve: the added-item store %s reads correctly again", self.store.path)
        self.store_problem, self.store_items = None, len(items)
        self.metrics.store_reads.labels("ok").inc()
        return items

    def _sync(self, rec: Recommender) -> int:
        """Add to ``rec`` the stored items it lacks; returns how many (call under ``write_lock``)."""
        if self.store is None:
            return 0
        items = self._read_store()
        return 0 if items is None else self._apply(rec, items)

    def _apply(self, rec: Recommender, items: list[StoredItem]) -> int:
        have = {a["item"] for a in rec.added_items}
        added = 0
        for stored in items:
            if stored.item in have or stored.item in self.not_served:
                continue
            if rec.has_item(stored.item):
                self.not_served[stored.item] = "the bundle has an item with this id"
                continue
            vector = stored.vector if stored.encoder == rec.encoder_id else None
            try:
                rec.add_item(stored.item, stored.text, stored.title, vector=vector)
                added += 1
            except RequestError as err:
                self.not_served[stored.item] = err.message
        return added

    # ------------------------------------------------------------------ writing

    def _writable_store(self) -> ItemStore:
        if self.store is None:
            raise RequestError("service", "no store for added items: the bundle's folder is not writable; start the "
                                          "service with --items-store PATH on a writable volume", 503)
        if not self.store.writable:
            raise RequestError("service", f"the added-item store {self.store.path.name} is read-only here", 503)
        if self.store_problem is not None:
            raise RequestError("service", f"the added-item store is read-only until it is repaired: "
                                          f"{self.store_problem}", 503)
        return self.store

    def add_item(self, item: str, text: str, title: str | None) -> Recommender:
        """Write a new item through to the store, then serve it; 409 if any replica has the id already."""
        rec = self.current()
        if rec.has_item(item):
            raise RequestError("item", f"{item[:80]!r} already exists; new items need new ids", 409)
        store = self._writable_store()
        stored = StoredItem(item, text, title or title_from_text(text) or item, rec.encoder_id, rec.item_vector(text))
        with self.write_lock:
            try:
                with store.locked():
                    items = self._read_store()
                    if items is None:
                        self._writable_store()  # raises: the store was found damaged just now
                    rec = self.current()
                    self._apply(rec, items)
                    if rec.has_item(item) or item in self.not_served:
                        raise RequestError("item", f"{item[:80]!r} already exists (added by another replica?); new "
                                                   "items need new ids", 409)
                    self._write(store, [*items, stored])
            except TimeoutError as err:
                raise RequestError("service", f"the added-item store is busy ({err}); retry", 503) from None
            vector = stored.vector if stored.encoder == rec.encoder_id else None
            rec.add_item(item, text, stored.title, vector=vector)
        self.metrics.items_added.inc()
        self.metrics.catalogue.set(rec.n_items)
        return rec

    def _write(self, store: ItemStore, items: list[StoredItem]) -> None:
        try:
            self.store_signature = store.write(items)
        except OSError as err:
            raise RequestError("service", f"cannot write the added-item store {store.path.name} "
                                          f"({err.strerror or err}); nothing was added", 503) from None
        self.store_items = len(items)

    def reload(self, path: Path) -> tuple[Recommender, Recommender, int]:
        """(old, new, items carried): load ``path``, give it the store's items and the old one's, swap it in."""
        new = self.load(path)
        with self.write_lock:
            old = self.current()
            self.not_served = {}
            carried = self._sync(new)
            left = [StoredItem(a["item"], a["text"], a["title"], old.encoder_id, a["vector"]) for a in old.added_items]
            carried += self._apply(new, left)  # items not in the store (it is damaged or was removed): none is lost
            self.recommender, self.bundle_path = new, path
        self.metrics.serving(new.bundle.id, new.n_items)
        return old, new, carried

    # ------------------------------------------------------------------ reporting

    def hide(self, text: str | None, with_paths: bool) -> str | None:
        """``text`` with the bundle's and the store's folders left out unless the reader may see them."""
        if text is None or with_paths:
            return text
        for path in (self.store.path if self.store else None, self.bundle_path):
            if path is not None:
                for shown in {str(path.resolve()), str(path)}:
                    text = text.replace(shown, path.name)
        return text

    def store_report(self, with_paths: bool) -> dict[str, Any]:
        if self.store is None:
            return {"status": "none", "writable": False, "detail": "POST /items needs --items-store PATH"}
        return {"status": "damaged" if self.store_problem else "ok", "writable": self.store.writable,
                "file": str(self.store.path) if with_paths else self.store.path.name, "items": self.store_items,
                "not_served": len(self.not_served), "refresh_seconds": self.store_refresh,
                "detail": self.hide(self.store_problem, with_paths)}


__all__ = ["STORE_REFRESH", "ServiceState"]
