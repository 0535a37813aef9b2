"""Settings for the embedded Prefect API: the local server a flow run starts when no
``PREFECT_API_URL`` is configured (``make run``, the benchmark).

That server runs in a second process on the same cores as training, and by default it
records every task-run event in a transaction of its own (task-run recorder batch size 1):
measured on 2 cores, ~110-125 ms of its CPU per round of 4 task runs (12 events), which
TensorFlow then lacks. Batching the recorder and the event persister brings it to ~30-50 ms.
What the UI shows is unchanged (every task run and state, every event); it may show them
up to the flush interval (5 s) late, and a stopping server writes what it still holds.
A server of its own (``prefect server start``, a deployment's) is left as configured.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from prefect.settings import (
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

EMBEDDED_SERVER_SETTINGS = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
}
# Prefect waits 20 s for the server to answer; on 2 busy cores it can take longer (seen here:
# "Timed out while attempting to connect to ephemeral Prefect API server").
STARTUP_TIMEOUT_S = 90


@contextlib.contextmanager
def embedded_api() -> Iterator[None]:
    """Flow runs in the body that start the embedded server get its writes batched (the
    settings above) and :data:`STARTUP_TIMEOUT_S` to start, unless the environment says
    otherwise; nothing changes when an API URL is configured. The server takes its settings
    from the environment when it starts: enter this before the process's first flow run."""
    if get_current_settings().api.url:
        yield
        return
    for name, value in EMBEDDED_SERVER_SETTINGS.items():
        os.environ.setdefault(name, value)
    if PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name in os.environ:
        yield
        return
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: STARTUP_TIMEOUT_S}):
        yield
