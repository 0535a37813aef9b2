"""Settings for the embedded Prefect API: the local server a flow run starts when no
``PREFECT_API_URL`` is configured (``make run``, the benchmark).

That server runs in a second process on the same cores as training, and by default it
records every task-run event in a transaction of its own (task-run recorder batch size 1):
measured on 2 cores, ~110-125 ms of its CPU per round of 4 task runs (12 events), which
TensorFlow then lacks. Batching the recorder and the event persister brings it to ~30-50 ms.
What the UI shows is unchanged (every task run and state, every event); it may show them
up to the flush interval (5 s) late, and a stopping server writes what it still holds.
A server of its own (``prefect server start``, a deployment's) is left as configured.

Several embedded pipelines started at once share one database (``$PREFECT_HOME/prefect.db``)
and each server migrates it as it starts: seen here, four at once all failed ("duplicate
column name: version", then "Timed out while attempting to connect to ephemeral Prefect API
server"). :func:`embedded_api` therefore starts this process's server itself, one process at
a time (a file lock in ``PREFECT_HOME``); the flow runs then use that server (Prefect keeps
one ephemeral server per process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from prefect.settings import (
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

STARTUP_LOCK = "embedded-server-startup.lock"

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
    from the environment when it starts: enter this before the process's first flow run. The
    server is started here, one process of this ``PREFECT_HOME`` at a time (see the module
    doc)."""
    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        yield
        return
    for name, value in EMBEDDED_SERVER_SETTINGS.items():
        os.environ.setdefault(name, value)
    timeout = {}
    if PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name not in os.environ:
        timeout = {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: STARTUP_TIMEOUT_S}
    with temporary_settings(timeout):
        _start_server_alone(str(settings.home))
        yield


def _start_server_alone(prefect_home: str) -> None:
    from prefect.server.api.server import SubprocessASGIServer

    os.makedirs(prefect_home, exist_ok=True)
    with open(os.path.join(prefect_home, STARTUP_LOCK), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        SubprocessASGIServer().start()
