"""How the pipeline's time and memory grow with the data, at 1 and 2 processes: a table and a log-log plot.

    python benchmarks/bench_scale.py                                                 # 1e5, 1e6, 1e7
    python benchmarks/bench_scale.py --sizes 100000 1000000 --procs 1                 # quicker
    python benchmarks/bench_scale.py --quick                                          # a minute: proves it runs

For each size, synthetic two-domain data with power-law item popularity and user activity
(``cdtl.data.synthetic``; 10^7 interactions = 1M users, 500k items) is written once as Parquet
under ``--data`` (default ``scale`` under ``$XDG_CACHE_HOME/cdtl/bench``, i.e. ``~/.cache/cdtl/bench``;
made on first use and reused), then ``python -m cdtl.scaling`` measures, in a fresh process (or under
``torchrun --nproc-per-node 2``, gloo), the load, one BPR epoch, one EMCDR fit, full ranking of
10,000 users and peak resident memory. One process uses every core (torch's threads); under
torchrun each of the two processes has one thread, so both columns use the same two cores.

Beside each one-process row, ``implicit``'s BPR (the field's fast CPU implementation: Cython,
multi-threaded; ``pip install implicit``, in the ``bench`` extra) runs one epoch in a fresh
process on the same training rows, with the same dimension (64 factors and an item bias) and
the same threads (``num_threads`` and ``threadpoolctl``), and the table gives the ratio.

Each row is written to ``--out``/scale.json and the table to scale.md as soon as it is
measured, so an interrupted run keeps what it measured; a measurement that fails is kept as a
row with its error and the run goes on. The table ends with the checks of the targets (one BPR
epoch at 10^7 under 30 s, peak RSS under 4 GB, time per interaction at 10^7 within 1.3x of 10^6,
at most 1.5x implicit's epoch) for the sizes measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cdtl.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
BENCH_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdtl" / "bench"
STAGES = ("load_s", "bpr_epoch_s", "emcdr_fit_s", "eval_s")
QUICK = {"sizes": [10_000, 30_000], "eval_users": 1_000}


def generate(size: int, directory: Path) -> None:
    """Write the synthetic Parquet pair for ``size`` once (in a child process, so its memory is not counted)."""
    if (directory / "items.parquet").exists():
        return
    code = ("import sys; from cdtl.data.synthetic import synthetic_two_domain; "
            "synthetic_two_domain(int(sys.argv[1]), seed=0).write_parquet(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(size), str(directory)], check=True)


def measure(directory: Path, size: int, procs: int, threads: int, eval_users: int) -> dict:
    """One measurement in a fresh process (or torchrun job); a failure comes back as a row with its error."""
    options = [str(directory), "--eval-users", str(eval_users)]
    if procs == 1:
        cmd = [sys.executable, "-m", "cdtl.scaling", *options, "--threads", str(threads)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--standalone",
               "-m", "cdtl.scaling", *options, "--threads", "1"]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CDTL_PROGRESS": "0"})
    if out.returncode != 0:
        print(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
        row = {"interactions": size, "error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    else:
        row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(procs=procs, process_s=time.perf_counter() - started, load_at_start=load)
    return row


def implicit_epoch(directory: Path, threads: int, seed: int = 0) -> dict:
    """One epoch of implicit's BPR on the training rows ``cdtl.scaling.measure`` trains on (same split), in this process."""
    import implicit
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    from cdtl.data.columnar import csr_matrix, read_interactions
    from cdtl.data.protocols import per_user_split
    from cdtl.scaling import peak_rss_mb

    data = read_interactions(directory / "interactions.parquet", directory / "items.parquet")  # as measure() reads it
    train, _, _ = per_user_split(data.frame().rename(columns={"u": "user"}), (0.8, 0.1, 0.1), seed=seed)
    matrix = csr_matrix(train["user"].to_numpy(), train["i"].to_numpy(), len(data.users), len(data.items))
    del data, train
    # factors=64: 64 latent dimensions plus the item-bias column, as MF(dim=64) has
    model = BayesianPersonalizedRanking(factors=64, iterations=1, num_threads=threads, random_state=seed)
    with threadpool_limits(threads):
        started, cpu = time.perf_counter(), time.process_time()
        model.fit(matrix, show_progress=False)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {"implicit_bpr_epoch_s": seconds, "implicit_bpr_epoch_cpu_s": cpu_seconds, "implicit_rows": int(matrix.nnz),
            "implicit_peak_rss_mb": peak_rss_mb(), "implicit_version": implicit.__version__}


