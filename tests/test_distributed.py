"""Training and encoding under torchrun with two gloo processes on the CPU, and the errors of a job that cannot run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cdtl.cli import main as cdtl_main
from cdtl.models.mf import MF
from cdtl.train import TrainConfig, fit

pytestmark = pytest.mark.slow  # torchrun subprocesses on every test

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "tests" / "support" / "distributed_jobs.py"


def torchrun(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Two processes on this machine (gloo), each with one thread; the job's output comes back."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", *args]
    env = {**os.environ, "CDTL_PROGRESS": "0", "OMP_NUM_THREADS": "1", "CDTL_DIST_TIMEOUT": "60"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def test_cdtl_run_under_torchrun_trains_with_ddp_writes_once_and_resumes_on_one_process(tmp_path, capsys):
    out, ckpt = tmp_path / "run", tmp_path / "ckpt"
    # sparse tables with sparse_adam: DDP averages sparse gradients too
    settings = ["--set", "model.dim=16", "--set", "model.sparse=true", "--set", "train.optimizer=sparse_adam",
                "--set", "evaluate.bootstrap=20", "--set", f"train.checkpoint_dir={ckpt}"]
    done = torchrun("-m", "cdtl.cli", "run", "configs/mf_bpr_ml100k.yaml", "--out", str(out), *settings,
                    "--set", "train.epochs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ndcg@10") == 1 and done.stdout.count("wrote") == 1  # one table, from rank 0
    results = json.loads((out / "metrics.json").read_text())
    assert results["epochs_run"] == 2 and 0.05 < results["metrics"]["ndcg@10"]["mean"] < 0.5
    assert results["metrics"]["ndcg@10"]["n"] == 943  # every test user, gathered from both ranks' shares
    assert json.loads((ckpt / "last.json").read_text())["epoch"] == 1
    # the checkpoint written by rank 0 of two resumes in one process
    code = cdtl_main(["run", "configs/mf_bpr_ml100k.yaml", "--out", str(tmp_path / "resumed"), *settings,
                      "--set", "train.epochs=3", "--set", "train.resume=true"])
    assert code == 0, capsys.readouterr().err
    resumed = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2]
    assert resumed["history"][:2] == results["history"]


def test_a_rank_that_dies_stops_the_others_and_leaves_the_last_checkpoint(tmp_path):
    done = torchrun(str(JOBS), "die", str(tmp_path))
    assert done.returncode != 0
    assert "rank 0 of 2: stopped at epoch 1 because another process of the job stopped" in done.stderr
    assert "is intact: resume with train.resume: true" in done.stderr
    state = json.loads((tmp_path / "ckpt" / "last.json").read_text())
    assert state["epoch"] == 0
    model = MF(30, 20, 4, loss="mse")
    model.load_state_dict(load_file(str(tmp_path / "ckpt" / "last.safetensors")))  # whole and readable


def test_sharded_encoding_equals_one_process_shard_for_shard(tmp_path):
    from distributed_jobs import TITLES

    from cdtl.encoders.text_encoder import TextEncoder

    done = torchrun(str(JOBS), "encode", str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr[-3000:]
    two = load_file(tmp_path / "two" / "vectors.safetensors")
    assert json.loads((tmp_path / "two" / "encode.json").read_text())["world"] == 2
    torch.set_num_threads(1)
    one = TextEncoder(None, max_length=16, batch_size=8, chunk_size=8, device="cpu", cache_dir=tmp_path / "one")
    vectors = one.encode(TITLES)
    assert torch.equal(two["cached"], vectors) and torch.equal(two["plain"], vectors)
    shards = {p.relative_to(tmp_path / "two" / "cache") for p in (tmp_path / "two" / "cache").rglob("shards/*")}
    assert shards == {p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("shards/*")}
    assert len(shards) == 2 * 6  # 48 texts in chunks of 8: six shards, each a tensor file and an index
    for path in shards:
        if path.suffix == ".safetensors":
            assert torch.equal(load_file(tmp_path / "two" / "cache" / path)["embeddings"],
                               load_file(tmp_path / "one" / path)["embeddings"])


def test_a_world_size_that_does_not_divide_the_batch_is_refused(tmp_path):
    done = torchrun("-m", "cdtl.cli", "run", "configs/mf_bpr_ml100k.yaml", "--out", str(tmp_path),
                    "--set", "batches.batch_size=1023", "--set", "train.epochs=1")
    assert done.returncode != 0
    assert "batch_size 1023 does not divide over 2 processes: make it a multiple of the world size" in done.stderr
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("kind", ["transfer", "fusion", "multitask"])
def test_comparisons_are_refused_under_torchrun_before_any_work(kind, monkeypatch):
    from cdtl.experiments import ConfigError, run

    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets in every process it starts
    with pytest.raises(ConfigError, match=f"kind '{kind}' runs in one process; under torchrun only single"):
        run({"kind": kind, "dataset": {"name": "no-such-dataset"}})


@pytest.mark.parametrize("settings, message", [
    ({"optimizer": "adam"}, "optimizer 'adam' cannot update them"),
    ({"optimizer": "adamw"}, "optimizer 'adamw' cannot update them"),
    ({"optimizer": "sgd", "momentum": 0.9}, "sgd needs momentum: 0 and weight_decay: 0"),
    ({"optimizer": "sparse_adam", "weight_decay": 0.01}, "sparse_adam has no weight_decay"),
    ({"optimizer": "sparse_adam", "grad_clip": 1.0}, "grad_clip cannot measure the norm of a sparse gradient"),
])
def test_optimisers_that_cannot_train_sparse_tables_are_refused(settings, message):
    batches = lambda epoch, generator: [{"user": torch.tensor([0, 1]), "pos": torch.tensor([1, 2]),  # noqa: E731
                                         "neg": torch.tensor([3, 0])}]
    with pytest.raises(ValueError, match=message):
        fit(MF(4, 4, 2, loss="bpr", sparse=True), batches, TrainConfig(epochs=1, progress=False, device="cpu", **settings))


@pytest.mark.parametrize("optimizer", ["sparse_adam", "sgd"])
def test_sparse_tables_learn_with_the_supported_optimisers(optimizer):
    torch.manual_seed(0)
    users = torch.arange(64) % 8
    pos = (users * 3) % 16
    batches = lambda epoch, generator: [{"user": users, "pos": pos,  # noqa: E731
                                         "neg": torch.randint(16, (64,), generator=generator)}]
    model = MF(8, 16, 8, loss="bpr", sparse=True)
    lr = 0.05 if optimizer == "sparse_adam" else 20.0
    result = fit(model, batches, TrainConfig(epochs=30, lr=lr, momentum=0.0, optimizer=optimizer, progress=False,
                                             device="cpu"))
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert model.user_emb.weight.grad is None or model.user_emb.weight.grad.is_sparse
