"""A bundle's sequential scorer: an ordered history, read in order by the bundled next-item model, behind /recommend.

The toy bundle of ``servekit`` gets a text SASRec (or an item-id SASRec) trained for a few
epochs on the toy users' histories of both domains, then goes through FastAPI's TestClient.
"""

from __future__ import annotations

import dataclasses
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from serveapp import AUTH, running
from servekit import toy_bundle, toy_trained

from cdtl.experiments.export_sequential import resolve, training_histories
from cdtl.models.sequential import next_item_batches
from cdtl.serve.bundle import BundleError, read_bundle
from cdtl.serve.pack import pack_bundle
from cdtl.serve.recommender import Recommender
from cdtl.serve.sequential import build_model
from cdtl.train import TrainConfig, fit, set_seed

MAX_LEN = 4
N_TARGET = 12  # the toy's comedy films f0..f11 (its adventure books are b0..b9)


def _trained(model: str = "text_sasrec") -> tuple:
    """The toy's random fusion models plus a next-item model trained on its histories (a second on a CPU)."""
    t = toy_trained()
    cd = t.cd
    catalogue = torch.cat([t.text[torch.as_tensor(cd.item_rows("books"))], t.text[torch.as_tensor(cd.item_rows("films"))]])
    settings = resolve({"model": model, "dim": 16, "max_len": MAX_LEN, "layers": 1, "dropout": 0.0,
                        **({"n_experts": 2} if model == "text_sasrec" else {})})
    set_seed(0)
    net = build_model(settings, catalogue)
    histories = training_histories(SimpleNamespace(cd=cd))
    fit(net, next_item_batches(histories, MAX_LEN, 16), TrainConfig(epochs=4, lr=0.01, progress=False, device="cpu"))
    return dataclasses.replace(t, sequential=net.eval(), sequential_args=settings["args"]), catalogue


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    trained, _ = _trained()
    return pack_bundle(tmp_path_factory.mktemp("seq") / "bundle", trained)


