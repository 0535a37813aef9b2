"""One writer per model_dir: a lock file owned by a Prefect flow run.

``model_dir/.writer.lock`` (JSON: owner flow run id, host, pid and its start time, time) is
created atomically (``O_EXCL``) when a training flow run starts. Another flow run that finds
it is refused with an error naming the owner, unless the owner is gone, in which case the lock
is taken over: its process, on this host, no longer runs (a SIGKILLed ``make run``, whose flow
run nobody marked Crashed and stays Running), or its flow run has ended (Completed, Failed,
Crashed, Cancelled: read from the Prefect API; the only test for an owner on another host).
The owner itself (a retried or resumed run keeps its flow run id) re-enters it. The lock is
removed when the flow run finishes, whatever the outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator

from tasks.processes import process_is_gone, process_start_time

LOCK_FILE = ".writer.lock"


class ModelDirLockedError(RuntimeError):
    """Another flow run is training into this model_dir."""


def _owner_is_gone(holder: dict) -> bool:
    if process_is_gone(holder.get("host"), holder.get("pid"), holder.get("pid_started")):
        return True
    return _owner_has_ended(holder.get("owner", ""))


def _owner_has_ended(flow_run_id: str) -> bool:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        try:
            state = client.read_flow_run(flow_run_id).state
        except Exception:  # an id this API does not know: that run cannot finish anything
            return True
    return state is None or state.is_final()


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def model_dir_lock(model_dir: str, owner: str) -> Iterator[None]:
    """Hold the writer lock of ``model_dir`` for flow run ``owner`` (see the module doc)."""
    if "://" in model_dir:  # object stores have no O_EXCL; teams use a deployment concurrency limit
        yield
        return
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, LOCK_FILE)
    record = {
        "owner": owner,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_started": process_start_time(os.getpid()),
        "since": time.time(),
    }
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder.get("owner") == owner or _owner_is_gone(holder):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
            raise ModelDirLockedError(
                f"{model_dir} is being trained by flow run {holder.get('owner')} (host "
                f"{holder.get('host')}, pid {holder.get('pid')}, since {since}); wait for it "
                f"to finish, or give another model_dir (a lock whose process has ended on "
                f"this host is taken over by itself; {path} names its owner)"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        break
    try:
        yield
    finally:
        if _read(path).get("owner") == owner:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
