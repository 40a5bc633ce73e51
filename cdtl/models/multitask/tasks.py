"""The tasks a multi-task model predicts: a name, the item domain it is about, and its kind (rating or click)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ARCHS = ("single", "shared_bottom", "mmoe", "ple")
TASK_KINDS = ("rating", "click")
WEIGHTINGS = ("fixed", "uncertainty")
BATCH_KEYS = ("user", "item", "task", "label")


@dataclass(frozen=True)
class Task:
    """One prediction task: its name, the item domain it is about (0, 1, ...) and its kind."""

    name: str
    domain: int
    kind: str  # "rating" (squared error) or "click" (binary cross-entropy on a logit)

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {TASK_KINDS}, got {self.kind!r}")
        if not (isinstance(self.domain, int) and self.domain >= 0):
            raise ValueError(f"task {self.name!r}: domain must be a domain index >= 0, got {self.domain!r}")


# The course's tasks on a two-domain split: domain 0 is the source, domain 1 the target.
KNOWN_TASKS = {
    "source_rating": Task("source_rating", 0, "rating"),
    "target_rating": Task("target_rating", 1, "rating"),
    "source_click": Task("source_click", 0, "click"),
    "target_click": Task("target_click", 1, "click"),
}
DEFAULT_TASKS = (KNOWN_TASKS["source_rating"], KNOWN_TASKS["target_rating"], KNOWN_TASKS["target_click"])



def check_tasks(tasks: Sequence[Task | str], n_domains: int) -> tuple[Task, ...]:
    if isinstance(tasks, (str, Task)) or len(tasks) == 0:
        raise ValueError(f"tasks must be a non-empty list of Task or names of {sorted(KNOWN_TASKS)}, got {tasks!r}")
    out = []
    for task in tasks:
        if isinstance(task, str):
            if task not in KNOWN_TASKS:
                raise ValueError(f"unknown task {task!r}; known tasks: {sorted(KNOWN_TASKS)} (or pass a Task)")
            task = KNOWN_TASKS[task]
        if not isinstance(task, Task):
            raise TypeError(f"tasks must hold Task objects or names, got {type(task).__name__}")
        if task.domain >= n_domains:
            raise ValueError(f"task {task.name!r} is about domain {task.domain}, but n_items has {n_domains} domain(s)")
        out.append(task)
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be distinct, got {names}")
    return tuple(out)
