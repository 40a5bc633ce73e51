"""Run one experiment config into results/<name>/ and store beside its metrics.json how it was measured.

Chapters quote these runs (too long for the page) from the committed metrics.json; the
provenance.json next to it says which command ran, when, on what machine, with which
package versions, and the sha256 of every file the run wrote. Usage (from the repository root, as ``make results`` does):

    python results/record.py NAME CONFIG [--set KEY=VALUE ...]
    python results/record.py NAME benchmarks/SCRIPT.py --args="--sizes 100000" --main scale.json

A benchmark script (a ``.py`` path) runs with its ``--args`` and ``--out results/NAME`` and writes
its own files there; ``--main`` names the one a chapter reads (stored in the provenance as
``main``). An earlier run in results/NAME is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("cdtl", "torch", "numpy", "pandas", "scipy", "transformers", "sentence-transformers")


def versions() -> dict[str, str]:
    """The installed version of each package a run depends on (``cdtl.versions.versions`` when it exists)."""
    try:
        from cdtl.versions import versions as package_versions
        return dict(package_versions())
    except ImportError:
        found = {}
        for name in PACKAGES:
            try:
                found[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                found[name] = "not installed"
        return found


def machine() -> dict[str, object]:
    """The machine in a few fields: what affects the numbers (CPU, threads, GPU) and how long it took."""
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version()}


def commit() -> str | None:
    """The git commit the run was made from (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "cdtl", "configs", "benchmarks"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes under cdtl/, configs/ or benchmarks/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def compress_per_user(out: Path) -> None:
    """Keep the per-user table as per_user.csv.gz (a tenth of the size; pandas reads it as is)."""
    import gzip

    from cdtl.io import atomic_write

    table = out / "per_user.csv"
    if table.exists():
        atomic_write(out / "per_user.csv.gz", gzip.compress(table.read_bytes(), mtime=0))
        table.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--args", default="", help="a benchmark script's own arguments, as one string")
    parser.add_argument("--main", default="metrics.json", help="the file of the run a chapter reads")
    args = parser.parse_args(argv)
    out = Path(__file__).resolve().parent / args.name
    if (out / "provenance.json").exists() and not args.overwrite:
        print(f"record.py: results/{args.name} already holds a recorded run; --overwrite replaces it", file=sys.stderr)
        return 2
    if args.config.endswith(".py"):  # a benchmark script writes its own files into --out
        command = ["python", args.config, *shlex.split(args.args), "--out", f"results/{args.name}"]
        cli = [sys.executable, *command[1:]]
    else:
        command = ["cdtl", "run", args.config, *sum((["--set", s] for s in args.set), []), "--out", f"results/{args.name}"]
        if args.overwrite:
            command.append("--overwrite")
        cli = [sys.executable, "-m", "cdtl.cli", *command[1:]]
    started = datetime.datetime.now(datetime.timezone.utc)
    source = commit()  # the code the run starts from (the tree may move while it runs)
    clock, load_before = time.monotonic(), os.getloadavg()
    done = subprocess.run(cli, check=False)
    if done.returncode != 0:
        print(f"record.py: {shlex.join(command)} failed (exit {done.returncode}); nothing recorded", file=sys.stderr)
        return done.returncode
    provenance = {"command": shlex.join(command), "profile": os.environ.get("CDTL_PROFILE"),
                  "started_utc": started.isoformat(timespec="seconds"),
                  "wall_seconds": round(time.monotonic() - clock, 1), "commit": source,
                  "machine": machine(), "versions": versions(),
                  # how busy the machine was (1-minute load average) when the run began and ended: wall time on a
                  # shared machine is an upper bound on what the run costs alone
                  "load_average": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)}}
    if args.main != "metrics.json":
        provenance["main"] = args.main
    from cdtl.io import atomic_write, file_hash

    compress_per_user(out)
    # the sha256 of every file the run wrote: a chapter quoting it (cdtl.recorded_runs) refuses an edited copy
    provenance["sha256"] = {f.name: file_hash(f) for f in sorted(out.iterdir())
                            if f.is_file() and f.name != "provenance.json" and not f.name.startswith(".")}
    atomic_write(out / "provenance.json", json.dumps(provenance, indent=2) + "\n")
    print(f"recorded {out / args.main} and {out / 'provenance.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
