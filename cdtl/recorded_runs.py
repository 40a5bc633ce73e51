"""Runs a chapter quotes but does not run on its page, read back from the committed ``results/<name>/`` folder.

``make results`` (``results/record.py``) runs a long config with ``cdtl run`` (or a benchmark script)
and stores, beside its ``metrics.json`` and per-user table, a ``provenance.json``: the command, when it started, its
wall time, the machine, the package versions and the sha256 of each file it wrote. A chapter
quotes such a run with :func:`quote_run`: the files are read (and hash-checked where hashes are
recorded), and where it was measured is glued for the prose, so the box that quotes the run can
say so. A missing folder is not an error (the run is not part of the page); a damaged one is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdtl.io import CorruptFileError, check_hash, read_json

RESULTS_FOLDER = "results"
#: what :func:`provenance_values` derives from a provenance.json, glued as ``<prefix><key>`` by :func:`quote_run`
PROVENANCE_KEYS = ("command", "date", "minutes", "load", "machine")
REQUIRED = ("command", "started_utc", "wall_seconds", "machine")
FIX = "run `make results` again (RESULTS_ARGS=--overwrite replaces the damaged run), or restore the folder from git"


@dataclass(frozen=True)
class RecordedRun:
    """One recorded run: its main file (metrics.json), provenance.json and per-user table (None where it kept none)."""

    name: str
    folder: Path
    metrics: Any  # the parsed main file: metrics.json's object, or a benchmark's rows
    provenance: dict[str, Any]
    per_user: Any = None


def find_results(start: str | Path | None = None) -> Path | None:
    """The ``results`` folder in ``start`` (default: the working directory) or the nearest folder above it."""
    here = Path(start) if start is not None else Path.cwd()
    here = here.resolve()
    return next((d / RESULTS_FOLDER for d in (here, *here.parents) if (d / RESULTS_FOLDER).is_dir()), None)


def _check_provenance(provenance: Any, path: Path) -> dict[str, Any]:
    """The provenance, its required fields and its recorded hashes checked for form (not yet against the files)."""
    if not isinstance(provenance, dict):
        raise CorruptFileError(path, f"expected a JSON object, got {type(provenance).__name__}", FIX)
    missing = [key for key in REQUIRED if key not in provenance]
    if missing:
        raise CorruptFileError(path, f"has no {', '.join(repr(k) for k in missing)} (it has {sorted(provenance)})", FIX)
    main = provenance.get("main", "metrics.json")
    if not isinstance(main, str) or not main or Path(main).name != main:
        raise CorruptFileError(path, f"'main' must be a file name of the run, got {main!r}", FIX)
    hashes = provenance.get("sha256")
    if hashes is not None:
        if not isinstance(hashes, dict) or main not in hashes:
            raise CorruptFileError(path, f"'sha256' must map each file of the run, {main} included, to its sha256", FIX)
        odd = [name for name in hashes if not isinstance(name, str) or Path(name).name != name or name.startswith(".")]
        if odd:
            raise CorruptFileError(path, f"'sha256' names {odd}: only plain file names of the run's folder", FIX)
    return provenance


def load_run(name: str, results: str | Path | None = None) -> RecordedRun | None:
    """Read ``results/<name>/``, or None when it holds neither a ``metrics.json`` nor a ``provenance.json``.

    ``results`` is the results folder (default: :func:`find_results`). ``provenance.json`` must
    name the command, start, wall time and machine; the run's main file is ``metrics.json``, or
    the one its provenance names as ``main`` (a benchmark's own JSON), read as ``run.metrics``. Where it
    records ``sha256`` (``{file name: hex digest}``), every listed file is checked against it
    before anything is read, so an edited or truncated file raises :class:`cdtl.io.CorruptFileError`
    naming the file. The per-user table is ``per_user.csv.gz`` (or ``per_user.csv``), read with pandas.
    """
    if not name or Path(name).name != name:
        raise ValueError(f"a recorded run is named by its folder under results/, got {name!r}")
    root = Path(results) if results is not None else find_results()
    folder = root / name if root is not None else None
    if folder is None or not ((folder / "metrics.json").is_file() or (folder / "provenance.json").is_file()):
        return None
    provenance = _check_provenance(read_json(folder / "provenance.json", what=f"how the run {name!r} was made",
                                             fix=FIX), folder / "provenance.json")
    for file, digest in (provenance.get("sha256") or {}).items():
        check_hash(folder / file, digest, what=f"{file} of the recorded run {name!r}", fix=FIX)
    main = provenance.get("main", "metrics.json")
    metrics = read_json(folder / main, what=f"{main} of the recorded run {name!r}", fix=FIX)
    per_user = None
    for table in ("per_user.csv.gz", "per_user.csv"):
        if (folder / table).is_file():
            import pandas as pd

            per_user = pd.read_csv(folder / table)
            break
    return RecordedRun(name=name, folder=folder, metrics=metrics, provenance=provenance, per_user=per_user)


def provenance_values(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Where and how a run was measured, in the words a box quotes: one value per :data:`PROVENANCE_KEYS`.

    ``date`` is the day it started (UTC), ``minutes`` its wall time, ``load`` the machine's
    1-minute load average when it began ("not recorded" for runs made before it was kept), and
    ``machine`` the CPU count and the GPU (or "no GPU").
    """
    machine = provenance["machine"]
    load = (provenance.get("load_average") or {}).get("start")
    gpu = machine.get("cuda")
    return {"command": str(provenance["command"]), "date": str(provenance["started_utc"])[:10],
            "minutes": float(provenance["wall_seconds"]) / 60,
            "load": "not recorded" if load is None else str(load),
            "machine": f"{machine.get('cpu_count', '?')}-core CPU, " + (str(gpu) if gpu else "no GPU")}


def quote_run(name: str, prefix: str, results: str | Path | None = None) -> RecordedRun | None:
    """Load ``results/<name>/`` and record (glue) where it was measured as ``<prefix><key>``; None, said, if absent.

    Each of :data:`PROVENANCE_KEYS` is recorded with :func:`cdtl.nb.record` (``ml1m_command``,
    ``ml1m_date`` ... for ``prefix="ml1m_"``); the chapter records the numbers it quotes from
    ``run.metrics`` and ``run.per_user`` itself. Where the folder is absent (the run is not part
    of the page), one line says which command writes it and None is returned.
    """
    from cdtl import nb

    run = load_run(name, results)
    if run is None:
        print(f"results/{name} is not next to this chapter (it is not run on the page): `make results` in the "
              "course's repository writes it")
        return None
    for key, value in provenance_values(run.provenance).items():
        nb.record(f"{prefix}{key}", value)
    return run
