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
from typing import Any

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
        return _write_bundle(config, args.out, args.overwrite)  # --out names the bundle, as cdtl export's does
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
    if exported.sequential is not None:  # export.sequential: the next-item model for ordered histories, same test users
        print(f"  with a {exported.sequential.info['model']} for ordered histories (test NDCG@10 on the same users: "
              f"{exported.sequential.per_user['ndcg@10'].mean():.4f})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from cdtl.experiments import load_config

    return _write_bundle(load_config(args.config, args.set), args.out, args.overwrite)


def _serve(args: argparse.Namespace) -> int:
    from cdtl.serve.server import read_token, serve
    from cdtl.serve.settings import ServeSettings

    # a flag wins, else its CDTL_* variable, else the default (cdtl.serve.settings lists them)
    s = ServeSettings.resolve(bundle=args.bundle, host=args.host, port=args.port, log_level=args.log_level,
                              access_log=args.access_log, read_only=args.read_only, index=args.index,
                              token_file=args.token_file, items_store=args.items_store)
    source = "--token-file" if args.token_file else "$CDTL_SERVE_TOKEN_FILE"
    return serve(s.bundle, host=s.host, port=s.port, token=read_token(s.token_file, source=source), read_only=s.read_only,
                 index=s.index, max_body=args.max_body, port_file=args.port_file, log_level=s.log_level,
                 access_log=s.access_log, exit_with_parent=args.exit_with_parent, items_store=s.items_store,
                 store_refresh=args.store_refresh)


def _recommend(args: argparse.Namespace) -> int:
    from cdtl.serve.batch import recommend_to_file

    report = recommend_to_file(args.bundle, args.out, users=args.users, k=args.k, overwrite=args.overwrite,
                               memory_mb=args.memory_mb)
    print(report.describe())
    return 0


def _add_serve(commands: Any) -> None:
    """``cdtl serve``: every setting a flag, or its CDTL_* variable (cdtl.serve.settings)."""
    serve = commands.add_parser("serve", help="serve a bundle over HTTP (FastAPI under uvicorn)")
    serve.add_argument("bundle", nargs="?", default=None, help="bundle folder written by cdtl export (default $CDTL_BUNDLE)")
    serve.add_argument("--host", default=None,
                       help="address to listen on (default $CDTL_HOST, else 127.0.0.1: this machine only)")
    serve.add_argument("--port", default=None, help="port (default $CDTL_PORT, else 8000; 0: any free port, see --port-file)")
    serve.add_argument("--log-level", default=None, help="critical, error, warning, info, debug or trace "
                                                         "(default $CDTL_LOG_LEVEL, else warning)")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                       help="one log line per request (default $CDTL_ACCESS_LOG, else off)")
    serve.add_argument("--token-file", default=None,
                       help="file holding the bearer token of POST /items and /reload (default: $CDTL_SERVE_TOKEN)")
    serve.add_argument("--read-only", action="store_true", default=None,
                       help="no writable endpoints (then no token is needed; default $CDTL_READ_ONLY, else off)")
    serve.add_argument("--index", default=None,
                       help="auto | exact | ivf | hnsw, or a JSON object of index settings (default auto: exact up "
                            "to 20,000 items, FAISS IVF above)")
    serve.add_argument("--max-body", type=int, default=None, help="largest request body in bytes (default 4 MiB)")
    serve.add_argument("--port-file", default=None, help="write the port actually bound to this file")
    serve.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it ends")
    serve.add_argument("--items-store", default=None, metavar="PATH",
                       help="file that keeps the items added through POST /items (read at start and on reload; share "
                            "it between replicas). Default: BUNDLE.items.jsonl beside the bundle folder, written only "
                            "if the folder holding the bundle is writable; otherwise POST /items answers 503 until you set this")
    serve.add_argument("--store-refresh", type=float, default=None, metavar="SECONDS",
                       help="how often to check the items store for items other replicas added (default 2 s)")
    serve.set_defaults(func=_serve)


def _add_recommend(commands: Any) -> None:
    """``cdtl recommend``: batch scoring into one Parquet file (cdtl.serve.batch)."""
    recommend = commands.add_parser("recommend", help="batch scoring: the top k items of every warm user, as Parquet")
    recommend.add_argument("bundle", help="bundle folder written by cdtl export")
    recommend.add_argument("--out", required=True, help="Parquet file to write: user, rank, item, score")
    recommend.add_argument("--users", default=None,
                           help="file of user ids, one a line (or a CSV/Parquet with a 'user' column); default: every warm user")
    recommend.add_argument("--k", type=int, default=100, help="items per user (default 100)")
    recommend.add_argument("--memory-mb", type=float, default=None,
                           help="memory budget of one chunk of users' scores in MiB (default 256)")
    recommend.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    recommend.set_defaults(func=_recommend)


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
    _add_serve(commands)
    _add_recommend(commands)
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
