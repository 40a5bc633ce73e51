"""BPR on MovieLens 100K, cdtl against RecBole 1.2.1, same protocol, same machine, one after the other.

    python benchmarks/bench_recbole.py                      # RecBole's environment made on first use, then reused
    python benchmarks/bench_recbole.py --recbole-python /path/to/recbole-venv/bin/python

Protocol for both: every rating an interaction, each user's interactions shuffled and cut
80/10/10 (RecBole: ``RS [0.8, 0.1, 0.1]``, ``group_by: user``, ``order: RO``), full ranking of
every item the user has not seen (training items excluded from validation, training and
validation items from test), early stopping on validation NDCG@10, test users scored once.
RecBole runs with its BPR defaults (dim 64, one negative, batch 2048, lr 0.001, patience 10).

Each system runs in its own fresh process and the wall time is the whole process (imports,
data, training, evaluation), as a user would see it. RecBole lives in a separate environment,
never a dependency of cdtl: by default ``recbole-venv`` under ``$XDG_CACHE_HOME/cdtl/bench``
(``~/.cache/cdtl/bench``), created on first use with ``recbole==1.2.1`` (and the setuptools,
NumPy and pandas it still runs with: see ``RECBOLE``) and the torch this Python has
(``--recbole-env`` puts it elsewhere, ``--recbole-python`` uses an environment you made).
Under current torch RecBole needs
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` to reload its own checkpoint, which this script sets
for it. Time it on a quiet machine (on a shared one, under ``flock`` with a lock file of
your choice) and say how busy the machine was: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdtl" / "bench"
# RecBole 1.2.1 and its ray 2.6 need pkg_resources (setuptools before 81; torch 2.13 asks for 77.0.3 or later),
# NumPy 1 (np.bool8) and so pandas 2
RECBOLE = ["recbole==1.2.1", "setuptools>=77.0.3,<81", "numpy<2", "pandas<3"]

RECBOLE_CONFIG = {
    "seed": 0,
    "reproducibility": True,
    "load_col": {"inter": ["user_id", "item_id"]},
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
    "metrics": ["Recall", "NDCG"],
    "topk": [10],
    "valid_metric": "NDCG@10",
    "epochs": 300,
    "stopping_step": 10,
    "show_progress": False,
}


def recbole_child() -> None:
    """Runs inside RecBole's environment: BPR on its bundled ml-100k, one JSON line of results."""
    import recbole
    from recbole.quick_start import run_recbole

    data_path = Path(recbole.__file__).parent / "dataset_example"
    config = {**RECBOLE_CONFIG, "data_path": str(data_path), "checkpoint_dir": tempfile.mkdtemp()}
    result = run_recbole(model="BPR", dataset="ml-100k", config_dict=config)
    test = result["test_result"]
    print(json.dumps({"ndcg@10": float(test["ndcg@10"]), "recall@10": float(test["recall@10"]),
                      "best_valid_ndcg@10": float(result["best_valid_score"])}))


def recbole_python(env_dir: Path) -> str:
    """The python of a RecBole 1.2.1 environment at ``env_dir``, made there (with this Python's torch) if missing."""
    python = env_dir / "bin" / "python"
    check = [str(python), "-W", "ignore", "-c",
             "import recbole, torch; from recbole.quick_start import run_recbole; assert recbole.__version__ == '1.2.1'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(python)
    import torch

    print(f"making RecBole's environment in {env_dir} (once) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    torch_pin = [f"torch=={torch.__version__}"]
    local = [str(python), "-m", "pip", "install", "--quiet", "--dry-run", "--no-index", "--no-deps", *torch_pin]
    if "+cpu" in torch.__version__ and subprocess.run(local, capture_output=True).returncode != 0:
        torch_pin += ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]  # the CPU build's own index
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *RECBOLE, *torch_pin], check=True)
    if subprocess.run(check, capture_output=True).returncode != 0:
        raise SystemExit(f"{env_dir}: RecBole 1.2.1 does not import there; remove the folder and run again, "
                         "or give --recbole-python")
    return str(python)


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return seconds, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recbole-python", default=None,
                        help="python of an environment where recbole==1.2.1 is installed (default: --recbole-env's)")
    parser.add_argument("--recbole-env", type=Path, default=BENCH_CACHE / "recbole-venv",
                        help=f"RecBole's environment, made on first use (default {BENCH_CACHE / 'recbole-venv'})")
    parser.add_argument("--config", default="configs/mf_bpr_ml100k.yaml")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each system, alternating")
    parser.add_argument("--child-recbole", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_recbole:
        recbole_child()
        return
    env = {**os.environ, "CDTL_PROGRESS": "0", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    args.recbole_python = args.recbole_python or recbole_python(args.recbole_env)
    cdtl = str(Path(sys.executable).with_name("cdtl"))
    rows = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, stdout = timed([args.recbole_python, str(Path(__file__).resolve()), "--child-recbole"], env, tmp)
            rows.append({"system": "RecBole 1.2.1 BPR", "wall_s": seconds, **json.loads(stdout.strip().splitlines()[-1])})
            out = Path(tmp) / "cdtl"
            seconds, _ = timed([cdtl, "run", str(ROOT / args.config), "--out", str(out)], env, str(ROOT))
            res = json.loads((out / "metrics.json").read_text())
            rows.append({"system": f"cdtl {Path(args.config).stem}", "wall_s": seconds,
                         "ndcg@10": res["metrics"]["ndcg@10"]["mean"], "recall@10": res["metrics"]["recall@10"]["mean"],
                         "epochs": res["epochs_run"], "train_s": sum(h["seconds"] for h in res["history"])})
        print(f"repeat {repeat}: done", file=sys.stderr)
    print(f"| system | NDCG@10 | Recall@10 | whole-run wall s | epochs |  (load average at start: {os.getloadavg()[0]:.1f})")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['system']} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} | {row['wall_s']:.1f} | "
              f"{row.get('epochs', '')} |")
    by = {}
    for row in rows:
        by.setdefault(row["system"].split()[0], []).append(row["wall_s"])
    if "RecBole" in by and "cdtl" in by:
        ratio = (sum(by["cdtl"]) / len(by["cdtl"])) / (sum(by["RecBole"]) / len(by["RecBole"]))
        print(f"cdtl / RecBole mean wall time: {ratio:.2f}x")


if __name__ == "__main__":
    main()
