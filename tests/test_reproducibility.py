"""The same seed gives the same numbers on a CPU: whatever PYTHONHASHSEED is, and however the threads run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from own_data import CONFIGS

from cdtl.train import set_seed

ROOT = Path(__file__).resolve().parent.parent
# run every kind of CONFIGS on the hand-made two-domain set, each into OUT/<kind>
RUN_KINDS = """
import sys
from own_data import CONFIGS, own_data
from cdtl.experiments import run
out = sys.argv[1]
for kind in sys.argv[2:]:
    run(CONFIGS[kind], f"{out}/{kind}", data=own_data(kind))
"""


def _run_kinds(out: Path, hash_seed: str, threads: int, kinds: list[str]) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": str(threads), "CDTL_PROGRESS": "off",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "support"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", RUN_KINDS, str(out), *kinds], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"PYTHONHASHSEED={hash_seed}: {done.stderr[-3000:]}"


def without_timings(value: object) -> object:
    """``value`` (parsed metrics.json) without the keys that measure time (``seconds``, ``wall_seconds``, ...)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def first_difference(a: object, b: object, where: str = "") -> str | None:
    """Where two parsed JSON values first differ (a path and both values), or None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{where}/{key}: only in one run"
            found = first_difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((f for i, (x, y) in enumerate(zip(a, b)) if (f := first_difference(x, y, f"{where}[{i}]"))), None)
    return None if a == b else f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def two_hash_seeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every kind run twice in fresh processes, with string hashing seeded 1 and then 2."""
    base = tmp_path_factory.mktemp("hash_seeds")
    for seed in ("1", "2"):
        _run_kinds(base / seed, seed, 2, list(CONFIGS))
    return base / "1", base / "2"


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_every_kind_gives_the_same_results_whatever_the_string_hash_seed(kind, two_hash_seeds):
    one, two = (folder / kind for folder in two_hash_seeds)
    first, second = (without_timings(json.loads((d / "metrics.json").read_text())) for d in (one, two))
    assert first_difference(first, second) is None, f"{kind}: {first_difference(first, second)}"
    assert (one / "per_user.csv").exists() == (two / "per_user.csv").exists()
    if (one / "per_user.csv").exists():
        assert (one / "per_user.csv").read_bytes() == (two / "per_user.csv").read_bytes(), f"{kind}: per_user.csv differs"


def test_timings_are_the_only_keys_left_out():
    timed = {"wall_seconds": 1.5, "rows": [{"seconds": 2, "ndcg": 0.25}], "seed": 0, "mean_epoch_seconds": 0.1}
    assert without_timings(timed) == {"rows": [{"ndcg": 0.25}], "seed": 0}
    assert first_difference({"a": [1, {"b": 0.5}]}, {"a": [1, {"b": 0.5000001}]}) == "/a[1]/b: 0.5 != 0.5000001"


def test_the_gradient_of_indexed_rows_is_the_same_every_time_on_two_threads():
    """Advanced indexing's backward adds rows with atomic adds in thread order unless deterministic algorithms are on:
    DropoutNet's softmax (``logits[inverse]``) drifted between two runs of the same seed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        set_seed(0)
        logits = torch.randn(300, 600, requires_grad=True)  # over the size at which torch splits the work
        rows, targets = torch.randint(0, 300, (1024,)), torch.randint(0, 600, (1024,))
        grads = []
        for _ in range(30):
            logits.grad = None
            torch.nn.functional.cross_entropy(logits[rows], targets).backward()
            grads.append(logits.grad.clone())
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(grads[0], g) for g in grads[1:])


def _dropoutnet_weights() -> dict[str, torch.Tensor]:
    """DropoutNet trained for two epochs of full-softmax batches large enough for torch to split them between threads."""
    from cdtl.models.batches import softmax_batches
    from cdtl.models.dropoutnet import DropoutNet
    from cdtl.train import TrainConfig, fit

    g = torch.Generator().manual_seed(0)
    n_users, n_items, d = 400, 600, 16
    users, items = torch.randint(0, n_users, (6000,), generator=g), torch.randint(0, n_items, (6000,), generator=g)
    set_seed(0)
    model = DropoutNet(torch.randn(n_items, d, generator=g), torch.ones(n_items, dtype=torch.bool),
                       torch.randn(n_users, d, generator=g), torch.ones(n_users, dtype=torch.bool), dim=8, hidden=16)
    fit(model, softmax_batches(users.numpy(), items.numpy(), n_items, 1024), TrainConfig(epochs=2, progress=False))
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_dropoutnet_trains_to_the_same_weights_on_two_threads():
    """The model whose row moved between two runs of chapter 05's command: same seed, same weights, bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first, second = _dropoutnet_weights(), _dropoutnet_weights()
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(first[k], second[k]) for k in first)
