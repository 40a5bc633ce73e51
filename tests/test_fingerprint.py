"""A run's fingerprint: every setting under its dotted key and a digest of each frame that any changed row changes."""

from __future__ import annotations

import pandas as pd

from cdtl.fingerprint import frame_digest, run_fingerprint

FRAME = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "timestamp": [1, 2], "note": ["kept", "out"]})


def test_the_digest_reads_the_rows_of_the_known_columns_in_order():
    digest = frame_digest(FRAME)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert frame_digest(FRAME.copy()) == digest
    assert frame_digest(FRAME.assign(note=["other", "text"])) == digest  # a column it does not read
    assert frame_digest(FRAME.assign(item=["x", "z"])) != digest
    assert frame_digest(FRAME.iloc[::-1]) != digest  # the order of the rows counts
    assert frame_digest(FRAME, columns=("user",)) != digest
    assert frame_digest(FRAME.set_axis([5, 6])) == digest  # the index does not


def test_settings_are_flattened_to_dotted_keys_beside_each_frames_digest():
    settings = {"model": {"dim": 8, "loss": {"name": "bpr"}}, "seed": 0}
    out = run_fingerprint(settings, {"train": FRAME, "test": FRAME.head(1)})
    assert out == {"model.dim": 8, "model.loss.name": "bpr", "seed": 0,
                   "split.train.sha256": frame_digest(FRAME), "split.test.sha256": frame_digest(FRAME.head(1))}
    assert run_fingerprint({}, {}) == {}
