"""Per-round task runs stay quiet when they complete; failures and other tasks still log."""

import logging

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

import tasks.training  # noqa: F401  (installs the filter on Prefect's task-run logger)

pytestmark = pytest.mark.slow


def finished_lines(caplog):
    return sorted(
        (getattr(r, "task_name", ""), r.levelno)
        for r in caplog.records
        if r.name == "prefect.task_runs" and r.getMessage().startswith("Finished in state")
    )


def test_round_tasks_log_no_completed_line(prefect_api, caplog):
    @task(name="evaluate", cache_policy=NO_CACHE)
    def evaluate_like():
        return 1

    @task(name="evaluate", cache_policy=NO_CACHE)
    def failing_evaluate():
        raise ValueError("bad eval set")

    @task(name="export-model", cache_policy=NO_CACHE)
    def export_like():
        return 2

    @flow
    def rounds():
        evaluate_like()
        export_like()
        failing_evaluate(return_state=True)

    caplog.set_level(logging.INFO, logger="prefect")
    rounds()
    assert finished_lines(caplog) == [("evaluate", logging.ERROR), ("export-model", logging.INFO)]