def _ask(client, history, k=12, **body):
    answer = client.post("/recommend", json={"history": history, "k": k, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _ranking(answer):
    return [i["item"] for i in answer["items"]]


def test_the_order_of_a_history_changes_the_answer(bundle):
    history = ["b1", "f2", "b4", "f7", "b0"]
    with running(bundle) as client:
        forward, backward = _ask(client, history), _ask(client, history[::-1])
    assert forward["scorer"] == backward["scorer"] == "sequential" and forward["weights"] == {"sequential": 1.0}
    assert _ranking(forward) != _ranking(backward)
    assert forward["history_used"] == backward["history_used"] == len(history) - 1  # MAX_LEN most recent
    assert not {"f2", "f7"} & set(_ranking(forward))  # history items are left out of the answer
    assert len(_ranking(forward)) == N_TARGET - 2


def test_a_history_longer_than_max_len_is_truncated_from_the_left(bundle):
    tail = ["b3", "f1", "b5", "f9"]
    with running(bundle) as client:
        short = _ask(client, tail)
        long = _ask(client, ["b0", "f4", "b9", *tail])
        other_head = _ask(client, ["b7", *tail])
        other_tail = _ask(client, ["b0", "f4", "b9", *tail[:-1], "f8"])
    assert long["history_used"] == short["history_used"] == MAX_LEN
    assert long["items"][:5] != other_tail["items"][:5]  # the recent end is read
    # the oldest items are not read; f4 (a seen film) is left out of the answer all the same
    assert [i for i in long["items"] if i["item"] != "f4"] == [i for i in short["items"] if i["item"] != "f4"]
    assert other_head["items"] == short["items"]


def test_unknown_items_are_reported_and_repeats_read_once(bundle):
    with running(bundle) as client:
        plain = _ask(client, ["b2", "f3", "b6"])
        noisy = _ask(client, ["b2", "no-such-item", "f3", "f3", "b6", "also-unknown"])
        nobody = _ask(client, ["no-such-item"], k=3)
    assert noisy["unknown_items"] == ["no-such-item", "also-unknown"]
    assert noisy["items"] == plain["items"] and noisy["history_used"] == plain["history_used"] == 3
    assert nobody["scorer"] == "fallback" and nobody["unknown_items"] == ["no-such-item"] and len(nobody["items"]) == 3


def test_bad_histories_get_a_4xx_naming_the_field(bundle):
    with running(bundle) as client:
        for body in ({"history": []}, {"history": [["b1"]]}, {"history": ["b1"], "k": 0}, {"history": [None]},
                     {"history": ["b1"], "user": "u01"}):
            answer = client.post("/recommend", json=body)
            assert 400 <= answer.status_code < 500, (body, answer.text)
            assert answer.json()["detail"].split(":")[0].split("[")[0].split(".")[0] in ("history", "k", "user"), answer.text


def test_the_service_answers_what_the_model_computes_every_time(bundle, tmp_path):
    trained, _ = _trained()  # trained again from the same seed
    again = pack_bundle(tmp_path / "again", trained)
    files = [read_bundle(b).manifest["files"]["sequential.safetensors"]["sha256"] for b in (bundle, again)]
    assert files[0] == files[1]  # the same weights, bit for bit
    items = read_bundle(bundle).items
    catalogue = items["item"].tolist()  # source items, then target items: the model's rows
    target = items.loc[items["domain"] == "films", "item"].tolist()
    history = ["f0", "b8", "f5", "b2"]
    with torch.no_grad():
        seq = torch.tensor([[catalogue.index(i) + 1 for i in history]])
        scores = trained.sequential.score_histories(seq)[0, len(catalogue) - len(target):].numpy()
    scores[[target.index("f0"), target.index("f5")]] = -np.inf
    order = np.argsort(-scores, kind="stable")[:10]
    with running(bundle) as client:
        first, second = _ask(client, history, k=10), _ask(client, history, k=10)
    with running(again) as client:
        third = _ask(client, history, k=10)
    assert first == second and first["items"] == third["items"]
    assert _ranking(first) == [target[j] for j in order]
    assert np.allclose([i["score"] for i in first["items"]], scores[order], atol=1e-4)


def test_items_added_later_are_read_and_ranked_by_the_text_model(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    with running(copy, items_store=tmp_path / "items.jsonl") as client:
        added = client.post("/items", headers=AUTH, json={"item": "f-new", "text": "A comedy film about a wedding puppy"})
        assert added.status_code == 201, added.text
        answer = _ask(client, ["b1", "f-new", "f2"], k=13)
    assert answer["unknown_items"] == [] and answer["history_used"] == 3
    assert "f-new" not in _ranking(answer) and len(answer["items"]) == N_TARGET - 1


def test_an_item_id_sasrec_serves_too_but_never_an_item_it_never_saw(tmp_path):
    trained, _ = _trained("sasrec")
    path = pack_bundle(tmp_path / "ids", trained)
    with running(path, items_store=tmp_path / "items.jsonl") as client:
        added = client.post("/items", headers=AUTH, json={"item": "f-new", "text": "A comedy film about a kite"})
        assert added.status_code == 201, added.text
        answer = _ask(client, ["b1", "f3", "f-new"], k=20)
    assert answer["scorer"] == "sequential" and answer["unknown_items"] == ["f-new"] and answer["history_used"] == 2
    assert "f-new" not in _ranking(answer) and len(answer["items"]) == N_TARGET - 1


def test_a_bundle_without_a_sequential_part_serves_as_before(bundle, tmp_path):
    plain = read_bundle(toy_bundle(tmp_path / "plain"))
    assert "sequential" not in plain.tensors and "sequential" not in plain.serving
    assert Recommender(plain).recommend(history=["b1", "b2"]).scorer == "bridge"
    without = Recommender(read_bundle(bundle), sequential=False).recommend(history=["b1", "f2", "b2"])
    assert without.scorer == "bridge" and without.unknown_items == ["f2"]


def test_a_changed_sequential_part_is_refused_naming_the_file(bundle, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / "sequential.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "sequential.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sequential.safetensors"):
        read_bundle(copy)
