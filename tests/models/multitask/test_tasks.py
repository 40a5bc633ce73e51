"""Task and check_tasks: a task's kind and domain are checked, names resolve to the course's tasks, duplicates refused."""

from __future__ import annotations

import pytest

from cdtl.models.multitask.tasks import DEFAULT_TASKS, KNOWN_TASKS, Task, check_tasks


def test_names_resolve_to_the_known_tasks_in_the_order_given():
    tasks = check_tasks(["target_click", Task("extra", 0, "rating")], n_domains=2)
    assert tasks == (KNOWN_TASKS["target_click"], Task("extra", 0, "rating"))
    assert [t.domain for t in DEFAULT_TASKS] == [0, 1, 1]
    assert {t.kind for t in KNOWN_TASKS.values()} == {"rating", "click"}


@pytest.mark.parametrize("tasks, error, match", [
    ([], ValueError, "non-empty"),
    ("source_rating", ValueError, "non-empty list"),
    (["source_rating", "nope"], ValueError, "unknown task 'nope'"),
    ([3], TypeError, "got int"),
    ([Task("far", 2, "rating")], ValueError, "about domain 2, but n_items has 2"),
    (["source_rating", Task("source_rating", 1, "click")], ValueError, "distinct"),
])
def test_bad_task_lists_are_refused_naming_the_problem(tasks, error, match):
    with pytest.raises(error, match=match):
        check_tasks(tasks, n_domains=2)


def test_a_task_checks_its_kind_and_domain():
    with pytest.raises(ValueError, match="kind must be one of"):
        Task("x", 0, "ranking")
    with pytest.raises(ValueError, match="domain must be a domain index >= 0"):
        Task("x", -1, "rating")
    with pytest.raises(ValueError, match="domain must be a domain index"):
        Task("x", 1.0, "click")
