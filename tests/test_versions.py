"""Every result names what produced it: metrics.json, a bundle's manifest and a chapter's record file store cdtl.versions()."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform

import numpy as np

import cdtl
from cdtl.versions import versions

NAMED = {"cdtl", "python", "torch", "transformers", "numpy"}


def test_versions_names_python_torch_transformers_numpy_faiss_and_cdtl():
    found = versions()
    assert NAMED <= set(found)
    assert found["cdtl"] == cdtl.__version__ and found["python"] == platform.python_version()
    assert found["numpy"] == np.__version__
    assert found["torch"] == importlib.metadata.version("torch")
    assert found["transformers"] == importlib.metadata.version("transformers")
    if importlib.util.find_spec("faiss") is not None:  # the serve extra installs it
        import faiss

        assert found["faiss"].split("+")[0] == faiss.__version__
    assert all(isinstance(v, str) and v for v in found.values())


def test_a_missing_package_is_left_out_not_guessed(monkeypatch):
    from cdtl import versions as module

    monkeypatch.setitem(module.DISTRIBUTIONS, "faiss", ("no-such-distribution-cdtl",))
    assert "faiss" not in versions()


def test_metrics_json_stores_the_versions(tmp_path):
    from cdtl.experiments import run

    config = {"name": "pop", "dataset": {"name": "movielens-100k"}, "model": {"name": "popularity"},
              "evaluate": {"metrics": ["ndcg@10"], "bootstrap": 20}}
    run(config, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert NAMED <= set(saved["versions"]) and saved["versions"]["cdtl"] == cdtl.__version__


def test_a_bundle_manifest_stores_the_versions_and_stays_loadable(tmp_path):
    from servekit import toy_bundle

    from cdtl.serve.bundle import FORMAT_VERSION, read_bundle

    path = toy_bundle(tmp_path / "bundle")
    manifest = json.loads((path / "manifest.json").read_text())
    assert NAMED <= set(manifest["versions"]) and manifest["format_version"] == FORMAT_VERSION
    assert read_bundle(path).manifest["versions"] == manifest["versions"]
