"""How time and memory grow with the data: load, one BPR epoch, one EMCDR fit and full ranking, measured on one table.

``measure(directory)`` reads the two-domain Parquet files that
``cdtl.data.synthetic.synthetic_two_domain(n).write_parquet(directory)`` wrote and times each
stage of the course's pipeline on them, in this process or, under ``torchrun``, on every rank
(DDP training, evaluation sharded over users). ``benchmarks/bench_scale.py`` runs it at 10^5 to
10^7 interactions; chapter 02 runs it at a few small sizes. Run one measurement with

    python -m cdtl.scaling DIRECTORY                          # one process
    torchrun --nproc-per-node 2 -m cdtl.scaling DIRECTORY     # two processes (gloo on CPU)
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cdtl import distributed
from cdtl.data.columnar import csr_matrix, read_interactions
from cdtl.data.protocols import per_user_split
from cdtl.data.synthetic import synthetic_two_domain
from cdtl.evaluate import DEFAULT_MEMORY_BUDGET, evaluate_ranking, group_items
from cdtl.models.batches import bpr_batches
from cdtl.models.mf import MF
from cdtl.models.transfer.emcdr import EMCDR, user_batches
from cdtl.train import TrainConfig, fit

#: the stages ``measure`` times, in the order they run
STAGES = ("load_s", "bpr_epoch_s", "emcdr_fit_s", "eval_s")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class _CpuClock:
    """CPU seconds of each stage summed over the ranks (``<stage>_cpu_s``): unlike wall time, not inflated by other jobs."""

    def __init__(self, out: dict[str, Any]) -> None:
        self.out, self.last = out, time.process_time()

    def lap(self, stage: str | None) -> None:
        now = time.process_time()
        if stage is not None:
            self.out[f"{stage}_cpu_s"] = float(distributed.gather(torch.tensor([now - self.last])).sum())
        self.last = time.process_time()


def _train_config(seed: int, lr: float) -> TrainConfig:
    return TrainConfig(epochs=1, optimizer="sparse_adam", lr=lr, seed=seed, device="cpu", progress=False)


def _seconds(function: Any, *args: Any, **kwargs: Any) -> float:
    """How long one call of ``function`` takes, in wall-clock seconds."""
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def _fit_emcdr(train: Any, n_users: int, n_items: int, dim: int, batch_size: int, mapping_epochs: int,
               config: TrainConfig) -> int:
    """EMCDR as the scaling curve times it: one BPR epoch per domain, then the mapping; returns the overlap users."""
    u, i, domain = train["user"].to_numpy(), train["i"].to_numpy(), train["domain"].to_numpy()
    sides = []
    for code in (0, 1):
        rows = domain == code
        mf = MF(n_users, n_items, dim, loss="bpr", sparse=True)
        fit(mf, bpr_batches(u[rows], i[rows], n_items, batch_size, csr_matrix(u[rows], i[rows], n_users, n_items)),
            config)
        sides.append(mf)
    both = np.intersect1d(np.unique(u[domain == 0]), np.unique(u[domain == 1]))
    emcdr = EMCDR(sides[0], sides[1], mapping="linear")
    del sides
    gc.collect()
    fit(emcdr, user_batches(both, 1024), TrainConfig(epochs=mapping_epochs, optimizer="adam", lr=1e-2, seed=config.seed,
                                                     device="cpu", progress=False))
    del emcdr
    gc.collect()
    return int(both.size)


def measure(
    directory: str | Path,
    *,
    dim: int = 64,
    batch_size: int = 8192,
    lr: float = 1e-3,
    eval_users: int = 10_000,
    mapping_epochs: int = 5,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    seed: int = 0,
) -> dict[str, Any]:
    """Time the pipeline's stages on the Parquet pair in ``directory``; every rank returns the same dict.

    - ``load_s``: read interactions and items (Arrow, integer codes), split each user's
      interactions 80/10/10 and build the training CSR matrix;
    - ``bpr_epoch_s``: one epoch of ``MF(sparse=True)`` with BPR (one negative, ``sparse_adam``)
      over every training interaction of both domains;
    - ``emcdr_fit_s``: EMCDR with one BPR epoch per domain (domain A is the source, B the
      target) and a linear mapping fitted for ``mapping_epochs`` on the users active in both;
    - ``eval_s``: full ranking of ``eval_users`` test users (seeded sample) over every item,
      training items excluded, in chunks within ``memory_budget`` bytes;
    - ``peak_rss_mb``: the largest peak resident memory of any rank.
    """
    directory = Path(directory)
    out: dict[str, Any] = {"world_size": distributed.world_size(), "threads": torch.get_num_threads()}
    cpu = _CpuClock(out)
    started = time.perf_counter()
    data = read_interactions(directory / "interactions.parquet", directory / "items.parquet")
    train, _, test = per_user_split(data.frame().rename(columns={"u": "user"}), (0.8, 0.1, 0.1), seed=seed)
    n_users, n_items = len(data.users), len(data.items)
    u, i = train["user"].to_numpy(), train["i"].to_numpy()
    train_csr = csr_matrix(u, i, n_users, n_items)
    out["load_s"] = time.perf_counter() - started
    cpu.lap("load")
    out.update(interactions=len(data), users=n_users, items=n_items, train_rows=int(u.size))

    model = MF(n_users, n_items, dim, loss="bpr", sparse=True)
    result = fit(model, bpr_batches(u, i, n_items, batch_size, train_csr), _train_config(seed, lr))
    out["bpr_epoch_s"] = result.history[0]["seconds"]
    cpu.lap("bpr_epoch")
    del model, result
    gc.collect()

    cpu.lap(None)
    started = time.perf_counter()
    out["overlap_users"] = _fit_emcdr(train, n_users, n_items, dim, batch_size, mapping_epochs, _train_config(seed, lr))
    out["emcdr_fit_s"] = time.perf_counter() - started
    cpu.lap("emcdr_fit")

    model = MF(n_users, n_items, dim, loss="bpr")  # untrained scores cost the same to rank as trained ones
    users, relevant = group_items(test["user"].to_numpy(), test["i"].to_numpy())
    pick = np.sort(np.random.default_rng(seed).choice(users.size, min(eval_users, users.size), replace=False))
    cpu.lap(None)
    out["eval_s"] = _seconds(evaluate_ranking, model.score_all, users[pick], [relevant[k] for k in pick], train_csr,
                             (10,), memory_budget=memory_budget, shard=distributed.active())
    cpu.lap("eval")
    out["eval_users"] = int(pick.size)
    out["peak_rss_mb"] = float(distributed.gather(torch.tensor([peak_rss_mb()])).max())
    return out


def curve(sizes: Sequence[int], directory: str | Path, *, seed: int = 0, **options: Any) -> list[dict[str, Any]]:
    """``measure`` at each size of synthetic two-domain data (written under ``directory`` once), in this process.

    For the shape of the curve at small sizes (a chapter); the benchmark measures each size in a
    fresh process so that peak memory is per size. ``options`` go to ``measure``.
    """
    rows = []
    for size in sizes:
        folder = Path(directory) / f"n{int(size)}"
        if not (folder / "items.parquet").exists():
            synthetic_two_domain(int(size), seed=seed).write_parquet(folder)
        rows.append(measure(folder, seed=seed, **options))
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m cdtl.scaling DIRECTORY`` (or under torchrun): print one JSON line of timings from rank 0."""
    parser = argparse.ArgumentParser(prog="python -m cdtl.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", help="folder with interactions.parquet and items.parquet")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--eval-users", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    distributed.setup(torch.device("cpu"))
    main_rank = distributed.is_main()
    try:
        row = measure(args.directory, dim=args.dim, batch_size=args.batch_size, eval_users=args.eval_users)
    finally:
        distributed.teardown()
    if main_rank:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
