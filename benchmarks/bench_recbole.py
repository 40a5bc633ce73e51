"""cdtl against RecBole 1.2.1, same protocol, same machine, one after the other: BPR on MovieLens 100K, or SASRec.

    python benchmarks/bench_recbole.py                      # RecBole's environment made on first use, then reused
    python benchmarks/bench_recbole.py --recbole-python /path/to/recbole-venv/bin/python
    python benchmarks/bench_recbole.py --case sasrec --dataset ml-1m --epochs 20

BPR (the default case):

Protocol for both: every rating an interaction, each user's interactions shuffled and cut
80/10/10 (RecBole: ``RS [0.8, 0.1, 0.1]``, ``group_by: user``, ``order: RO``), full ranking of
every item the user has not seen (training items excluded from validation, training and
validation items from test), early stopping on validation NDCG@10, test users scored once.
RecBole runs with its BPR defaults (dim 64, one negative, batch 2048, lr 0.001, patience 10).

SASRec (``--case sasrec``, MovieLens 100K or 1M from cdtl's data cache): every rating an
interaction, each user's history ordered by timestamp, ties in time broken by cdtl's seeded
rule (``cdtl.data.sequential.order_histories``, seed 0); RecBole reads an atomic file written
in that order and sorts it stably by time, so both break ties alike (the script checks that
both hold out the same items). Leave-last-out (RecBole: ``LS valid_and_test``, ``order: TO``):
the last item is the test target, the one before it validation, the rest training; only rated
items are ranked. Full ranking over every item, the user's history included: RecBole's full
sort for sequential models masks only its padding item, and cdtl scores with
``rank_next(..., exclude_history=False)`` to match. Both read the ``--max-len`` most recent
items, with the same size (``SASREC``: RecBole's 2 layers, 2 heads, 64 dimensions, feed-forward
256, GELU), dropout, learning rate (Adam), epoch cap and early stopping on validation NDCG@10
of every user; the best epoch's weights score the test. ``--batch-size`` is rows per step on
both sides, but a row differs: RecBole trains on one (prefix, next item) row per position,
cdtl on one history per row with the next item at every position (``next_item_batches``).
Model details also differ: RecBole's blocks normalise after each sublayer, cdtl's before.

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


# SASRec's size and training on both sides; RecBole's own names for each setting are in recbole_sasrec_config
SASREC = {"dim": 64, "layers": 2, "heads": 2, "dropout": 0.2, "max_len": 50, "batch_size": 128, "lr": 1e-3,
          "epochs": 300, "patience": 10, "seed": 0}
DATASETS = {"ml-100k": "movielens-100k", "ml-1m": "movielens-1m"}
HELD_OUT = "held_out.json"  # each child's validation and test item per user, compared by the parent


def recbole_sasrec_config(cfg: dict, data_path: str, dataset: str) -> dict:
    """RecBole's configuration of SASRec for ``cfg`` (``SASREC`` plus the epoch cap) on an atomic file under ``data_path``."""
    return {
        "seed": cfg["seed"], "reproducibility": True, "use_gpu": False, "show_progress": False,
        "data_path": data_path, "checkpoint_dir": tempfile.mkdtemp(),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",
        "eval_args": {"split": {"LS": "valid_and_test"}, "group_by": "user", "order": "TO", "mode": "full"},
        "MAX_ITEM_LIST_LENGTH": cfg["max_len"], "hidden_size": cfg["dim"], "inner_size": 4 * cfg["dim"],
        "n_layers": cfg["layers"], "n_heads": cfg["heads"], "hidden_dropout_prob": cfg["dropout"],
        "attn_dropout_prob": cfg["dropout"], "hidden_act": "gelu", "loss_type": "CE", "train_neg_sample_args": None,
        "train_batch_size": cfg["batch_size"], "learning_rate": cfg["lr"], "learner": "adam", "weight_decay": 0.0,
        "epochs": cfg["epochs"], "stopping_step": cfg["patience"], "eval_step": 1,
        "metrics": ["Recall", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
    }


def recbole_sasrec_child(cfg: dict, data_path: str, dataset: str) -> None:
    """Runs inside RecBole's environment: SASRec as ``run_recbole`` trains it, one JSON line, held-out items to a file."""
    from recbole.config import Config  # RecBole's environment only: cdtl's never has it
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    config = Config(model="SASRec", dataset=dataset, config_dict=recbole_sasrec_config(cfg, data_path, dataset))
    init_seed(config["seed"], config["reproducibility"])
    data = create_dataset(config)
    train, valid, test = data_preparation(config, data)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, saved=True, show_progress=False)
    result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    held = {}
    for stage, loader in (("val", valid), ("test", test)):
        inter = loader._dataset.inter_feat
        users = data.id2token("user_id", inter["user_id"].numpy())
        items = data.id2token("item_id", inter["item_id"].numpy())
        held[stage] = dict(zip(users.tolist(), items.tolist()))
    Path(HELD_OUT).write_text(json.dumps(held))
    print(json.dumps({"ndcg@10": float(result["ndcg@10"]), "recall@10": float(result["recall@10"]),
                      "epochs": len(trainer.train_loss_dict), "best_valid_ndcg@10": float(trainer.best_valid_score)}))


