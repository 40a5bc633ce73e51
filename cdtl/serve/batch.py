"""Batch scoring: the top k items of every warm user (or of listed users), computed as the service would, into one Parquet file.

``recommend_to_file(bundle, out)`` (``cdtl recommend BUNDLE --out topk.parquet``) scores
users in chunks sized to a memory budget (one chunk's user-by-item score matrix), searches
the catalogue exactly, and writes one row per (user, rank): ``user``, ``rank`` (1 is best),
``item``, ``score``: the same items and scores ``/recommend`` answers for that user,
seen items excluded. The file is written beside its destination and renamed into place,
so it is complete or absent; an existing file is replaced only with ``overwrite``. Listed
ids that the bundle does not know are reported (``BatchReport.unknown``), never dropped
silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cdtl.io import atomic_write

MEMORY_MB = 256.0  # default budget of one chunk's scores
COLUMNS = ("user", "rank", "item", "score")


@dataclass
class BatchReport:
    """What a batch run wrote: the file, users scored, rows, and the listed ids it could not score."""

    path: Path
    users: int
    rows: int
    k: int
    chunk_users: int
    unknown: list[str] = field(default_factory=list)

    def describe(self, full_path: bool = True) -> str:
        """One line on what was written (the file's full path, or its name alone), and any unknown users."""
        where = self.path if full_path else self.path.name
        line = (f"wrote {self.rows:,} rows ({self.users:,} users x top {self.k}) to {where} "
                f"in chunks of {self.chunk_users:,} users")
        if self.unknown:
            shown = ", ".join(repr(u) for u in self.unknown[:5]) + (" ..." if len(self.unknown) > 5 else "")
            line += f"\n{len(self.unknown):,} listed user ids are not in the bundle and were not scored: {shown}"
        return line


def read_user_list(path: str | os.PathLike) -> list[str]:
    """User ids from a text file (one a line; blank lines and ``#`` comments skipped) or a CSV/Parquet ``user`` column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--users {path}: no such file; give a file of user ids, one a line")
    if path.suffix in (".parquet", ".csv"):
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
        if "user" not in frame.columns:
            raise ValueError(f"--users {path}: no 'user' column (columns: {', '.join(map(str, frame.columns))})")
        ids = frame["user"].astype(str).tolist()
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"--users {path}: not a text file; give user ids one a line") from None
        ids = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise ValueError(f"--users {path}: lists no user id")
    return list(dict.fromkeys(ids))  # each user once, in the order given


def chunk_size(n_items: int, memory_mb: float) -> int:
    """Users per chunk so that one chunk's float32 scores (users x items) fit in ``memory_mb`` MiB."""
    return max(1, int(memory_mb * 2**20 // (4 * max(n_items, 1))))


def recommend_to_file(bundle: str | os.PathLike, out: str | os.PathLike, *, users: str | os.PathLike | None = None,
                      k: int = 100, overwrite: bool = False, memory_mb: float | None = None) -> BatchReport:
    """Write the top ``k`` of every warm user (or of the ids in the ``users`` file) to the Parquet file ``out``."""
    out = Path(out)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"--k must be a positive whole number, got {k!r}")
    memory_mb = MEMORY_MB if memory_mb is None else float(memory_mb)
    if not memory_mb > 0:
        raise ValueError(f"--memory-mb must be positive, got {memory_mb}")
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give the Parquet file to write, e.g. {out / 'topk.parquet'}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"--out {out} already exists; choose another file or replace it with --overwrite")
    listed = read_user_list(users) if users is not None else None

    from cdtl.serve.loading import load_recommender

    rec = load_recommender(bundle, text=False, index={"kind": "exact"})  # batch: exact search, no text encoder
    if listed is None:
        rows, unknown = np.flatnonzero(rec.target_len > 0), []
    else:
        found = rec._user_rows.get_indexer(listed)
        rows = found[found >= 0]
        unknown = [u for u, r in zip(listed, found) if r < 0]
    per_chunk = chunk_size(rec.n_items, memory_mb)
    k_eff = min(k, rec.n_items)

    def write(tmp: Path) -> None:
        _write_chunks(rec, rows, k_eff, per_chunk, tmp)

    atomic_write(out, write)
    return BatchReport(path=out, users=len(rows), rows=_count_rows(out), k=k_eff, chunk_users=per_chunk, unknown=unknown)


def _write_chunks(rec: object, rows: np.ndarray, k: int, per_chunk: int, tmp: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cdtl import progress

    schema = pa.schema([("user", pa.string()), ("rank", pa.int32()), ("item", pa.string()), ("score", pa.float32())])
    item_ids = np.asarray(rec._item_ids, dtype=object)
    with pq.ParquetWriter(tmp, schema) as writer, progress.bar(total=len(rows), desc="batch scoring", unit="user",
                                                               done=f"scored {len(rows):,} users") as bar:
        if len(rows) == 0:
            writer.write_table(pa.table({c: [] for c in COLUMNS}, schema=schema))
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start:start + per_chunk]
            table = _score_chunk(rec, chunk, k, item_ids)
            writer.write_table(pa.Table.from_pandas(table, schema=schema, preserve_index=False))
            bar.update(len(chunk))


def _score_chunk(rec: object, chunk: np.ndarray, k: int, item_ids: np.ndarray) -> pd.DataFrame:
    """One chunk of users' top ``k``, as the service computes each: the user's fused query, seen items excluded."""
    queries, offsets = [], []
    for row in chunk:
        q, offset, _, _ = rec._known_query(int(row))
        queries.append(q)
        offsets.append(offset)
    values, found = rec.index.search(np.asarray(queries, np.float32), k, [rec.seen_rows(int(r)) for r in chunk])
    keep = found >= 0
    n_kept = keep.sum(1)
    users = np.repeat(rec.user_ids[chunk].astype(str), n_kept)
    ranks = np.concatenate([np.arange(1, n + 1, dtype=np.int32) for n in n_kept]) if len(chunk) else np.empty(0, np.int32)
    scores = (values - np.asarray(offsets, np.float32)[:, None])[keep]
    return pd.DataFrame({"user": users, "rank": ranks, "item": item_ids[found[keep]].astype(str),
                         "score": scores.astype(np.float32)})


def _count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


__all__ = ["BatchReport", "COLUMNS", "MEMORY_MB", "chunk_size", "read_user_list", "recommend_to_file"]
