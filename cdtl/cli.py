"""The `cdtl` command line: list, fetch and describe datasets; run experiments from YAML.

Every sub-command runs inside one error boundary (``main``): an error the user can fix
prints one or a few lines naming the file or key and exits 2; a bug prints one line and
exits 1. The traceback is printed only with ``--debug`` (anywhere on the line) or
``CDTL_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DEBUG_FLAG = "--debug"
DEBUG_VAR = "CDTL_DEBUG"
# Errors of a program, not of its input: a one-line report that asks for --debug and a bug report.
INTERNAL_ERRORS = (AssertionError, AttributeError, IndexError, NameError, NotImplementedError, ZeroDivisionError)


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
    from cdtl import distributed
    from cdtl.experiments import format_table, load_config, run

    config = load_config(args.config, args.set)
    if "export" in config:  # train the served models and write a bundle (cdtl.experiments.export)
        return _write_bundle(config, None, False)
    if "name" in config:  # it names the default output folder, runs/<name>: a plain file name, never a path
        from cdtl.configfile import check_name

        check_name(config["name"])
    out = args.out or f"runs/{config.get('name', 'experiment')}"
    try:
        result = run(config, out, overwrite=args.overwrite)
    finally:
        distributed.teardown()  # leave the torchrun job, if this process joined one
    if distributed.is_main():  # under torchrun, one table and one metrics.json
        print(format_table(result))
        written = ", ".join(name for name in ("metrics.json", "per_user.csv") if (Path(out) / name).exists())
        print(f"wrote {written} in {out}")
    return 0


def _write_bundle(config: dict, out: str | None, overwrite: bool) -> int:
    from cdtl.experiments.export import export

    exported = export(config, out, overwrite=overwrite or None)
    print(f"wrote bundle {exported.path} (test NDCG@10 of the served fusion: "
          f"{exported.fitted.per_user[exported.fusion]['ndcg@10'].mean():.4f})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from cdtl.experiments import load_config

    return _write_bundle(load_config(args.config, args.set), args.out, args.overwrite)


def _serve(args: argparse.Namespace) -> int:
    from cdtl.serve.server import read_token, serve

    try:
        index = json.loads(args.index) if args.index.strip().startswith("{") else {"kind": args.index}
    except json.JSONDecodeError as err:
        raise ValueError(f"--index {args.index!r} is not a JSON object ({err}); give a kind (auto, exact, ivf, hnsw) "
                         "or a JSON object of index settings") from err
    return serve(args.bundle, host=args.host, port=args.port, token=read_token(args.token_file), read_only=args.read_only,
                 index=index, max_body=args.max_body, port_file=args.port_file, exit_with_parent=args.exit_with_parent)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cdtl`` (one sub-command per task)."""
    parser = argparse.ArgumentParser(prog="cdtl", description="Cross-domain transfer learning for recommenders.")
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"print the full traceback of an error (also {DEBUG_VAR}=1); allowed anywhere on the line")
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
    run.add_argument("--out", default=None,
                     help="output folder (default runs/<name>); one that holds an earlier run is refused")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the earlier run in the output folder (metrics.json, per_user.csv)")
    run.set_defaults(func=_run)
    export = commands.add_parser("export", help="train a fusion experiment's models and write them as a serving bundle")
    export.add_argument("config", help="fusion experiment YAML, e.g. configs/fusion_ml1m.yaml (optional export: section)")
    export.add_argument("--out", default=None, help="bundle folder to write (default: the config's export.bundle)")
    export.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set export.fusion=global (repeatable)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    export.set_defaults(func=_export)
    serve = commands.add_parser("serve", help="serve a bundle over HTTP (FastAPI under uvicorn)")
    serve.add_argument("bundle", help="bundle folder written by cdtl export")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free port; see --port-file)")
    serve.add_argument("--token-file", default=None,
                       help="file holding the bearer token of POST /items and /reload (default: $CDTL_SERVE_TOKEN)")
    serve.add_argument("--read-only", action="store_true", help="no writable endpoints (then no token is needed)")
    serve.add_argument("--index", default="auto",
                       help="auto | exact | ivf | hnsw, or a JSON object of index settings (default auto: exact up "
                            "to 20,000 items, FAISS IVF above)")
    serve.add_argument("--max-body", type=int, default=None, help="largest request body in bytes (default 4 MiB)")
    serve.add_argument("--port-file", default=None, help="write the port actually bound to this file")
    serve.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it ends")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cdtl`` command: parse, run the sub-command, report any error in a few lines."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        from cdtl.env import flag

        debug = debug or flag(DEBUG_VAR)
        args = build_parser().parse_args(argv)
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("cdtl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one boundary: nothing reaches the user as a raw traceback
        if debug:
            raise
        print(describe_error(exc), file=sys.stderr)
        return 1 if isinstance(exc, INTERNAL_ERRORS) else 2


def describe_error(exc: BaseException) -> str:
    """The lines ``cdtl`` prints for an error: its own message, with the fix, as the code wrote it."""
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    message = str(message).strip() or type(exc).__name__
    if isinstance(exc, INTERNAL_ERRORS):
        return (f"cdtl: internal error: {type(exc).__name__}: {message}\n"
                f"(a bug in cdtl: rerun with {DEBUG_FLAG} for the traceback and report it)")
    if isinstance(exc, MemoryError):
        return "cdtl: error: out of memory; use a smaller dataset, batch_size or model"
    return f"cdtl: error: {message}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
