"""The kinds registry: every kind has a config and runs, every shipped config resolves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from own_data import CONFIGS, SLOW_KINDS, own_data

from cdtl.experiments import KINDS, Result, load_config, resolve, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_resolves(path):
    resolve(load_config(path))


def test_every_kind_has_a_config_here():
    assert set(CONFIGS) == set(KINDS)


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_KINDS else k for k in CONFIGS])
def test_every_kind_runs_on_your_own_two_domain_data(kind, tmp_path):
    data = own_data(kind)
    result = run(CONFIGS[kind], tmp_path / "out", data=data)
    assert isinstance(result, Result) and result.models, f"{kind} returned no trained model"
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["config"] == json.loads(json.dumps(result["config"]))  # result[key] reads what metrics.json holds
    assert saved["config"] == json.loads(json.dumps(resolve(CONFIGS[kind])))  # the resolved config: every default
    users = set(data.interactions["user"])
    if result.per_user is not None:  # the per-user table names the user's own ids, and is on disk too
        assert set(result.per_user["user"]) <= users
        assert len(pd.read_csv(tmp_path / "out" / "per_user.csv")) == len(result.per_user)
