"""The dataset registry: the Amazon pair's hub source pins a revision and the release paths, the offline folder first."""

from __future__ import annotations

import pytest
from hub_server import ENTRY, hub_source, release_files

from cdtl.data import registry


def test_the_registry_pins_a_revision_and_the_release_paths():
    source = hub_source()
    assert source["repo"] == "McAuley-Lab/Amazon-Reviews-2023" and len(source["revision"]) == 40
    paths = {m["path"] for m in source["members"].values()}
    assert paths == set(release_files())
    assert registry.get(ENTRY).sources[0].kind == "local"  # the offline folder is preferred when present


def test_every_registered_name_gives_its_entry_and_an_unknown_name_lists_them():
    assert registry.names() == sorted(registry.names()) and "movielens-100k" in registry.names()
    for name in registry.names():
        spec = registry.get(name)
        assert spec.name == name and spec.sources, name
        assert all(source.describe() for source in spec.sources)
    first = registry.get("movielens-100k").sources[0]
    assert first.kind == "zip" and first.md5 in first.describe()
    with pytest.raises(KeyError, match="unknown dataset 'movielens-10m'; registered datasets: amazon-food-kitchen"):
        registry.get("movielens-10m")
