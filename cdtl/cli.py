"""The `cdtl` command line: list, fetch and describe datasets; run experiments from YAML."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _data_list(_: argparse.Namespace) -> int:
    from cdtl.data import registry

    for name in registry.names():
        spec = registry.get(name)
        print(f"{name:22s} {spec.description}")
        for source in spec.sources:
            print(f"{'':22s}   source: {source.describe()}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from cdtl.data import fetch

    print(fetch(args.name))
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from cdtl.data import info

    print(json.dumps(info(args.name, args.domains), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from cdtl.experiments import format_table, load_config, run

    config = load_config(args.config, args.set)
    out = args.out or f"runs/{config.get('name', 'experiment')}"
    results = run(config, out)
    print(format_table(results))
    print(f"wrote {out}/metrics.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cdtl`` (one sub-command per task)."""
    parser = argparse.ArgumentParser(prog="cdtl", description="Cross-domain transfer learning for recommenders.")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="list, fetch and describe datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_commands.add_parser("list", help="registered datasets and their sources").set_defaults(func=_data_list)
    fetch = data_commands.add_parser("fetch", help="fetch a dataset into the cache (hash-verified)")
    fetch.add_argument("name")
    fetch.set_defaults(func=_data_fetch)
    info = data_commands.add_parser("info", help="JSON summary: users, items, interactions per domain")
    info.add_argument("name")
    info.add_argument("--domains", choices=["genre"], default=None, help="split MovieLens into two genre domains")
    info.set_defaults(func=_data_info)
    run = commands.add_parser("run", help="run one experiment described in YAML; write metrics.json")
    run.add_argument("config", help="experiment YAML, e.g. configs/mf_bpr_ml100k.yaml")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one setting, e.g. --set train.epochs=5 (repeatable)")
    run.add_argument("--out", default=None, help="output folder (default runs/<name>)")
    run.set_defaults(func=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cdtl`` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, ValueError, RuntimeError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"cdtl: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
