"""A bundle's next-item part: its section resolved with the model's defaults or refused by key, trained on the export's split."""

from __future__ import annotations

import numpy as np
import pytest

from cdtl.experiments.common import ConfigError
from cdtl.experiments.export_sequential import resolve
from cdtl.serve.bundle import read_bundle


@pytest.mark.parametrize("section, key", [
    ({"model": "gpt"}, "export.sequential.model"), ({"dim": 0}, "export.sequential.dim"),
    ({"max_len": "20"}, "export.sequential.max_len"), ({"dropout": 1.5}, "export.sequential.dropout"),
    ({"dim": 30, "heads": 4}, "export.sequential.dim"), ({"colour": 1}, "export.sequential.colour"),
    ({"model": "sasrec", "n_experts": 2}, "export.sequential.n_experts"), ({"train": {"epochs": 0}}, "export.sequential.train"),
    ("yes", "export.sequential"),
])
def test_a_bad_sequential_section_is_refused_by_key(section, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve(section)


@pytest.mark.slow  # trains the toy fusion experiment's three models and loads the packaged language model
def test_export_trains_the_sequential_part_on_the_experiments_split(tmp_path):
    from toy_data import two_domains

    from cdtl.experiments import load_config
    from cdtl.experiments.export import export
    from cdtl.serve.loading import load_recommender

    config = load_config("fusion_ml100k")
    config["protocol"].update(source="src", target="tgt", cold_ratio=0.3)
    config["mf"].update(dim=8, train={"optimizer": "adam", "lr": 0.05, "epochs": 2})
    config["fusion"].update(modes=["user"], train={"optimizer": "adam", "lr": 0.05, "epochs": 2})
    config["evaluate"].update(bootstrap=20)
    config["export"] = {"sequential": {"dim": 8, "max_len": 5, "layers": 1, "n_experts": 2, "train": {"epochs": 2}}}
    exported = export(config, tmp_path / "bundle", data=two_domains(per_group=10))
    fitted = exported.sequential
    assert fitted.info["model"] == "text_sasrec" and fitted.info["epochs"] == 2 and fitted.info["truncated_histories"] > 0
    assert np.array_equal(fitted.per_user["users"], exported.test_metrics["users"])  # paired with the served fusion
    summary = read_bundle(exported.path).manifest["summary"]
    assert summary["sequential"] == "text_sasrec"
    assert np.isclose(summary["sequential_test_ndcg@10"], fitted.per_user["ndcg@10"].mean())
    answer = load_recommender(exported.path, text=False).recommend(history=["src3", "tgt1", "src0", "nope"], k=4)
    assert answer.scorer == "sequential" and answer.unknown_items == ["nope"] and answer.history_used == 3
    assert "tgt1" not in answer.items and len(answer.items) == 4


def test_no_section_means_no_sequential_part_and_an_empty_one_takes_the_models_defaults():
    assert resolve(None) is None
    settings = resolve({})
    assert settings["model"] == "text_sasrec" and settings["batch_size"] == 128
    assert settings["args"]["dim"] % settings["args"]["heads"] == 0 and settings["train"]["monitor"] == "ndcg@10"
    by_id = resolve({"model": "sasrec", "dim": 8, "heads": 2, "train": {"epochs": 3}})
    assert by_id["args"]["dim"] == 8 and by_id["args"]["heads"] == 2 and by_id["train"]["epochs"] == 3
    assert "n_experts" not in by_id["args"]  # an argument of the text model only
