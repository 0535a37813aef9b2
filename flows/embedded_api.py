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

import os

from prefect.settings import get_current_settings

EMBEDDED_SERVER_SETTINGS = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
}


def tune_embedded_api() -> None:
    """Batch the embedded server's writes (the settings above, unless the environment sets
    them); does nothing when an API URL is configured. Call it before the first flow run of
    the process: the server takes its settings from the environment when it starts."""
    if get_current_settings().api.url:
        return
    for name, value in EMBEDDED_SERVER_SETTINGS.items():
        os.environ.setdefault(name, value)
