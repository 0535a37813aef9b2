"""Where a task's log lines go: the Prefect run's logger (the UI shows them), or, outside a
flow or task run, the standard logger of ``name``."""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger(name: str) -> Any:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)
