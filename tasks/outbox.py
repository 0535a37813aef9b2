"""A durable outbox for MLflow records: what the tracking server cannot take now waits on disk.

Every record (a metrics/params batch, an artifact file, dataset inputs, the run's end) is first
sent directly. When the server is unreachable, the record is written to
``<outbox root>/<run id>/<n>.json`` (temp file, fsync, rename; an artifact's file is copied
beside it, since checkpoints may be deleted meanwhile), and later records queue behind it so
the order is kept. Each later call retries delivery (at most every ``RETRY_AFTER_S`` seconds
during an outage); ``deliver`` empties it in order and removes each record once the server
has it. Nothing is dropped: a record leaves the outbox only after MLflow accepted it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import warnings
from typing import Any

from mlflow.entities import DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

RETRY_AFTER_S = 30.0
_FAILED_AT: dict[str, float] = {}  # outbox dir → time of its last failed delivery
_OUTAGE_MARKERS = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Read timed out",
    "response code 502",
    "response code 503",
    "response code 504",
)


def is_outage(err: BaseException) -> bool:
    """True when ``err`` says the tracking server could not be reached (not that it refused
    the record: a bad record would never be accepted and must fail loudly instead)."""
    import requests

    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return True
        if isinstance(seen, MlflowException | OSError) and any(
            marker in str(seen) for marker in _OUTAGE_MARKERS
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def apply(client: MlflowClient, run_id: str, record: dict[str, Any]) -> None:
    """Send one record to MLflow."""
    kind = record["op"]
    if kind == "batch":
        metrics = [Metric(k, v, ts, step) for k, v, ts, step in record.get("metrics", [])]
        params = record.get("params", {})
        if params:  # a retried record must not re-log a param (MLflow refuses changed values)
            logged = client.get_run(run_id).data.params
            params = {k: v for k, v in params.items() if k not in logged}
        param_list = [Param(k, v) for k, v in params.items()]
        for start in range(0, max(len(metrics), len(param_list)), 100):
            client.log_batch(
                run_id,
                metrics=metrics[start : start + 100],
                params=param_list[start : start + 100],
            )
    elif kind == "artifact":
        client.log_artifact(run_id, record["path"], record["artifact_path"])
    elif kind == "inputs":
        from mlflow.data.meta_dataset import MetaDataset

        client.log_inputs(
            run_id,
            datasets=[
                DatasetInput(
                    MetaDataset(
                        dataset_source(d["uri"]), name=d["name"], digest=d["digest"]
                    )._to_mlflow_entity(),
                    tags=[InputTag("mlflow.data.context", d["context"])],
                )
                for d in record["datasets"]
            ],
        )
    elif kind == "terminate":
        client.set_terminated(run_id, status=record["status"])
    else:
        raise ValueError(f"outbox record of unknown kind {kind!r}")


def dataset_source(uri: str) -> Any:
    """MLflow's dataset source for a path or URI."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": any will do
        warnings.simplefilter("ignore")
        return resolve_dataset_source(uri)


class Outbox:
    """The records of one MLflow run waiting in ``root/<run_id>/``."""

    def __init__(self, root: str, run_id: str) -> None:
        self.dir = os.path.join(root, run_id)
        self.run_id = run_id

    def pending(self) -> list[str]:
        """The waiting records' files, oldest first."""
        if not os.path.isdir(self.dir):
            return []
        return sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))

    def put(self, record: dict[str, Any]) -> None:
        """Keep ``record`` on disk (an artifact's file copied beside it)."""
        os.makedirs(self.dir, exist_ok=True)
        names = self.pending()
        number = int(names[-1].split(".")[0]) + 1 if names else 1
        record = dict(record)
        if record["op"] == "artifact":
            files = os.path.join(self.dir, f"{number:08d}.files")
            os.makedirs(files, exist_ok=True)
            record["path"] = shutil.copy2(record["path"], files)
        temp = os.path.join(self.dir, f".{number:08d}.json.tmp")
        with open(temp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, os.path.join(self.dir, f"{number:08d}.json"))

    def send(self, client: MlflowClient, record: dict[str, Any]) -> bool:
        """Send ``record`` now, or keep it when the server is unreachable or others wait
        before it. True when MLflow has it (and everything queued before it)."""
        if not self.pending():
            try:
                apply(client, self.run_id, record)
                return True
            except Exception as err:
                if not is_outage(err):
                    raise
                _FAILED_AT[self.dir] = time.monotonic()
        self.put(record)
        return self.deliver(client, wait=False) == 0

    def deliver(self, client: MlflowClient, wait: bool = True) -> int:
        """Send the waiting records in order; returns how many are still waiting. Without
        ``wait``, a recent failed delivery means: do not try again yet."""
        failed = _FAILED_AT.get(self.dir)
        if not wait and failed is not None and time.monotonic() - failed < RETRY_AFTER_S:
            return len(self.pending())
        for name in self.pending():
            path = os.path.join(self.dir, name)
            with open(path) as f:
                record = json.load(f)
            try:
                apply(client, self.run_id, record)
            except Exception as err:
                if not is_outage(err):
                    raise
                _FAILED_AT[self.dir] = time.monotonic()
                return len(self.pending())
            os.remove(path)
            shutil.rmtree(path[: -len(".json")] + ".files", ignore_errors=True)
        _FAILED_AT.pop(self.dir, None)
        with contextlib.suppress(OSError):
            os.rmdir(self.dir)
        return 0