def rated_data(dataset: str):
    """cdtl's copy of ``dataset`` with only the items someone rated (RecBole knows no others)."""
    from dataclasses import replace

    from cdtl.data import load  # cdtl's environment only: RecBole's never has cdtl

    data = load(DATASETS[dataset])
    rated = data.interactions["item"].astype(str).unique()
    return replace(data, items=data.items[data.items["item"].astype(str).isin(rated)].reset_index(drop=True))


def write_recbole_inter(dataset: str, folder: Path, seed: int) -> None:
    """RecBole's atomic file of ``dataset``: every rating, rows in cdtl's order (ties broken by its seeded rule)."""
    from cdtl.data.sequential import order_histories

    ordered, _ = order_histories(rated_data(dataset).interactions, seed, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{t}" for u, i, t in ordered[["user", "item", "timestamp"]].itertuples(index=False)]
    (folder / f"{folder.name}.inter").write_text("\n".join(lines) + "\n")


def cdtl_sasrec_child(cfg: dict, dataset: str) -> None:
    """Runs in cdtl's environment: the package's SASRec, leave-last-out split and fit; one JSON line, held-out items."""
    from cdtl.data.sequential import leave_last_out
    from cdtl.models.sequential import SASRec, next_item_batches, rank_next
    from cdtl.train import TrainConfig, fit, set_seed

    split = leave_last_out(rated_data(dataset), seed=cfg["seed"], verbose=False)
    set_seed(cfg["seed"])
    model = SASRec(split.n_items, cfg["dim"], max_len=cfg["max_len"], layers=cfg["layers"], heads=cfg["heads"],
                   dropout=cfg["dropout"])
    batches = next_item_batches(split.train, cfg["max_len"], cfg["batch_size"])

    def scores(stage: str) -> dict:
        return rank_next(model, split, stage, (10,), cfg["max_len"], exclude_history=False)

    def validate(_model) -> dict[str, float]:
        return {"ndcg@10": float(scores("val")["ndcg@10"].mean())}

    train = TrainConfig(epochs=cfg["epochs"], optimizer="adam", lr=cfg["lr"], monitor="ndcg@10",
                        patience=cfg["patience"], seed=cfg["seed"], device="cpu", progress=False)
    result = fit(model, batches, train, validate)
    test = scores("test")
    held = {stage: dict(zip(split.users.tolist(), split.items[split.stage(stage)[1]].tolist())) for stage in ("val", "test")}
    Path(HELD_OUT).write_text(json.dumps(held))
    print(json.dumps({"ndcg@10": float(test["ndcg@10"].mean()), "recall@10": float(test["recall@10"].mean()),
                      "epochs": len(result.history), "best_valid_ndcg@10": result.best_metric}))


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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recbole-python", default=None,
                        help="python of an environment where recbole==1.2.1 is installed (default: --recbole-env's)")
    parser.add_argument("--recbole-env", type=Path, default=BENCH_CACHE / "recbole-venv",
                        help=f"RecBole's environment, made on first use (default {BENCH_CACHE / 'recbole-venv'})")
    parser.add_argument("--case", choices=("bpr", "sasrec"), default="bpr", help="which model both systems train")
    parser.add_argument("--config", default="configs/mf_bpr_ml100k.yaml", help="bpr: cdtl's config")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="ml-100k", help="sasrec: the MovieLens")
    parser.add_argument("--epochs", type=int, default=SASREC["epochs"], help="sasrec: the epoch cap of both")
    parser.add_argument("--max-len", type=int, default=SASREC["max_len"], help="sasrec: most recent items read")
    parser.add_argument("--batch-size", type=int, default=SASREC["batch_size"], help="sasrec: rows per step")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each system, alternating")
    parser.add_argument("--child-recbole", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-sasrec", choices=("recbole", "cdtl"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-config", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child_recbole:
        recbole_child()
        return
    if args.child_sasrec:
        child = json.loads(args.child_config)
        if args.child_sasrec == "recbole":
            recbole_sasrec_child(child["sasrec"], child["data_path"], child["dataset"])
        else:
            cdtl_sasrec_child(child["sasrec"], child["movielens"])
        return
    env = {**os.environ, "CDTL_PROGRESS": "0", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    args.recbole_python = args.recbole_python or recbole_python(args.recbole_env)
    if args.case == "sasrec":
        run_sasrec(args, env)
    else:
        run_bpr(args, env)


def run_sasrec(args: argparse.Namespace, env: dict[str, str]) -> None:
    """Both systems' SASRec on one MovieLens, each in a fresh process, alternating; the table and the time ratio."""
    cfg = {**SASREC, "epochs": args.epochs, "max_len": args.max_len, "batch_size": args.batch_size}
    script, rows = str(Path(__file__).resolve()), []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as data_path:
        name = f"cdtl-{args.dataset}"  # not a name RecBole knows, so it reads this file and never downloads
        write_recbole_inter(args.dataset, Path(data_path) / name, cfg["seed"])
        child = {"sasrec": cfg, "data_path": data_path, "dataset": name, "movielens": args.dataset}
        systems = (("RecBole 1.2.1 SASRec", [args.recbole_python], "recbole"),
                   ("cdtl SASRec", [sys.executable], "cdtl"))
        for repeat in range(args.repeats):
            held = {}
            for system, python, side in systems:
                with tempfile.TemporaryDirectory() as tmp:
                    cmd = [*python, script, "--child-sasrec", side, "--child-config", json.dumps(child)]
                    loads.append(os.getloadavg()[0])
                    seconds, stdout = timed(cmd, env, tmp)
                    held[side] = json.loads((Path(tmp) / HELD_OUT).read_text())
                rows.append({"system": system, "wall_s": seconds, "load": loads[-1],
                             **json.loads(stdout.strip().splitlines()[-1])})
            print(f"repeat {repeat}: {same_held_out(held['recbole'], held['cdtl'])}", file=sys.stderr)
    print_sasrec_table(args, cfg, rows, loads)


def same_held_out(recbole: dict, cdtl: dict) -> str:
    """How many users both systems held out the same validation and test items for."""
    parts = []
    for stage in ("val", "test"):
        a, b = recbole[stage], cdtl[stage]
        same = sum(a.get(user) == item for user, item in b.items())
        parts.append(f"same {stage} item for {same} of {len(b)} users (RecBole holds out {len(a)})")
    return "; ".join(parts)


def print_sasrec_table(args: argparse.Namespace, cfg: dict, rows: list[dict], loads: list[float]) -> None:
    settings = ", ".join(f"{k} {v}" for k, v in cfg.items())
    print(f"SASRec on {args.dataset}, leave-last-out, full ranking (history included), {settings}")
    print("| system | test NDCG@10 | test Recall@10 | epochs run | whole-process wall s | load average (1 min) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['system']} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} | {row['epochs']} | "
              f"{row['wall_s']:.1f} | {row['load']:.2f} |")
    print(f"load average (1 min) at start and before each run: {', '.join(f'{x:.2f}' for x in loads)}; "
          f"at the end: {os.getloadavg()[0]:.2f}")
    mean = {side: sum(r["wall_s"] for r in rows if r["system"].startswith(side)) / max(1, args.repeats)
            for side in ("RecBole", "cdtl")}
    ndcg = {side: sum(r["ndcg@10"] for r in rows if r["system"].startswith(side)) / max(1, args.repeats)
            for side in ("RecBole", "cdtl")}
    print(f"cdtl / RecBole mean wall time: {mean['cdtl'] / mean['RecBole']:.2f}x; "
          f"cdtl - RecBole mean test NDCG@10: {ndcg['cdtl'] - ndcg['RecBole']:+.4f}")


def run_bpr(args: argparse.Namespace, env: dict[str, str]) -> None:
    """cdtl's BPR config (``cdtl run``) against RecBole's BPR on its bundled MovieLens 100K."""
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
