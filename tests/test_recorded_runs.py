"""Recorded runs read back from results/<name>/: found above the working directory, hash-checked, quoted with their provenance."""

from __future__ import annotations

import gzip
import json
import shlex
from pathlib import Path

import pytest

from cdtl import recorded_runs
from cdtl.configfile import read_yaml
from cdtl.io import CorruptFileError, file_hash

PROVENANCE = {"command": "cdtl run configs/x.yaml --out results/demo", "profile": "full",
              "started_utc": "2026-12-07T21:57:22+00:00", "wall_seconds": 2239.1, "commit": "abc",
              "machine": {"cpu_count": 2, "cuda": None}, "versions": {"cdtl": "0.1.0"},
              "load_average": {"start": 3.1, "end": 2.0}}


def _run(root: Path, name: str = "demo", *, hashes: bool = True, **changes) -> Path:
    """A recorded run as results/record.py writes it: metrics.json, per_user.csv.gz and provenance.json."""
    folder = root / "results" / name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"name": name, "rows": [{"model": "mf", "mean": 0.25}]}))
    (folder / "per_user.csv.gz").write_bytes(gzip.compress(b"model,user,ndcg@10\nmf,1,0.5\nmf,2,0.0\n", mtime=0))
    provenance = {**PROVENANCE, **changes}
    if hashes:
        provenance["sha256"] = {f: file_hash(folder / f) for f in ("metrics.json", "per_user.csv.gz")}
    (folder / "provenance.json").write_text(json.dumps(provenance))
    return folder


def test_results_folder_is_found_from_a_folder_below_it(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "chapters" / "deep").mkdir(parents=True)
    assert recorded_runs.find_results(tmp_path / "chapters" / "deep") == (tmp_path / "results").resolve()
    assert recorded_runs.find_results(tmp_path) == (tmp_path / "results").resolve()


def test_a_recorded_run_is_read_with_its_per_user_table(tmp_path):
    _run(tmp_path)
    run = recorded_runs.load_run("demo", tmp_path / "results")
    assert run.metrics["rows"][0]["mean"] == 0.25
    assert run.provenance["wall_seconds"] == 2239.1
    assert run.per_user["ndcg@10"].tolist() == [0.5, 0.0]
    assert run.folder == tmp_path / "results" / "demo"


def test_an_absent_run_is_none_and_a_bad_name_refused(tmp_path):
    (tmp_path / "results").mkdir()
    assert recorded_runs.load_run("demo", tmp_path / "results") is None
    for bad in ("", "../demo", "a/b"):
        with pytest.raises(ValueError, match="folder under results"):
            recorded_runs.load_run(bad, tmp_path / "results")


def test_an_edited_file_fails_its_recorded_hash(tmp_path):
    folder = _run(tmp_path)
    (folder / "metrics.json").write_text(json.dumps({"name": "demo", "rows": [{"model": "mf", "mean": 0.99}]}))
    with pytest.raises(CorruptFileError, match=r"metrics\.json.*damaged.*make results"):
        recorded_runs.load_run("demo", tmp_path / "results")


def test_a_listed_file_that_is_missing_is_refused(tmp_path):
    folder = _run(tmp_path)
    (folder / "per_user.csv.gz").unlink()
    with pytest.raises(CorruptFileError, match=r"per_user\.csv\.gz.*missing"):
        recorded_runs.load_run("demo", tmp_path / "results")


def test_without_recorded_hashes_the_files_are_read_as_they_are(tmp_path):
    folder = _run(tmp_path, hashes=False)
    (folder / "metrics.json").write_text(json.dumps({"rows": []}))
    assert recorded_runs.load_run("demo", tmp_path / "results").metrics == {"rows": []}


@pytest.mark.parametrize(("change", "message"), [
    ({"sha256": {"per_user.csv.gz": "0" * 64}}, "metrics.json included"),
    ({"sha256": {"metrics.json": "0" * 64, "../metrics.json": "0" * 64}}, "plain file names"),
    ({"sha256": ["metrics.json"]}, "must map"),
])
def test_a_malformed_hash_list_is_refused_by_key(tmp_path, change, message):
    _run(tmp_path, hashes=False, **change)
    with pytest.raises(CorruptFileError, match=message):
        recorded_runs.load_run("demo", tmp_path / "results")


