"""Load test of the recommendation service: throughput, p50/p95/p99 latency and errors per kind of request, as a table.

    python benchmarks/bench_serve.py --bundle bundles/ml1m          # an exported bundle (cdtl export ...)
    python benchmarks/bench_serve.py --export fusion_ml1m            # export one first (trains: minutes)
    python benchmarks/bench_serve.py --bundle B --seconds 30 --clients 16 --index ivf

Starts the real server (``cdtl serve``) in a child process on 127.0.0.1 with a free port,
waits for ``/ready``, then drives it with ``--clients`` concurrent keep-alive HTTP clients
(each sends its next request when the previous answer arrives) for ``--seconds`` per kind
of request, at most ``--max-requests`` each:

- ``warm``: a known user with target-domain history, by id;
- ``cold``: a new user given 20 source-domain items;
- ``new-item``: the items nearest a free text (runs the language model per request).

Next to each row, the same request computed in-process (no HTTP): the floor HTTP adds to.
The targets (MovieLens 1M catalogue, 16 clients): p99 under 20 ms for warm and cold,
at least 500 requests per second, no errors. Run it on a quiet machine (on a shared one,
under ``flock``) and say how busy the machine was: ``uptime`` is printed with the table.

A closed loop flatters a saturated server (its clients wait, so fewer requests are sent).
``--open-loop`` sends requests on a clock instead (Poisson arrivals at each offered rate
of ``--rates``, ``--seconds`` each, latency from the scheduled send time: see
``cdtl.serve.openloop``), rising until the p99 passes 100 ms, for each kind of request,
against one process and against two (two ``cdtl serve`` processes, requests sent to
them in turn)::

    python benchmarks/bench_serve.py --bundle B --open-loop --seconds 10 --replicas 1,2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

TARGETS = {"p99_ms": 20.0, "requests_per_s": 500.0, "errors": 0}
RATES = "50,100,200,300,400,500,600,800,1000,1400,2000"
SATURATION_MS = 100.0  # an offered rate whose p99 passes this saturates the service


def requests_for(bundle, seed: int = 0) -> dict[str, list]:
    """Request bodies of each kind, drawn from the bundle's own users and items."""
    rng = np.random.default_rng(seed)
    users, items = bundle.users, bundle.items
    warm = users.loc[users["target_len"] > 0, "user"].astype(str).tolist()
    source = items.loc[items["domain"] == bundle.serving["source"], "item"].tolist()
    target_text = items.loc[items["domain"] == bundle.serving["target"], "text"].tolist()
    return {
        "warm": [("warm", "/recommend", {"user": u, "k": 10}) for u in rng.choice(warm, min(2000, len(warm)), replace=False)],
        "cold": [("cold", "/recommend", {"history": rng.choice(source, min(20, len(source)), replace=False).tolist(), "k": 10})
                 for _ in range(1000)],
        "new-item": [("new-item", "/similar-items", {"text": f"{t} (new edition)", "k": 10})
                     for t in rng.choice(target_text, min(500, len(target_text)), replace=False)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default=None, help="bundle folder to serve")
    parser.add_argument("--export", default=None, metavar="CONFIG", help="export this fusion config first (trains)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per kind of request (default 20)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="requests per kind at most")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--index", default="auto", help="auto | exact | ivf | hnsw")
    parser.add_argument("--kinds", default="warm,cold,new-item", help="comma-separated kinds to run")
    parser.add_argument("--open-loop", action="store_true",
                        help="fixed arrival rates (Poisson), latency from the scheduled time, rising to saturation")
    parser.add_argument("--rates", default=RATES, help=f"offered requests per second, open loop (default {RATES})")
    parser.add_argument("--replicas", default="1,2", help="open loop: service processes to measure, e.g. 1,2")
    args = parser.parse_args(argv)

    from cdtl.serve.bundle import read_bundle
    from cdtl.serve.loading import load_recommender
    from cdtl.serve.loadtest import in_process, run_load, summarize
    from cdtl.serve.server import ServiceProcess

    if args.export:
        from cdtl.experiments import load_config
        from cdtl.experiments.export import export

        out = Path(args.bundle or tempfile.mkdtemp(prefix="cdtl-bench-")) / "bundle"
        print(f"exporting {args.export} to {out} ...", flush=True)
        export(load_config(args.export), out, overwrite=True)
        args.bundle = str(out)
    if not args.bundle:
        parser.error("give --bundle BUNDLE (or --export CONFIG)")
    bundle = read_bundle(args.bundle)
    kinds = {k: v for k, v in requests_for(bundle).items() if k in args.kinds.split(",")}
    if args.open_loop:
        return open_loop(args, kinds)
    token = "bench-" + os.urandom(12).hex()
    rows = []
    with ServiceProcess(args.bundle, token=token, index={"kind": args.index}, ready_timeout=600) as service:
        status, ready = service.get("/ready")
        print(f"serving {ready['bundle']['id']}: {ready['n_items']:,} items, {ready['index']} index", flush=True)
        for name, requests in kinds.items():
            run_load(service.url, requests, concurrency=args.clients, seconds=min(2.0, args.seconds))  # warm-up
            records = run_load(service.url, requests, concurrency=args.clients, seconds=args.seconds,
                               max_requests=args.max_requests)
            rows.append(summarize(records).loc[[name]])
            print(rows[-1].round(2).to_string(header=len(rows) == 1), flush=True)
        mixed = [r for reqs in kinds.values() for r in reqs if r[0] != "new-item"]
        if mixed:
            records = run_load(service.url, mixed, concurrency=args.clients, seconds=args.seconds,
                               max_requests=args.max_requests)
            rows.append(summarize(records).loc[["all"]].rename(index={"all": "warm+cold mixed"}))
    table = pd.concat(rows)
    rec = load_recommender(args.bundle, index={"kind": args.index})
    floor = in_process(rec, [r for reqs in kinds.values() for r in reqs[:200]])
    table = table.join(floor)
    print()
    print(f"{args.clients} clients, {args.seconds:.0f} s per kind, bundle {args.bundle} "
          f"({ready['n_items']:,} {bundle.serving['target']} items, index {ready['index']})")
    print(table.round(2).to_string())
    print(f"targets: p99 < {TARGETS['p99_ms']} ms (warm, cold), >= {TARGETS['requests_per_s']} requests/s, no errors")
    print("machine:", os.popen("uptime").read().strip(), f"| {os.cpu_count()} CPUs")
    return 0


def open_loop(args: argparse.Namespace, kinds: dict[str, list]) -> int:
    """The open-loop table: per number of replicas and kind, p50/p99/errors at each offered rate until saturation."""
    from contextlib import ExitStack

    from cdtl.serve.openloop import run_open_loop, sweep
    from cdtl.serve.server import ServiceProcess

    rates = [float(r) for r in args.rates.split(",")]
    token = "bench-" + os.urandom(12).hex()
    frames = []
    for replicas in [int(r) for r in args.replicas.split(",")]:
        with ExitStack() as stack:
            services = [stack.enter_context(ServiceProcess(args.bundle, token=token, index={"kind": args.index},
                                                           ready_timeout=600)) for _ in range(replicas)]
            urls = [s.url for s in services]
            print(f"{replicas} process(es): {', '.join(urls)}", flush=True)
            for kind, requests in kinds.items():
                run_open_loop(urls, requests, rate=min(rates), seconds=2.0)  # warm-up

                def show(row: dict, kind: str = kind) -> None:
                    print(f"  {kind:9s} offered {row['offered_per_s']:6.0f}/s  answered {row['answered_per_s']:7.1f}/s  "
                          f"p50 {row['p50_ms']:8.2f} ms  p99 {row['p99_ms']:8.2f} ms  errors {row['errors']}", flush=True)

                table = sweep(urls, requests, rates, seconds=args.seconds, p99_limit_ms=SATURATION_MS, on_row=show)
                frames.append(table.assign(replicas=replicas, kind=kind))
    table = pd.concat(frames).set_index(["replicas", "kind", "offered_per_s"])
    print()
    print(f"open loop, Poisson arrivals, {args.seconds:.0f} s per rate, latency from the scheduled send time; "
          f"bundle {args.bundle}, index {args.index}")
    print(table.round(2).to_string())
    for (replicas, kind), part in table.groupby(level=[0, 1], sort=False):
        over = part[part["saturated"]]
        where = (f"saturated at {over.index[0][2]:.0f}/s offered" if len(over)
                 else f"not saturated up to {part.index[-1][2]:.0f}/s")
        at500 = part.xs(500.0, level=2) if 500.0 in part.index.get_level_values(2) else None
        target = ("" if at500 is None or kind == "new-item" else
                  f"; at 500/s p99 {at500['p99_ms'].iloc[0]:.1f} ms, {int(at500['errors'].iloc[0])} errors "
                  f"(target < {TARGETS['p99_ms']:.0f} ms, 0 errors: "
                  f"{'met' if at500['p99_ms'].iloc[0] < TARGETS['p99_ms'] and at500['errors'].iloc[0] == 0 else 'missed'})")
        print(f"- {replicas} process(es), {kind}: {where}{target}")
    print("machine:", os.popen("uptime").read().strip(), f"| {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
