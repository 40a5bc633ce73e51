"""What the multi-task comparison reports: each model against the single-task one, its headline rows and the
table ``cdtl run`` prints."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cdtl.evaluate import format_interval
from cdtl.experiments.common import summary_of
from cdtl.experiments.multitask_data import primary
from cdtl.models.multitask import KNOWN_TASKS


def versus_single(scores: dict[str, Any], tasks: list[str], ks: list[int]) -> dict[str, Any]:
    """Whether each multi-task model pays off against ``single``, the single-task models.

    It does (``met``) when the headline target-domain metric (the first target-domain task's metric on the test
    cold users: target rating RMSE in the shipped configs) must improve on the single-task
    model while the source task does not lose more than 1 % (RMSE up by at most 1 %, or
    NDCG down by at most 1 %). Changes are relative, (model - single) / single.
    ``met_all_target_metrics`` asks the same of every target-domain task.
    """
    if "single" not in scores:
        return {}
    out = {}
    base = scores["single"]["test"]
    target_tasks = [t for t in tasks if KNOWN_TASKS[t].domain == 1]
    for name, row in scores.items():
        if name in ("single", "trivial") or row.get("arch") in ("single", "bridge"):
            continue
        entry: dict[str, Any] = {}
        improves, source_ok = {}, True
        for t in tasks:
            metric, mode = primary(t, ks)
            value, ref = row["test"][t][metric]["mean"], base[t][metric]["mean"]
            change = (value - ref) / ref
            entry[f"{t}_{metric}_change"] = change
            if KNOWN_TASKS[t].domain == 1:
                improves[t] = bool(change < 0 if mode == "min" else change > 0)
            else:
                source_ok = source_ok and (change if mode == "min" else -change) <= 0.01
        entry.update({f"{t}_improves": v for t, v in improves.items()})
        entry["headline"] = f"{target_tasks[0]}_{primary(target_tasks[0], ks)[0]}" if target_tasks else None
        entry["source_within_1pct"] = bool(source_ok)
        entry["met"] = bool(target_tasks and improves[target_tasks[0]] and source_ok)
        entry["met_all_target_metrics"] = bool(target_tasks and all(improves.values()) and source_ok)
        out[name] = entry
    return out


def headline(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(part, task, metric) columns of the table: every task's metrics on test, then the warm users'."""
    results, cols = summary_of(results), []
    first = next(iter(results["models"].values()))
    for part in ("test", "warm"):
        for task, metrics in first[part].items():
            cols += [(part, task, m) for m in metrics]
    return cols


def table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per model, one column per (part, task, metric): 'mean [low, high]'."""
    results, rows = summary_of(results), {}
    for name, row in results["models"].items():
        rows[name] = {f"{part}/{task}/{m}": _cell(row[part].get(task, {}).get(m)) for part, task, m in headline(results)}
    return pd.DataFrame(rows).T


def _cell(m: dict[str, float] | None) -> str:
    if not m:
        return "-"
    return format_interval(m)


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table: per model, each task's test metric with its 95 % interval, and whether it beats single-task."""
    results = summary_of(results)
    cols = headline(results)
    lines = [f"{results['name']}  (seed {results['seed']}, {results['wall_seconds']:.0f} s); "
             "target tasks on cold test users, warm/ on warm users' held-out target interactions"]
    header = f"{'model':<22}" + "".join(f"{(p + '/' if p != 'test' else '') + t + ' ' + m:>34}" for p, t, m in cols)
    lines.append(header)
    for name, row in results["models"].items():
        lines.append(f"{name:<22}" + "".join(f"{_cell(row[p].get(t, {}).get(m)):>34}" for p, t, m in cols))
    for name, entry in results["versus_single"].items():
        changes = ", ".join(f"{k.removesuffix('_change')} {v:+.2%}" for k, v in entry.items() if k.endswith("_change"))
        lines.append(f"{name} vs single: {changes}; {entry['headline']} improves with the source "
                     f"within 1 %: {entry['met']}; every target metric: {entry['met_all_target_metrics']}")
    return "\n".join(lines)


__all__ = ["format_table", "headline", "table", "versus_single"]
