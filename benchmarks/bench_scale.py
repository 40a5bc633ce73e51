"""How the pipeline's time and memory grow with the data, at 1 and 2 processes: a table and a log-log plot.

    flock /work/team/bench.lock python benchmarks/bench_scale.py                     # 1e5, 1e6, 1e7
    python benchmarks/bench_scale.py --sizes 100000 1000000 --procs 1                 # quicker

For each size, synthetic two-domain data with power-law item popularity and user activity
(``cdtl.data.synthetic``; 10^7 interactions = 1M users, 500k items) is written once as Parquet
under ``--data``, then ``python -m cdtl.scaling`` measures, in a fresh process (or under
``torchrun --nproc-per-node 2``, gloo), the load, one BPR epoch, one EMCDR fit, full ranking of
10,000 users and peak resident memory. One process uses every core (torch's threads); under
torchrun each of the two processes has one thread, so both columns use the same two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("load_s", "bpr_epoch_s", "emcdr_fit_s", "eval_s")


def generate(size: int, directory: Path) -> None:
    """Write the synthetic Parquet pair for ``size`` once (in a child process, so its memory is not counted)."""
    if (directory / "items.parquet").exists():
        return
    code = ("import sys; from cdtl.data.synthetic import synthetic_two_domain; "
            "synthetic_two_domain(int(sys.argv[1]), seed=0).write_parquet(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(size), str(directory)], check=True)


def measure(directory: Path, procs: int, threads: int) -> dict:
    if procs == 1:
        cmd = [sys.executable, "-m", "cdtl.scaling", str(directory), "--threads", str(threads)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--standalone",
               "-m", "cdtl.scaling", str(directory), "--threads", "1"]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CDTL_PROGRESS": "0"})
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["procs"], row["process_s"] = procs, time.perf_counter() - started
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
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
    cols = ["interactions", "users", "items", "procs", "load_s", "bpr_epoch_s", "emcdr_fit_s", "eval_s", "peak_rss_mb",
            "us_per_interaction"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        r["us_per_interaction"] = 1e6 * r["bpr_epoch_s"] / r["train_rows"]
        lines.append("| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else f"{r[c]:,}" for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="threads of the 1-process run")
    parser.add_argument("--data", type=Path, default=Path("/tmp/cdtl-scale"), help="where the synthetic data is kept")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        directory = args.data / f"n{size}"
        generate(size, directory)
        for procs in args.procs:
            rows.append(measure(directory, procs, args.threads))
            (args.out / "scale.json").write_text(json.dumps(rows, indent=2))  # kept as each row arrives
            print(f"done: {size:,} interactions, {procs} process(es): {json.dumps(rows[-1])}", file=sys.stderr)
    print(f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    text = table(rows)
    print(text)
    (args.out / "scale.md").write_text(text + "\n")
    plot(rows, args.out / "scale.png")
    print(f"wrote {args.out / 'scale.md'} and {args.out / 'scale.png'}")


if __name__ == "__main__":
    main()
