"""``cdtl.experiments.export``: a fusion experiment trained on your own two-domain data becomes a bundle the service loads."""

from __future__ import annotations

import numpy as np
import pytest
from toy_data import two_domains

from cdtl.experiments import load_config
from cdtl.experiments.export import export
from cdtl.serve.loading import load_recommender

pytestmark = pytest.mark.slow  # trains three small models and loads the packaged language model


def _toy_config() -> dict:
    config = load_config("fusion_ml100k")
    config["protocol"].update(source="src", target="tgt", cold_ratio=0.3)
    config["mf"].update(dim=8, train={"optimizer": "adam", "lr": 0.05, "epochs": 3})
    config["fusion"].update(modes=["user"], train={"optimizer": "adam", "lr": 0.05, "epochs": 3})
    config["lm_bridge"] = {"config": {"lm_bridge": {"dim": 8, "hidden": 16, "epochs": 3}}}
    config["evaluate"].update(bootstrap=50)
    return config


def test_the_bundle_serves_the_models_the_experiment_trained(tmp_path):
    exported = export(_toy_config(), tmp_path / "bundle", data=two_domains(per_group=10))
    fitted = exported.fitted
    assert set(fitted.models) == {"mf", "lm_bridge", "popularity"}
    recommender = load_recommender(exported.path)
    warm = str(fitted.fd.cd.users.ids[int(np.flatnonzero(fitted.fd.target_len > 0)[0])])
    answer = recommender.recommend(user=warm, k=3)
    assert answer.scorer == "mf" and len(answer.items) == 3
    cold = recommender.recommend(history=["src0", "src1"], k=3)
    assert cold.scorer == "bridge" and cold.history_used == 2 and not cold.unknown_items
    assert np.isclose(exported.test_metrics["ndcg@10"].mean(), recommender.bundle.manifest["summary"]["test_ndcg@10"])
