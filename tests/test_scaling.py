"""The scaling measurement on a small synthetic table: every stage measured, the counts right, one JSON line printed."""

from __future__ import annotations

import json

from cdtl.data.synthetic import synthetic_two_domain
from cdtl.scaling import STAGES, curve, main, peak_rss_mb

SMALL = {"dim": 8, "batch_size": 512, "eval_users": 50, "mapping_epochs": 1}


def test_a_curve_measures_every_stage_at_each_size_on_data_written_once(tmp_path):
    rows = curve([1_000], tmp_path, **SMALL)
    assert [row["interactions"] for row in rows] == [1_000]
    written = tmp_path / "n1000" / "interactions.parquet"
    stamp = written.stat().st_mtime_ns
    again = curve([1_000], tmp_path, **SMALL)[0]
    assert written.stat().st_mtime_ns == stamp  # the data of a size is reused, not rewritten
    for row in (*rows, again):
        assert all(row[stage] > 0 and row[stage.replace("_s", "_cpu_s")] >= 0 for stage in STAGES)
        assert row["world_size"] == 1 and row["eval_users"] == 50 and row["peak_rss_mb"] > 0
        assert 0.7 * row["interactions"] < row["train_rows"] < 0.9 * row["interactions"]  # an 80/10/10 split per user
        assert 0 < row["overlap_users"] <= row["users"]
    assert {k: v for k, v in again.items() if not k.endswith("_s") and k != "peak_rss_mb"} == {
        k: v for k, v in rows[0].items() if not k.endswith("_s") and k != "peak_rss_mb"}  # same seed, same counts


def test_the_command_prints_one_json_line_of_the_measurement(tmp_path, capsys):
    synthetic_two_domain(2_000, seed=0).write_parquet(tmp_path)
    assert main([str(tmp_path), "--dim", "8", "--batch-size", "512", "--eval-users", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and set(STAGES) <= set(json.loads(lines[0]))
    assert json.loads(lines[0])["interactions"] == 2_000
    assert peak_rss_mb() > 0
