"""Epoch time, peak memory and test metrics of the MF variants on MovieLens 100K and 1M, as a table.

    python benchmarks/bench_mf.py                 # every variant, the configs' own epochs (slow: minutes)
    python benchmarks/bench_mf.py --epochs 5      # quick look; metrics are then not converged
    python benchmarks/bench_mf.py --only mf_bpr_ml1m --threads 2
    python benchmarks/bench_mf.py --profile mf_bpr_ml100k   # where an epoch's time goes

Each variant runs in its own process so that its peak resident memory is its own. The
full-ranking evaluation of every user is timed separately (the goal: all 6,040 users of
MovieLens 1M in under 2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

VARIANTS = [
    "mf_bpr_ml100k", "mf_softmax_ml100k", "mf_sampled_softmax_ml100k", "mf_mse_ml100k",
    "mf_bpr_ml1m", "mf_softmax_ml1m", "mf_sampled_softmax_ml1m", "mf_mse_ml1m",
]


def one(name: str, epochs: int | None, threads: int) -> dict:
    """Run one config in this process; return its timings, peak memory and test metrics."""
    import torch

    torch.set_num_threads(threads)
    from cdtl.data.ids import interaction_matrix
    from cdtl.evaluate import evaluate_ranking, group_items
    from cdtl.experiments import load_config, resolve, run
    from cdtl.experiments.single import prepare

    overrides = [f"train.epochs={epochs}"] if epochs else []
    results = run(load_config(name, overrides + ["train.progress=false"]))
    row = {
        "variant": name,
        "epochs": results["epochs_run"],
        "s/epoch": results["mean_epoch_seconds"],
        "wall s": results["wall_seconds"],
        "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **{k: v["mean"] for k, v in results["metrics"].items()},
    }
    if results["config"]["protocol"]["name"] == "per_user":  # time full ranking of every test user
        cfg = resolve(load_config(name))
        prep = prepare(cfg)
        train, test = prep.parts["train"], prep.parts["test"]
        csr = interaction_matrix(train["u"].to_numpy(), train["i"].to_numpy(), len(prep.users), len(prep.items))
        users, relevant = group_items(test["u"].to_numpy(), test["i"].to_numpy())
        emb_u, emb_i = torch.randn(len(prep.users), 64), torch.randn(len(prep.items), 64)
        start = time.perf_counter()
        evaluate_ranking(lambda u: emb_u[u] @ emb_i.T, users, relevant, csr, ks=(10,))
        row["eval s (all users)"] = time.perf_counter() - start
        row["eval users"] = int(len(users))
    return row


def profile(name: str, epochs: int, threads: int) -> None:
    """Time each phase of the training loop on a config: batches and negatives, forward, backward, step, validation."""
    import torch

    torch.set_num_threads(threads)
    from cdtl.data.ids import interaction_matrix
    from cdtl.experiments import load_config, resolve
    from cdtl.experiments.common import rank_users
    from cdtl.experiments.single import _batches, prepare
    from cdtl.models.mf import MF
    from cdtl.train import TrainConfig, make_optimizer

    cfg = resolve(load_config(name))
    started = time.perf_counter()
    prep = prepare(cfg)
    prepare_s = time.perf_counter() - started
    train, val = prep.parts["train"], prep.parts["val"]
    csr = interaction_matrix(train["u"].to_numpy(), train["i"].to_numpy(), len(prep.users), len(prep.items))
    m = cfg["model"]
    model = MF(len(prep.users), len(prep.items), m["dim"], loss=m["loss"], reg=m["reg"], sparse=m["sparse"])
    optimizer = make_optimizer(model, TrainConfig.from_dict(cfg["train"]))
    maker = _batches(cfg, prep, csr)
    phases = dict.fromkeys(["batches", "forward", "backward", "step", "validate"], 0.0)
    for epoch in range(epochs):
        t = time.perf_counter()
        batches = list(maker(epoch, torch.Generator().manual_seed(epoch)))
        phases["batches"] += time.perf_counter() - t
        for batch in batches:
            t = time.perf_counter()
            loss = model.loss(batch)
            phases["forward"] += time.perf_counter() - t
            t = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            phases["backward"] += time.perf_counter() - t
            t = time.perf_counter()
            optimizer.step()
            phases["step"] += time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode():
            rank_users(model.score_all, val, cfg["evaluate"]["metrics"], csr, cfg["evaluate"]["batch_size"])
        phases["validate"] += time.perf_counter() - t
    total = sum(phases.values())
    print(f"{name}: {len(batches)} steps per epoch, {threads} thread(s), data prepared in {prepare_s:.2f} s")
    print("| phase | s per epoch | share |")
    print("|---|---|---|")
    for phase, seconds in phases.items():
        print(f"| {phase} | {seconds / epochs:.3f} | {seconds / total:.0%} |")
    print(f"| total | {total / epochs:.3f} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=VARIANTS)
    parser.add_argument("--epochs", type=int, default=None, help="override every config's epochs")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--profile", metavar="CONFIG", help="time the phases of one config's epochs instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.epochs or 3, args.threads)
        return
    if args.child:
        print(json.dumps(one(args.child, args.epochs, args.threads)))
        return
    rows = []
    for name in args.only:
        cmd = [sys.executable, __file__, "--child", name, "--threads", str(args.threads)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CDTL_PROGRESS": "0"})
        if out.returncode != 0:
            print(f"{name} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"done {name}", file=sys.stderr)
    columns = ["variant", "epochs", "s/epoch", "wall s", "peak RSS MB", "eval s (all users)", "eval users",
               "recall@10", "ndcg@10", "rmse", "mae"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        print("| " + " | ".join(f"{c:.4f}" if isinstance(c, float) else str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
