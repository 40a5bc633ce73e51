"""The in-process recommender computes exactly what the models it was packed from compute: the fusion, MF, the bridge."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from servekit import toy_bundle, toy_trained

from cdtl.serve.bundle import read_bundle
from cdtl.serve.index import IndexSettings
from cdtl.serve.loading import load_encoder
from cdtl.serve.recommender import Recommender, RequestError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = toy_bundle(tmp_path_factory.mktemp("rec") / "toy")
    bundle = read_bundle(path)
    encoder, _ = load_encoder(bundle)
    return toy_trained(), bundle, encoder


def ranks(scores: torch.Tensor, exclude: np.ndarray | None = None) -> list[list[int]]:
    scores = scores.clone().double()
    if exclude is not None:
        scores[torch.from_numpy(exclude)] = -np.inf
    return [torch.argsort(row, descending=True, stable=True).tolist() for row in scores]


def test_fused_scores_are_the_fusions_log_probabilities_up_to_a_constant(setup):
    trained, bundle, _ = setup
    rec = Recommender(bundle)
    users = torch.arange(trained.cd.n_users)
    exclude = trained.seen.toarray() > 0
    mine = rec.score_all(users.numpy()).double()
    theirs = trained.fusion.ranker(trained.seen)(users).double()
    gap, seen = theirs - mine, torch.from_numpy(exclude)
    spread = gap.masked_fill(seen, -np.inf).amax(1) - gap.masked_fill(seen, np.inf).amin(1)
    assert float(spread.max()) < 1e-4  # the same ranking, and even the same scores but for a per-user constant
    assert float(gap.masked_fill(seen, 0).abs().max()) > 0.1  # (the constant is the log-normaliser: not zero)


def test_weights_are_the_gates_for_every_user(setup):
    trained, bundle, _ = setup
    rec = Recommender(bundle)
    expected = trained.fusion.weights(torch.arange(trained.cd.n_users)).detach().double().numpy()
    for u in range(trained.cd.n_users):
        _, weights, _ = rec._plan(u, None)
        got = np.array([weights.get(n, 0.0) for n in ("mf", "lm_bridge", "popularity")])
        np.testing.assert_allclose(got, expected[u], rtol=1e-5, atol=1e-7)
    assert np.ptp(expected[:, 2]) > 0.05  # the gate really differs by user


def test_without_fusion_each_user_gets_the_first_scorer_that_can_serve(setup):
    trained, bundle, _ = setup
    rec = Recommender(bundle, fusion=False)
    n = trained.cd.n_target_items
    seen = trained.seen.toarray() > 0
    paths = set()
    for u in range(trained.cd.n_users):
        out = rec.recommend(rec.user_ids[u], k=n)
        if trained.target_len[u] > 0:
            expected = trained.mf.score_all(torch.tensor([u]))
        elif trained.source_len[u] > 0:
            expected = trained.bridge.score_all(torch.tensor([u]))
        else:
            expected = trained.popularity[None]
        order = [trained.cd.target_items.ids[i] for i in ranks(expected, seen[u:u + 1])[0] if not seen[u, i]]
        assert out.items == order, u
        paths.add(out.scorer)
    assert paths == {"mf", "bridge"}  # every known user has history in one domain at least; fallback: see below


def test_a_new_user_with_a_known_users_history_gets_that_users_bridge(setup):
    trained, bundle, _ = setup
    rec = Recommender(bundle)
    cd = trained.cd
    cold = [u for u in range(cd.n_users) if trained.target_len[u] == 0 and trained.source_len[u] > 0]
    assert cold
    mine = cd.source_train[cd.source_train["u"] == cold[0]]
    history = cd.source_items.decode(mine.sort_values("timestamp")["i"])
    by_id = rec.recommend(rec.user_ids[cold[0]], k=5)
    by_history = rec.recommend(history=list(history) + ["no-such-book", "f1"], k=5)
    assert by_history.items == by_id.items and by_history.scorer == "bridge"
    assert by_history.unknown_items == ["no-such-book", "f1"] and by_history.history_used == len(history)
    np.testing.assert_allclose(by_history.scores, by_id.scores, rtol=1e-5)


def test_seen_items_are_left_out_unless_asked(setup):
    trained, bundle, _ = setup
    rec = Recommender(bundle)
    u = int(np.flatnonzero(trained.target_len > 0)[0])
    seen = set(trained.cd.target_items.ids[trained.seen[u].indices])
    assert not seen & set(rec.recommend(rec.user_ids[u], k=50).items)
    assert seen <= set(rec.recommend(rec.user_ids[u], k=50, exclude_seen=False).items)


@pytest.mark.parametrize("call, field, status", [
    (dict(user="nobody"), "user", 404),
    (dict(history=[]), "history", 422),
    (dict(user="u01", history=["b1"]), "user", 422),
    (dict(), "user", 422),
])
def test_bad_requests_name_their_field(setup, call, field, status):
    rec = Recommender(setup[1])
    with pytest.raises(RequestError) as err:
        rec.recommend(**call)
    assert err.value.field == field and err.value.status == status


def test_a_history_of_unknown_items_gets_the_fallback_and_says_so(setup):
    out = Recommender(setup[1]).recommend(history=["x", "y"], k=3)
    assert out.scorer == "fallback" and out.unknown_items == ["x", "y"] and out.weights == {"popularity": 1.0}


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_a_new_item_is_found_by_its_text_and_recommended_at_once(setup, kind):
    trained, bundle, encoder = setup
    rec = Recommender(bundle, encoder=encoder, index=IndexSettings(kind=kind))
    n = rec.n_items
    text = "A comedy film about a penguin who opens a bakery"
    row = rec.add_item("penguin", text, "Penguin Bakery")
    assert row == n and rec.n_items == n + 1
    assert rec.similar_items(text=text, k=1)[0][0] == "penguin"
    assert rec.similar_items(item="penguin", k=3)[0][0] != "penguin"  # an item is not its own neighbour
    warm = rec.user_ids[int(np.flatnonzero(trained.target_len > 0)[0])]
    assert "penguin" in rec.recommend(warm, k=rec.n_items).items
    assert "penguin" in rec.recommend(history=["b1", "b2"], k=rec.n_items).items
    with pytest.raises(RequestError, match="already exists") as err:
        rec.add_item("penguin", text)
    assert err.value.status == 409
    assert rec.added_items[0]["item"] == "penguin" and rec.index_matrix().shape[0] == n + 1


def test_free_text_needs_the_encoder(setup):
    with pytest.raises(RequestError, match="encoder") as err:
        Recommender(setup[1]).similar_items(text="a dragon")
    assert err.value.status == 503


def test_a_restricted_recommender_is_a_control_arm(setup):
    trained, bundle, _ = setup
    rec = Recommender(bundle, scorers=("mf", "popularity"))
    assert rec.gate is None
    cold = int(np.flatnonzero((trained.target_len == 0) & (trained.source_len > 0))[0])
    assert rec.recommend(rec.user_ids[cold], k=3).scorer == "fallback"
    with pytest.raises(ValueError, match="popularity"):
        Recommender(bundle, scorers=("mf",))