def measure_implicit(directory: Path, threads: int) -> dict:
    """``implicit_epoch`` in a fresh process (its own peak memory); a failure comes back as ``implicit_error``."""
    cmd = [sys.executable, __file__, "--implicit-child", str(directory), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)  # a failure becomes implicit_error
    if out.returncode != 0:
        print(f"implicit's BPR failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return {"implicit_error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    rows = [r for r in rows if "error" not in r]
    for procs in sorted({r["procs"] for r in rows}):
        mine = sorted((r for r in rows if r["procs"] == procs), key=lambda r: r["interactions"])
        for stage, marker in zip(STAGES, "osD^"):
            ax.plot([r["interactions"] for r in mine], [r[stage] for r in mine], marker=marker,
                    ls="-" if procs == 1 else "--", label=f"{stage[:-2]} ({procs} proc)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("interactions")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("cost against data size (log-log)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(rows: list[dict]) -> str:
    """The measured rows as a Markdown table (wall seconds, CPU seconds of the BPR epoch), then the targets' checks."""
    cols = ["interactions", "users", "items", "procs", "load_s", "bpr_epoch_s", "bpr_epoch_cpu_s",
            "implicit_bpr_epoch_s", "implicit_bpr_epoch_cpu_s", "cdtl_over_implicit", "emcdr_fit_s",
            "eval_s", "eval_users", "peak_rss_mb", "implicit_peak_rss_mb", "us_per_interaction", "load_at_start"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['interactions']:,} | | | {r['procs']} | failed: {r['error']} |" + " |" * (len(cols) - 5))
            continue
        r["us_per_interaction"] = 1e6 * r["bpr_epoch_s"] / r["train_rows"]
        if "implicit_bpr_epoch_s" in r:  # per training row: implicit counts a repeated (user, item) pair once
            r["cdtl_over_implicit"] = ((r["bpr_epoch_s"] / r["train_rows"])
                                       / (r["implicit_bpr_epoch_s"] / r["implicit_rows"]))
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return "\n".join(lines + [""] + targets(rows))


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def targets(rows: list[dict]) -> list[str]:
    """The scaling targets, checked on whichever of the rows at 10^6 and 10^7 interactions were measured."""
    done = {(r["interactions"], r["procs"]): r for r in rows if "error" not in r}
    lines = []
    for procs in sorted({p for _, p in done}):
        big, mid = done.get((10_000_000, procs)), done.get((1_000_000, procs))
        if big:
            epoch, rss = big["bpr_epoch_s"], big["peak_rss_mb"]
            lines.append(f"- {procs} process(es), 10^7: one BPR epoch {epoch:.1f} s (target < 30 s: "
                         f"{'met' if epoch < 30 else 'missed'}), peak RSS {rss / 1024:.2f} GB (target < 4 GB: "
                         f"{'met' if rss < 4096 else 'missed'})")
        if big and mid:
            ratio = (big["bpr_epoch_s"] / big["train_rows"]) / (mid["bpr_epoch_s"] / mid["train_rows"])
            lines.append(f"- {procs} process(es): time per interaction at 10^7 / at 10^6 = {ratio:.2f} "
                         f"(target <= 1.3: {'met' if ratio <= 1.3 else 'missed'})")
        for label, row in (("10^6", mid), ("10^7", big)):
            if row and "cdtl_over_implicit" in row:
                versus = row["cdtl_over_implicit"]
                lines.append(f"- {procs} process(es), {label}: BPR epoch {versus:.2f}x implicit's "
                             f"per training row ({row['bpr_epoch_s']:.1f} s against {row['implicit_bpr_epoch_s']:.1f} s; "
                             f"target <= 1.5x: {'met' if versus <= 1.5 else 'missed'})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="threads of the 1-process run")
    parser.add_argument("--eval-users", type=int, default=10_000, help="test users ranked against every item")
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK['sizes']} and {QUICK['eval_users']:,} ranked users: a minute, to prove it runs")
    parser.add_argument("--data", type=Path, default=BENCH_CACHE / "scale",
                        help=f"where the synthetic data is made once and kept (default {BENCH_CACHE / 'scale'})")
    parser.add_argument("--no-implicit", action="store_true", help="leave out implicit's BPR epoch")
    parser.add_argument("--implicit-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="where scale.json, scale.md and scale.png go (--quick: OUT/quick)")
    args = parser.parse_args()
    if args.implicit_child:
        print(json.dumps(implicit_epoch(args.implicit_child, args.threads)))
        return
    if args.quick:
        args.sizes, args.eval_users, args.out = QUICK["sizes"], QUICK["eval_users"], args.out / "quick"
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        directory = args.data / f"n{size}"
        generate(size, directory)
        for procs in args.procs:
            rows.append(measure(directory, size, procs, args.threads, args.eval_users))
            if procs == 1 and not args.no_implicit and "error" not in rows[-1]:
                rows[-1].update(measure_implicit(directory, args.threads))
            atomic_write(args.out / "scale.json", json.dumps(rows, indent=2))  # kept as each row arrives
            atomic_write(args.out / "scale.md", table(rows) + "\n")
            print(f"done: {size:,} interactions, {procs} process(es): {json.dumps(rows[-1])}", file=sys.stderr)
    print(f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(table(rows))
    plot(rows, args.out / "scale.png")
    print(f"wrote {args.out / 'scale.json'}, {args.out / 'scale.md'} and {args.out / 'scale.png'}")


if __name__ == "__main__":
    main()
