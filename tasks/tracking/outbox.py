"""A durable outbox for MLflow records, delivered from a background thread.

Every record (:mod:`tasks.tracking.records`: a metrics/params/tags/files batch, dataset
inputs, the run's end) is first kept on disk: ``<outbox root>/<run id>/<n>.json`` (temp file,
fsync, rename; an artifact's file is hard-linked beside it, or copied across file systems,
since checkpoints may be deleted meanwhile). A :class:`Courier` thread then sends the records,
oldest first, while the caller goes on training: a round never waits for the tracking server,
and a remote server's latency costs training nothing. While the server is unreachable, records
wait (the courier tries again every ``RETRY_AFTER_S`` seconds, or at once on ``flush``). A
record leaves the outbox only after MLflow accepted it, so a killed process loses nothing: the
next delivery (a resumed run, or ``python -m tasks.tracking deliver``) sends what it left.

Several couriers may serve one outbox (a pipeline's flow and its subflows, each with its own,
or a delivery by hand while a run is live): file locks beside the run's folder let one of them
deliver at a time and keep a record's number from being taken twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.tracking.records import ArtifactFile, Batch, Inputs, Record, from_json, to_json

RETRY_AFTER_S = 30.0
LOCKS_FOLDER = ".locks"
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


def apply(client: MlflowClient, run_id: str, record: Record) -> None:
    """Send one record to MLflow: a batch's metrics, params and tags, then its files. Sending it
    again is harmless (MLflow keeps one copy of a metric logged twice with the same timestamp,
    params already logged are skipped, tags and artifacts are overwritten)."""
    if isinstance(record, Batch):
        metrics = [
            Metric(
                m.key, m.value, m.timestamp_ms, m.step, m.model_id, m.dataset_name, m.dataset_digest
            )
            for m in record.metrics
        ]
        params = dict(record.params)
        if params:  # a retried record must not re-log a param (MLflow refuses changed values)
            logged = client.get_run(run_id).data.params
            params = {k: v for k, v in params.items() if k not in logged}
        param_list = [Param(k, v) for k, v in params.items()]
        tags = [RunTag(k, v) for k, v in record.tags.items()]
        for start in range(0, max(len(metrics), len(param_list), len(tags)), 100):
            client.log_batch(
                run_id,
                metrics=metrics[start : start + 100],
                params=param_list[start : start + 100],
                tags=tags[start : start + 100],
            )
        for file in record.files:
            client.log_artifact(run_id, file.path, file.artifact_path or None)
    elif isinstance(record, Inputs):
        client.log_inputs(
            run_id,
            datasets=[
                DatasetInput(
                    dataset_entity(d.source, d.name, d.digest, d.schema, d.profile),
                    tags=[InputTag("mlflow.data.context", d.context)],
                )
                for d in record.datasets
            ],
        )
    else:
        client.set_terminated(run_id, status=record.status)


def dataset_entity(
    source: str, name: str, digest: str, schema: str | None, profile: str | None
) -> Dataset:
    """MLflow's Dataset entity of a path or URI, with its schema and profile (JSON)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": any will do
        warnings.simplefilter("ignore")
        config = MetaDataset(resolve_dataset_source(source), name=name, digest=digest).to_dict()
    return Dataset(name, digest, config["source_type"], config["source"], schema, profile)


class Outbox:
    """The records of one MLflow run waiting in ``root/<run_id>/``.

    Two file locks in ``root/.locks/`` make it safe to share between couriers, in one process
    or several: ``<run_id>`` is held while a record is numbered or removed (briefly: a round's
    post never waits for a delivery), ``<run_id>.delivery`` while records are being sent.
    """

    def __init__(self, root: str, run_id: str) -> None:
        self.root = root
        self.dir = os.path.join(root, run_id)
        self.run_id = run_id
        self.failed_at: float | None = None  # time of the last delivery the server missed

    def pending(self) -> list[str]:
        """The waiting records' files, oldest first."""
        if not os.path.isdir(self.dir):
            return []
        return sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))

    def put(self, record: Record) -> None:
        """Keep ``record`` on disk, after every record already waiting (its artifact files
        linked, or copied, beside it); an OSError (a full disk) names the outbox."""
        try:
            self._put(record)
        except OSError as err:
            raise OSError(
                err.errno,
                f"the MLflow outbox {self.dir} cannot keep a record ({err.strerror or err}): "
                "free space there, or set tracking.outbox_dir to a disk with room; records "
                "already in it are kept",
            ) from err

    def _put(self, record: Record) -> None:
        with self._locked(self.run_id):
            os.makedirs(self.dir, exist_ok=True)
            names = self.pending()
            number = int(names[-1].split(".")[0]) + 1 if names else 1
            if isinstance(record, Batch) and record.files:
                folder = os.path.join(self.dir, f"{number:08d}.files")
                record = dataclasses.replace(
                    record,
                    files=tuple(
                        ArtifactFile(
                            _link_or_copy(f.path, os.path.join(folder, str(i))), f.artifact_path
                        )
                        for i, f in enumerate(record.files)
                    ),
                )
            temp = os.path.join(self.dir, f".{number:08d}.json.tmp")
            with open(temp, "w") as f:
                json.dump(to_json(record), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, os.path.join(self.dir, f"{number:08d}.json"))

    def deliver(self, client: MlflowClient, wait: bool = True) -> int:
        """Send the waiting records in order; returns how many are still waiting. Without
        ``wait``, a recent failed delivery means: do not try again yet. A record MLflow
        refuses (not an outage) raises, and stays first in the outbox."""
        failed = self.failed_at
        if not wait and failed is not None and time.monotonic() - failed < RETRY_AFTER_S:
            return len(self.pending())
        with self._locked(f"{self.run_id}.delivery"):
            for name in self.pending():
                path = os.path.join(self.dir, name)
                with open(path) as f:
                    record = from_json(json.load(f))
                try:
                    apply(client, self.run_id, record)
                except Exception as err:
                    if not is_outage(err):
                        raise RecordRefusedError(
                            f"MLflow refused record {path} of run {self.run_id}: {err}. It "
                            "stays first in the outbox; later records wait behind it."
                        ) from err
                    self.failed_at = time.monotonic()
                    return len(self.pending())
                with self._locked(self.run_id):  # put() may reuse the number once it is gone
                    os.remove(path)
                    shutil.rmtree(path[: -len(".json")] + ".files", ignore_errors=True)
            self.failed_at = None
            with self._locked(self.run_id), contextlib.suppress(OSError):
                os.rmdir(self.dir)  # fails, as it should, when a record arrived meanwhile
        return 0

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        folder = os.path.join(self.root, LOCKS_FOLDER)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # closing the file releases the lock


