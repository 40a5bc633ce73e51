"""Measured run times of every chapter, per profile and machine: the chapters' run-time lines and the timings page.

``book/timings.json`` holds the measurements (seconds per chapter, profile and machine,
``null`` where nobody has measured yet). It is written by measurement only:
``make timings`` (this file run as a script) copies the execution times that the last build
or test run stored in the book's execution cache. The book reads it in two places:

- ``{runtime}`smoke``` in a chapter renders that chapter's measured time, e.g.
  "about 35 s on a 2-core CPU";
- the ``{execution-timings}`` directive renders the table of every chapter: the times of
  this very build (from its execution cache) next to the measurements of both profiles.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

BOOK = Path(__file__).resolve().parents[1]
TIMINGS = BOOK / "timings.json"
PROFILES = ("smoke", "full")


def load(path: Path = TIMINGS) -> dict[str, Any]:
    """The measurements, checked for shape: ``machines`` (key -> description) and ``chapters``."""
    data = json.loads(path.read_text())
    machines = data.get("machines")
    if not isinstance(machines, dict) or not isinstance(data.get("chapters"), dict):
        raise ValueError(f"{path}: expected the keys 'machines' and 'chapters' (objects)")
    for stem, per_profile in data["chapters"].items():
        for name, per_machine in per_profile.items():
            if name not in PROFILES:
                raise ValueError(f"{path}: chapter {stem}: unknown profile {name!r}; expected one of {PROFILES}")
            for machine, seconds in per_machine.items():
                if machine not in machines:
                    raise ValueError(f"{path}: chapter {stem}, {name}: unknown machine {machine!r}; known: {sorted(machines)}")
                if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
                    raise ValueError(f"{path}: chapter {stem}, {name}, {machine}: expected seconds > 0 or null, got {seconds!r}")
    return data


def duration(seconds: float) -> str:
    """A run time as a reader wants it: "under 5 s", "about 35 s", "about 24 min", "about 1.5 h"."""
    if seconds < 5:
        return "under 5 s"
    if seconds < 120:
        return f"about {5 * round(seconds / 5)} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def runtime_text(data: dict[str, Any], stem: str, profile: str) -> str:
    """One chapter's measured time in one profile, on every machine measured or still to measure."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    per_machine = data["chapters"].get(stem, {}).get(profile)
    if not per_machine:
        raise KeyError(f"book/timings.json has no {profile} run time for chapter {stem}; measure it with `make timings`")
    parts = []
    for machine, seconds in per_machine.items():
        where = data["machines"][machine]
        parts.append(f"{duration(seconds)} on {where}" if seconds else f"not yet measured on {where}")
    return "; ".join(parts)


def record(stem_seconds: dict[str, float], profile: str, machine: str, path: Path = TIMINGS) -> dict[str, Any]:
    """Store measured seconds for ``profile`` on ``machine`` (atomic write); other entries are kept."""
    data = load(path)
    if machine not in data["machines"]:
        raise ValueError(f"unknown machine {machine!r}; {path} knows {sorted(data['machines'])}")
    for stem, seconds in sorted(stem_seconds.items()):
        data["chapters"].setdefault(stem, {}).setdefault(profile, {})[machine] = round(float(seconds), 1)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)
    return data


def cached_seconds(cache_dir: Path) -> dict[str, float]:
    """Execution seconds per chapter stored in a Jupyter Book execution cache (by the build or by nbval)."""
    from jupyter_cache import get_cache

    if not (cache_dir / "global.db").is_file():
        raise FileNotFoundError(f"no execution cache at {cache_dir}: build the book (make book) or run make test first")
    found = {}
    for rec in get_cache(str(cache_dir)).list_cache_records():
        seconds = (rec.data or {}).get("execution_seconds")
        if seconds:
            found[Path(rec.uri).stem] = float(seconds)
    return found


def main(argv: list[str] | None = None) -> int:
    """``show`` the execution times in a build's cache, or ``record`` them into book/timings.json."""
    parser = argparse.ArgumentParser(prog="timings", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the times of the last build or test run")
    rec = commands.add_parser("record", help="store the times of the last build or test run of a profile")
    rec.add_argument("--profile", choices=PROFILES, required=True)
    rec.add_argument("--machine", required=True, help="a key of 'machines' in book/timings.json, e.g. cpu or gpu")
    for command in (show, rec):
        command.add_argument("--cache", type=Path, required=True, help="the build's .jupyter_cache folder")
    args = parser.parse_args(argv)
    try:
        seconds = cached_seconds(args.cache)
        if args.command == "record":
            record(seconds, args.profile, args.machine)
    except (OSError, ValueError) as err:
        print(f"timings: {err}", file=sys.stderr)
        return 2
    for stem, value in sorted(seconds.items()):
        print(f"{stem:32s} {value:8.1f} s")
    print(f"{'all chapters':32s} {sum(seconds.values()):8.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
