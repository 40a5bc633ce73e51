"""What every kind shares: an earlier run's folder is refused unless overwritten, results are written whole or not at all."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from own_data import CONFIGS
from toy_data import two_domains

from cdtl.cli import main
from cdtl.experiments import run
from cdtl.experiments import single as single_kind
from cdtl.experiments.common import OutputError, prepare_output, write_results


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(single_kind, "fit", refuse)


def test_a_folder_that_holds_an_earlier_run_is_refused_before_any_training(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text('{"earlier": true}')
    _no_training(monkeypatch)
    with pytest.raises(OutputError, match="holds an earlier run .*metrics.json.*--overwrite"):
        run(CONFIGS["single"], tmp_path, data=two_domains())
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"earlier": True}


def test_an_out_that_is_a_file_is_refused_before_any_training(tmp_path, monkeypatch):
    target = tmp_path / "results.txt"
    target.write_text("mine")
    _no_training(monkeypatch)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        run(CONFIGS["single"], target, data=two_domains())
    assert target.read_text() == "mine"


def test_overwrite_replaces_the_earlier_run_and_leaves_nothing_of_it(tmp_path):
    (tmp_path / "metrics.json").write_text('{"earlier": true}')
    (tmp_path / "per_user.csv").write_text("earlier\n")
    result = run(CONFIGS["single"], tmp_path, data=two_domains(), overwrite=True)
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == json.loads(json.dumps(result["metrics"]))
    saved = pd.read_csv(tmp_path / "per_user.csv")  # this run's per-user table replaced the earlier one
    assert len(saved) == len(result.per_user) and list(saved.columns) == list(result.per_user.columns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "per_user.csv"]  # no temporary file left behind
    write_results(tmp_path, {"run": 2})  # a run without a per-user table leaves none of the earlier one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_failed_write_keeps_the_earlier_results_whole(tmp_path):
    write_results(tmp_path, {"run": 1}, pd.DataFrame({"user": ["a"], "ndcg@10": [0.5]}))
    with pytest.raises(TypeError):
        write_results(tmp_path, {"run": 2, "bad": object()})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "per_user.csv"]  # and no temporary file


def test_an_out_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        prepare_output(tmp_path / "file" / "run")


@pytest.mark.slow
def test_cli_refuses_an_earlier_run_unless_overwrite(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "tiny", "dataset": {"name": "movielens-100k"}, "model": {"dim": 4},
                                      "train": {"epochs": 1, "progress": False},
                                      "evaluate": {"metrics": ["ndcg@10"], "bootstrap": 10}}))
    out = tmp_path / "o"
    assert main(["run", str(config), "--out", str(out)]) == 0
    first = (out / "metrics.json").read_text()
    assert main(["run", str(config), "--out", str(out)]) == 2
    assert "holds an earlier run" in capsys.readouterr().err and (out / "metrics.json").read_text() == first
    assert main(["run", str(config), "--out", str(out), "--overwrite"]) == 0
    assert main(["run", str(config), "--out", str(config)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_the_best_model_is_chosen_on_validation_users_not_test_users():
    from cdtl.experiments.common import best_by_validation

    frame = pd.DataFrame({"model": ["a", "b", "c", "d"], "cell": ["x", "x", "x", "y"], "mean": [0.9, 0.1, 0.5, 1.0],
                          "val": [0.2, 0.3, np.nan, 0.9]})
    assert best_by_validation(frame, ["a", "b", "c"], cell="x")["model"] == "b"  # best on validation, not on test
    with pytest.raises(ValueError, match="validation score"):
        best_by_validation(frame, ["c"], cell="x")  # a model that cannot serve is never chosen


def test_a_profile_caps_the_tuning_budget_of_a_config():
    import cdtl
    from cdtl.experiments.common import tuning_for

    smoke = tuning_for(cdtl.profile("smoke"), {"max_users": None, "freeze_layers": 2, "max_history": 20, "epochs": 3})
    assert smoke == {"epochs": 1, "batch_size": 32, "max_history": 5, "freeze_layers": 5, "max_users": 256}
    full = tuning_for(cdtl.profile("full"), {"max_users": 8000, "freeze_layers": 3, "max_history": 10})
    assert full["max_users"] == 8000 and full["freeze_layers"] == 3 and full["max_history"] == 10
