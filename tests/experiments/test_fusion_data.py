"""The fusion kind's data: each user's latest items are held out for test, users with too few are kept whole."""

from __future__ import annotations

import pandas as pd

from cdtl.experiments import fusion as comparison


def test_time_split_keeps_the_latest_items_for_test():
    frame = pd.DataFrame({"u": [0] * 10 + [1] * 2, "i": list(range(10)) + [0, 1],
                          "timestamp": [9, 8, 7, 6, 5, 4, 3, 2, 1, 0] + [0, 1]})
    train, val, test = comparison.time_split_per_user(frame, val=0.1, test=0.2)
    assert sorted(test.loc[test["u"] == 0, "i"]) == [0, 1]  # the two latest (timestamps 9 and 8)
    assert val.loc[val["u"] == 0, "i"].tolist() == [2]
    assert len(train[train["u"] == 0]) == 7
    assert (train["u"] == 1).sum() == 2 and 1 not in set(val["u"]) | set(test["u"])  # too few to split