def runs_waiting(root: str) -> list[str]:
    """The run ids that have an outbox folder under ``root``."""
    if not os.path.isdir(root):
        return []
    return sorted(
        n for n in os.listdir(root) if n != LOCKS_FOLDER and os.path.isdir(os.path.join(root, n))
    )


def _link_or_copy(path: str, folder: str) -> str:
    """``path`` hard-linked into ``folder`` (copied when it is on another file system)."""
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, os.path.basename(path))
    try:
        os.link(path, target)
    except OSError:
        shutil.copy2(path, target)
    return target


class RecordRefusedError(RuntimeError):
    """MLflow refused a record (not an outage): it would never be accepted as it is."""


class Courier:
    """Delivers one outbox's records from a background thread while the caller goes on.

    The thread's loop, in pseudo-code::

        while True:
            wait for a post or a flush (or RETRY_AFTER_S, while records wait out an outage)
            outbox.deliver()      # oldest first; during an outage, at most every RETRY_AFTER_S
            tell flush() how many records still wait

    ``post`` returns once the record is on disk. A record MLflow refuses stops delivery: the
    next ``post`` or ``flush`` raises :class:`RecordRefusedError` in the caller's thread.
    ``cpu_seconds`` is the CPU time the thread spent delivering (the benchmark reports it).
    """

    def __init__(self, outbox: Outbox, connect: Callable[[], MlflowClient]) -> None:
        self.outbox = outbox
        self._connect = connect
        self._changed = threading.Condition()
        self._posted = 0  # posts and flushes so far ...
        self._handled = 0  # ... of which the thread has dealt with this many
        self._urgent = False
        self._error: BaseException | None = None
        self._closed = False
        self.waiting = len(outbox.pending())
        self.cpu_seconds = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"outbox-{outbox.run_id}", daemon=True
        )
        self._thread.start()

    def post(self, record: Record) -> None:
        """Keep ``record`` on disk and have the thread send it."""
        self._raise_refusal()
        self.outbox.put(record)
        with self._changed:
            self._posted += 1
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> int:
        """Deliver now what waits (trying again at once after an outage) and wait until done;
        returns how many records still wait (the server is unreachable)."""
        with self._changed:
            self._posted += 1
            self._urgent = True
            target = self._posted
            self._changed.notify_all()
            self._changed.wait_for(
                lambda: self._handled >= target or self._error is not None, timeout
            )
        self._raise_refusal()
        return self.waiting

    def close(self) -> int:
        """End the thread (once it has dealt with what was posted; :meth:`flush` first to
        deliver what an outage held back); returns how many records still wait. Records posted
        afterwards are kept on disk only."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()
        return self.waiting

    @property
    def in_outage(self) -> bool:
        """True while records wait because the server was unreachable."""
        return self.waiting > 0 and self.outbox.failed_at is not None

    def _raise_refusal(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        client = None
        while True:
            with self._changed:
                notified = True
                if self._handled == self._posted and not self._closed:
                    notified = self._changed.wait(RETRY_AFTER_S if self.waiting else None)
                if self._closed and self._handled == self._posted:
                    return
                posted, retry_now = self._posted, self._urgent or not notified
                self._urgent = False
            began = time.thread_time()
            try:
                client = client or self._connect()
                waiting = self.outbox.deliver(client, wait=retry_now)
            except Exception as err:
                with self._changed:
                    self._error = err
                    self._changed.notify_all()
                return
            finally:
                self.cpu_seconds += time.thread_time() - began
            with self._changed:
                self.waiting = waiting
                self._handled = posted
                self._changed.notify_all()
