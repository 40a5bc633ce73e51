"""Profiles size every chapter: from an argument, the environment or the default, smoke smaller than full in every size."""

from __future__ import annotations

import pytest

import cdtl


def test_profile_from_argument_env_and_default(monkeypatch):
    monkeypatch.delenv("CDTL_PROFILE", raising=False)
    monkeypatch.setattr(cdtl.profiles, "cuda_available", lambda: True)
    assert cdtl.profile().name == "full"  # the default with a CUDA GPU
    monkeypatch.setattr(cdtl.profiles, "cuda_available", lambda: False)
    assert cdtl.profile().name == "smoke"  # and without one
    monkeypatch.setenv("CDTL_PROFILE", "smoke")
    assert cdtl.profile().name == "smoke"
    assert cdtl.profile("full").name == "full"  # a parameters cell wins over the environment
    assert cdtl.profile("smoke").movielens == "movielens-100k"
    assert cdtl.profile("full").movielens == "movielens-1m"


def test_profile_overrides_and_errors(monkeypatch):
    assert cdtl.profile("smoke", epochs=7).epochs == 7
    with pytest.raises(ValueError, match="unknown profile field"):
        cdtl.profile("smoke", epoch=7)
    with pytest.raises(ValueError, match="profile field max_text_length was renamed to max_length"):
        cdtl.profile("smoke", max_text_length=16)
    assert cdtl.profile("smoke", max_length=16).max_length == 16
    with pytest.raises(ValueError, match=r"unknown profile 'tiny'.*\['full', 'smoke'\]"):
        cdtl.profile("tiny")
    monkeypatch.setenv("CDTL_PROFILE", "huge")
    with pytest.raises(ValueError, match="CDTL_PROFILE"):
        cdtl.profile()


def test_smoke_is_smaller_than_full_in_every_size():
    smoke, full = cdtl.PROFILES["smoke"], cdtl.PROFILES["full"]
    for field in ("epochs", "batch_size", "embedding_dim", "bootstrap", "plot_sample", "finetune_max_history"):
        assert getattr(smoke, field) < getattr(full, field), field
    assert len(smoke.seeds) <= len(full.seeds)
