"""The text-only recommender on hand-made embeddings: cosine ranking, pooling, whitening, cold-start wiring, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cdtl.data.coldstart import cold_start_split
from cdtl.data.tables import RecData
from cdtl.evaluate import evaluate_ranking
from cdtl.models.text_only import TextOnly, evaluate_cold_start, evaluate_text_only, history_rows

# four items on the axes of a plane, plus one between items 0 and 1
ITEM_EMB = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.7, 0.7]])


def test_a_user_whose_history_is_near_an_item_ranks_it_first() -> None:
    model = TextOnly.from_histories(ITEM_EMB, [np.array([0, 4, 0]), np.array([1, 1, 4])])  # near item 0, near item 1
    assert model.score_all(torch.tensor([0, 1])).argmax(dim=1).tolist() == [0, 1]
    assert model.score_all(torch.tensor([1])).argmax(dim=1).tolist() == [1]  # rows follow the user indices asked
    scores = TextOnly.from_histories(ITEM_EMB, [np.array([2, 2, 3])], candidates=[0, 1, 2]).score_all(torch.tensor([0]))
    assert scores.shape == (1, 3) and int(scores.argmax()) == 2  # column k is candidates[k]


def test_scores_are_cosines_whatever_the_lengths() -> None:
    model = TextOnly(ITEM_EMB * 5, torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(model.score_all(torch.tensor([0]))[0, :4], torch.tensor([1.0, 0.0, -1.0, 0.0]))


def test_recency_pooling_follows_the_latest_item() -> None:
    history = [np.array([1, 1, 1, 0])]  # mostly item 1, but item 0 last
    mean = TextOnly.from_histories(ITEM_EMB, history).score_all(torch.tensor([0]))
    recent = TextOnly.from_histories(ITEM_EMB, history, pooling="recency", half_life=0.5).score_all(torch.tensor([0]))
    assert int(mean[0, :4].argmax()) == 1 and int(recent[0, :4].argmax()) == 0


def test_whitened_path_runs_and_works_in_the_whitened_space() -> None:
    gen = torch.Generator().manual_seed(0)
    items = torch.randn(50, 8, generator=gen) * torch.linspace(0.1, 3.0, 8) + 5.0  # far from the origin, anisotropic
    histories = [np.array([3]), np.array([7, 7])]
    model = TextOnly.from_histories(items, histories, whiten=True, whiten_dim=4)
    assert model.whitening is not None and model.item_vectors.shape == (50, 4)
    scores = model.score_all(torch.tensor([0, 1]))
    assert torch.isfinite(scores).all() and scores.shape == (2, 50)
    assert scores.argmax(1).tolist() == [3, 7]  # a one-item history is its own item, whitened or not
    torch.testing.assert_close(scores.max(1).values, torch.ones(2))


def test_score_all_plugs_into_evaluate_ranking() -> None:
    model = TextOnly.from_histories(ITEM_EMB, [np.array([0]), np.array([1])])
    out = evaluate_ranking(model.score_all, np.array([0, 1]), [np.array([4]), np.array([3])], ks=(2,))
    np.testing.assert_allclose(out["hit@2"], [1.0, 0.0])  # user 0: 0 then 4; user 1: 1 then 4


def test_empty_histories_are_refused_with_their_number() -> None:
    with pytest.raises(ValueError, match="2 of 3 users have an empty history"):
        TextOnly.from_histories(ITEM_EMB, [np.array([0]), np.array([], dtype=int), np.array([], dtype=int)])
    items = pd.DataFrame({"item": ["a", "b", "c"], "title": ["A", "B", "C"]})
    history = pd.DataFrame({"user": ["u1"], "item": ["a"], "timestamp": [1]})
    held = pd.DataFrame({"user": ["u1", "u2", "u3"], "item": ["b", "c", "c"]})
    with pytest.raises(ValueError, match="2 of 3 users to evaluate have an empty history"):
        evaluate_text_only(ITEM_EMB[:3], items, history, held)


def test_history_rows_are_per_user_in_time_order() -> None:
    items = pd.DataFrame({"item": ["a", "b", "c"]})
    inter = pd.DataFrame({"user": ["y", "x", "x", "x"], "item": ["a", "c", "a", "b"], "timestamp": [5, 3, 1, 2]})
    users, rows = history_rows(inter, items)
    assert users.tolist() == ["x", "y"] and [r.tolist() for r in rows] == [[0, 1, 2], [0]]
    with pytest.raises(ValueError, match="1 interactions name items missing"):
        history_rows(pd.DataFrame({"user": ["x"], "item": ["z"], "timestamp": [0]}), items)


def _toy_split():
    """Two domains of three items each; item text vectors make 'same letter' items neighbours across domains."""
    items = pd.DataFrame({"item": ["sa", "sb", "sc", "ta", "tb", "tc"], "title": list("ABCabc"),
                          "domain": ["src"] * 3 + ["tgt"] * 3})
    emb = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.9, 0.1, 0], [0.1, 0.9, 0], [0, 0.1, 0.9]])
    rows = []
    for n, (src, tgt) in enumerate([("sa", "ta"), ("sb", "tb"), ("sc", "tc")] * 4):
        rows += [(f"u{n}", src, 1, 2 * n, "src"), (f"u{n}", tgt, 1, 2 * n + 1, "tgt")]
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", "domain"])
    data = RecData(name="toy", interactions=inter, items=items)
    return cold_start_split(data, "src", "tgt", cold_ratio=0.5, seed=0), emb


def test_cold_start_users_are_ranked_target_items_from_their_source_history() -> None:
    split, emb = _toy_split()
    out = evaluate_cold_start(split, emb, users="test", ks=(1,))
    assert sorted(out["users"].tolist()) == sorted(split.test_users.tolist())
    np.testing.assert_allclose(out["hit@1"], 1.0)  # each user's source item points at their target item
    val = evaluate_cold_start(split, emb, users="val", ks=(1, 3), whiten=False, pooling="recency")
    assert len(val["users"]) == len(split.val_users) and set(val) >= {"ndcg@1", "recall@3"}
    with pytest.raises(ValueError, match="'test' or 'val'"):
        evaluate_cold_start(split, emb, users="warm")


def test_excluded_items_are_never_recommended() -> None:
    items = pd.DataFrame({"item": list("abcde"), "title": list("ABCDE")})
    history = pd.DataFrame({"user": ["u"], "item": ["a"], "timestamp": [0]})
    held = pd.DataFrame({"user": ["u"], "item": ["b"]})
    plain = evaluate_text_only(ITEM_EMB, items, history, held, ks=(1,))
    excluded = evaluate_text_only(ITEM_EMB, items, history, held, exclude=pd.concat([history, held.assign(item="e")]),
                                  ks=(2,))
    assert plain["hit@1"][0] == 0.0  # 'a' itself comes first ...
    assert excluded["hit@2"][0] == 1.0  # ... unless excluded, with 'e': then 'b' is in the top 2


def test_profile_pooling_encodes_the_users_titles() -> None:
    class FakeEncoder:  # maps a profile text to the vector of the first title it names
        def encode(self, texts):
            return torch.stack([ITEM_EMB["ABCDE".index(t.removeprefix("Watched: ")[0])] for t in texts])

    items = pd.DataFrame({"item": list("abcde"), "title": list("ABCDE")})
    history = pd.DataFrame({"user": ["u", "u"], "item": ["c", "b"], "timestamp": [0, 1]})  # most recent: B
    held = pd.DataFrame({"user": ["u"], "item": ["b"]})
    out = evaluate_text_only(ITEM_EMB, items, history, held, pooling="profile", encoder=FakeEncoder(), ks=(1,))
    assert out["hit@1"][0] == 1.0
    with pytest.raises(ValueError, match="encoder"):
        evaluate_text_only(ITEM_EMB, items, history, held, pooling="profile")
