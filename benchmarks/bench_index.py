"""Exact search against FAISS (IVF, HNSW) as the catalogue grows: build time, ms per query and recall@10, as a table.

    python benchmarks/bench_index.py --bundle bundles/ml1m                  # sizes: the bundle, Kitchen, 100k, 1M
    python benchmarks/bench_index.py --bundle B --sizes 100000,1000000 --kinds exact,ivf
    python benchmarks/bench_index.py --bundle B --nprobe 8,16,32,64         # IVF's recall/speed trade-off

The item vectors are the bundle's own (the concatenated rows its service searches); a
larger catalogue is synthetic (``cdtl.serve.index.synthetic_catalogue``: a real row plus
Gaussian noise at half the per-dimension spread, so the real clusters and scales stay).
The queries are the bundle's real user queries (warm and cold users alike); each is
searched on its own, one thread, as the service does, and recall@10 is against exact
search on the same catalogue. Targets: recall@10 >= 0.95 at the chapter's configuration,
and a query under 5 ms at a million items.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

KITCHEN_ITEMS = 27_637  # the Amazon Kitchen catalogue (cdtl's shared Amazon pair)


def time_queries(index, queries: np.ndarray, k: int = 10) -> tuple[float, float, np.ndarray]:
    """(p50 ms, p99 ms, found rows) of ``queries`` searched one at a time."""
    times, found = [], []
    for q in queries:
        started = time.perf_counter()
        found.append(index.search(q[None], k)[1])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), np.concatenate(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True, help="bundle folder whose items and user queries are used")
    parser.add_argument("--sizes", default=None, help=f"catalogue sizes (default: the bundle's, {KITCHEN_ITEMS}, 100000, "
                                                      "1000000)")
    parser.add_argument("--kinds", default="exact,ivf,hnsw", help="index kinds to compare")
    parser.add_argument("--queries", type=int, default=500, help="user queries to time (default 500)")
    parser.add_argument("--nprobe", default=None, help="IVF cells scanned per query, comma-separated for a sweep "
                        "(default: IndexSettings' own)")
    parser.add_argument("--ef-search", type=int, default=128, help="HNSW search width")
    parser.add_argument("--hnsw-max-items", type=int, default=300_000,
                        help="skip HNSW above this many items (its build takes minutes at a million on 2 cores)")
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    from cdtl.serve.index import IndexSettings, ItemIndex, recall_at_k, synthetic_catalogue
    from cdtl.serve.loading import load_recommender

    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # numpy's BLAS and FAISS's OpenMP: one thread, as in the service
    rec = load_recommender(args.bundle, text=False)
    items = rec.index_matrix()
    rng = np.random.default_rng(0)
    users = rng.choice(len(rec.user_ids), min(args.queries, len(rec.user_ids)), replace=False)
    queries = rec.user_queries(users)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [len(items), KITCHEN_ITEMS, 100_000, 1_000_000]
    rows = []
    for n in sizes:
        catalogue = items if n == len(items) else synthetic_catalogue(items, n, seed=0)
        exact = ItemIndex(catalogue, IndexSettings(kind="exact"))
        truth_p50, truth_p99, truth = time_queries(exact, queries)
        rows.append({"items": n, "index": "exact", "build_s": 0.0, "p50_ms": truth_p50, "p99_ms": truth_p99,
                     "recall@10": 1.0})
        print(pd.DataFrame(rows[-1:]).round(4).to_string(header=len(rows) == 1), flush=True)
        variants = []
        if "ivf" in args.kinds:
            sweep = (args.nprobe or str(IndexSettings().nprobe)).split(",")
            variants += [(f"ivf nprobe={p}", IndexSettings(kind="ivf", nprobe=int(p))) for p in sweep]
        if "hnsw" in args.kinds and n <= args.hnsw_max_items:
            variants.append((f"hnsw ef={args.ef_search}", IndexSettings(kind="hnsw", ef_search=args.ef_search)))
        for name, settings in variants:
            started = time.perf_counter()
            index = ItemIndex(catalogue, settings)
            build = time.perf_counter() - started
            p50, p99, found = time_queries(index, queries)
            rows.append({"items": n, "index": name, "build_s": build, "p50_ms": p50, "p99_ms": p99,
                         "recall@10": recall_at_k(found, truth, 10)})
            print(pd.DataFrame(rows[-1:]).round(4).to_string(header=False), flush=True)
    print()
    print(f"{len(queries)} real user queries of {args.bundle}, dimension {items.shape[1]}, one query at a time, one thread")
    print(pd.DataFrame(rows).round(4).to_string(index=False))
    print("targets: recall@10 >= 0.95 (chapter's configuration); < 5 ms per query at 1,000,000 items")
    print("machine:", os.popen("uptime").read().strip(), f"| {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