def test_a_benchmark_run_is_read_from_the_main_file_its_provenance_names(tmp_path):
    folder = tmp_path / "results" / "bench"
    folder.mkdir(parents=True)
    (folder / "scale.json").write_text(json.dumps([{"interactions": 100000, "procs": 1}, {"procs": 2}]))
    (folder / "scale.md").write_text("| interactions |\n")
    hashes = {f: file_hash(folder / f) for f in ("scale.json", "scale.md")}
    (folder / "provenance.json").write_text(json.dumps({**PROVENANCE, "main": "scale.json", "sha256": hashes}))
    run = recorded_runs.load_run("bench", tmp_path / "results")
    assert [row["procs"] for row in run.metrics] == [1, 2] and run.per_user is None
    (folder / "scale.md").write_text("| edited |\n")
    with pytest.raises(CorruptFileError, match=r"scale\.md.*damaged"):
        recorded_runs.load_run("bench", tmp_path / "results")
    for main, message in (("../x.json", "'main' must be a file name"), ("metrics.json", "metrics.json included")):
        (folder / "provenance.json").write_text(json.dumps({**PROVENANCE, "main": main, "sha256": hashes}))
        with pytest.raises(CorruptFileError, match=message):
            recorded_runs.load_run("bench", tmp_path / "results")


def test_provenance_without_its_required_fields_or_garbled_is_refused(tmp_path):
    folder = _run(tmp_path)
    provenance = json.loads((folder / "provenance.json").read_text())
    del provenance["wall_seconds"]
    (folder / "provenance.json").write_text(json.dumps(provenance))
    with pytest.raises(CorruptFileError, match="'wall_seconds'"):
        recorded_runs.load_run("demo", tmp_path / "results")
    (folder / "provenance.json").write_text('{"command": ')
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        recorded_runs.load_run("demo", tmp_path / "results")
    (folder / "provenance.json").unlink()
    with pytest.raises(CorruptFileError, match="provenance.json.*missing"):
        recorded_runs.load_run("demo", tmp_path / "results")


def test_provenance_values_say_where_and_how_long():
    values = recorded_runs.provenance_values(PROVENANCE)
    assert list(values) == list(recorded_runs.PROVENANCE_KEYS)
    assert values == {"command": PROVENANCE["command"], "date": "2026-12-07", "minutes": pytest.approx(37.3183, abs=1e-4),
                      "load": "3.1", "machine": "2-core CPU, no GPU"}
    older = {**PROVENANCE, "machine": {"cpu_count": 8, "cuda": "NVIDIA H100"}}
    del older["load_average"]
    assert recorded_runs.provenance_values(older)["load"] == "not recorded"
    assert recorded_runs.provenance_values(older)["machine"] == "8-core CPU, NVIDIA H100"


def test_quote_run_records_where_it_was_measured(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDTL_RECORD_DIR", str(tmp_path / "records"))
    monkeypatch.setenv("CDTL_NOTEBOOK", "99_quote")
    _run(tmp_path)
    run = recorded_runs.quote_run("demo", "demo_", tmp_path / "results")
    assert run.metrics["name"] == "demo"
    saved = json.loads((tmp_path / "records" / "99_quote.json").read_text())
    assert {k: saved[k] for k in ("demo_date", "demo_load", "demo_machine")} == {
        "demo_date": "2026-12-07", "demo_load": "3.1", "demo_machine": "2-core CPU, no GPU"}
    assert saved["demo_command"].startswith("cdtl run") and saved["demo_minutes"] == pytest.approx(37.3183, abs=1e-4)
    assert recorded_runs.quote_run("absent", "absent_", tmp_path / "results") is None
    assert "results/absent is not next to this chapter" in capsys.readouterr().out
    assert not any(k.startswith("absent_") for k in json.loads((tmp_path / "records" / "99_quote.json").read_text()))


def test_the_committed_runs_pass_their_own_checks():
    """Every run under the repository's results/ reads back, and those that record hashes match them."""
    root = Path(__file__).resolve().parents[1] / "results"
    names = sorted(p.name for p in root.iterdir() if (p / "provenance.json").is_file())
    assert names, "no recorded run under results/"
    for name in names:
        run = recorded_runs.load_run(name, root)
        assert run.metrics, f"results/{name}: its main file is empty"
        if run.provenance.get("main", "metrics.json") == "metrics.json":  # a cdtl run: written there, named by its config
            words = shlex.split(run.provenance["command"])
            assert words[:2] == ["cdtl", "run"] and words[-2:] == ["--out", f"results/{name}"], words
            named = [w.split("=", 1)[1] for w in words if w.startswith("name=")]
            config = read_yaml(root.parent / words[2])
            assert run.metrics["name"] == (named[-1] if named else config["name"])
        assert set(run.provenance.get("sha256", {})) <= {p.name for p in run.folder.iterdir()}
