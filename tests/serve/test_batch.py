"""`cdtl recommend`: every warm user's top k in one Parquet file, the same items and scores the service answers, written whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from servekit import toy_bundle

from cdtl.cli import main
from cdtl.serve.batch import chunk_size, recommend_to_file
from cdtl.serve.loading import load_recommender


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return toy_bundle(tmp_path_factory.mktemp("batch") / "toy")


@pytest.fixture(scope="module")
def rec(bundle):
    return load_recommender(bundle, text=False, index={"kind": "exact"})


def test_every_warm_user_gets_the_services_top_k(bundle, rec, tmp_path):
    out = tmp_path / "topk.parquet"
    report = recommend_to_file(bundle, out, k=5, memory_mb=0.001)  # a tiny budget: many chunks
    table = pd.read_parquet(out)
    assert list(table.columns) == ["user", "rank", "item", "score"]
    warm = set(rec.user_ids[rec.target_len > 0].astype(str))
    assert set(table["user"]) == warm and report.users == len(warm) and report.rows == len(table)
    assert report.chunk_users < len(warm)  # it did run in chunks
    for user in sorted(warm)[:5]:
        mine = table[table["user"] == user].sort_values("rank")
        online = rec.recommend(user, k=5)
        assert mine["item"].tolist() == online.items
        np.testing.assert_allclose(mine["score"].to_numpy(), online.scores, rtol=1e-5, atol=1e-5)
        assert mine["rank"].tolist() == list(range(1, len(online.items) + 1))
        assert np.all(np.diff(mine["score"].to_numpy()) <= 1e-6)  # best first


def test_the_chunk_budget_does_not_change_the_answer(bundle, tmp_path):
    recommend_to_file(bundle, tmp_path / "one.parquet", k=3)
    recommend_to_file(bundle, tmp_path / "many.parquet", k=3, memory_mb=0.0005)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "many.parquet"))


def test_listed_users_are_scored_and_unknown_ones_reported(bundle, rec, tmp_path, capsys):
    known = [str(u) for u in rec.user_ids[:3]]
    users = tmp_path / "users.txt"
    users.write_text("\n".join([known[0], "nobody-1", "# a comment", known[1], "", known[2], "nobody-2", known[0]]) + "\n")
    out = tmp_path / "listed.parquet"
    assert main(["recommend", str(bundle), "--out", str(out), "--users", str(users), "--k", "4"]) == 0
    printed = capsys.readouterr().out
    assert "2 listed user ids are not in the bundle" in printed and "'nobody-1'" in printed
    assert set(pd.read_parquet(out)["user"]) == set(known)


def test_an_existing_output_is_kept_unless_overwrite(bundle, tmp_path, capsys):
    out = tmp_path / "topk.parquet"
    out.write_bytes(b"earlier results")
    assert main(["recommend", str(bundle), "--out", str(out), "--k", "2"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"earlier results"
    assert main(["recommend", str(bundle), "--out", str(out), "--k", "2", "--overwrite"]) == 0
    assert pd.read_parquet(out)["rank"].max() == 2


@pytest.mark.parametrize("args, message", [
    (["--k", "0"], "--k must be a positive whole number"),
    (["--users", "/nonexistent/users.txt"], "--users /nonexistent/users.txt: no such file"),
    (["--memory-mb", "-1"], "--memory-mb must be positive"),
])
def test_bad_input_is_one_line_and_writes_nothing(bundle, tmp_path, capsys, args, message):
    out = tmp_path / "topk.parquet"
    assert main(["recommend", str(bundle), "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_a_missing_bundle_is_named(tmp_path, capsys):
    assert main(["recommend", str(tmp_path / "nope"), "--out", str(tmp_path / "x.parquet")]) == 2
    assert "no bundle folder there" in capsys.readouterr().err


def test_chunk_size_fits_the_budget():
    assert chunk_size(1_000_000, 256) == 67  # 67 users x 1M items x 4 bytes <= 256 MiB
    assert chunk_size(10, 0.000001) == 1


def test_the_report_names_the_file_in_full_or_by_name_alone(tmp_path):
    from cdtl.serve.batch import BatchReport

    report = BatchReport(tmp_path / "topk.parquet", users=3, rows=30, k=10, chunk_users=100, unknown=["x"])
    assert str(tmp_path) in report.describe()
    short = report.describe(full_path=False)
    assert str(tmp_path) not in short and "to topk.parquet in chunks of 100 users" in short and "'x'" in short
