"""A run's records on their way to MLflow: posted to its outbox, delivered in the background.

Every call names its MLflow run by id (``MlflowClient``), never through MLflow's thread-local
"active run", so a recorder is safe on any thread. Metrics go in batches: one record per round,
whatever the number of eval sets and metrics.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tasks.logs import run_logger
from tasks.params import TrackingParams
from tasks.tracking.client import connect, tracking_uri
from tasks.tracking.outbox import Courier, Outbox
from tasks.tracking.records import (
    ArtifactFile,
    Batch,
    DatasetRecord,
    Inputs,
    MetricRow,
    Record,
    Terminate,
)

MAX_PARAM_LENGTH = 6000


class TrackingUndeliveredError(RuntimeError):
    """Records of a run are still waiting in the outbox: the tracking server stayed away."""


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists → ``{"a.b.0.c": "value"}`` with MLflow-safe keys and values; unset
    (None) values are left out rather than logged as the string "None"."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, name + "."))
        else:
            flat[_safe_key(name)] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def _safe_key(key: str) -> str:
    # MLflow keys allow alphanumerics, _ - . space / and nothing else.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


def metric_row(key: str, value: float, step: int, **links: str | None) -> MetricRow:
    """A metric value logged now (``links``: model_id, dataset_name, dataset_digest)."""
    return MetricRow(key, float(value), int(time.time() * 1000), int(step), **links)


def directory_files(
    directory: str, artifact_path: str, match: str | None = None
) -> list[ArtifactFile]:
    """The files under ``directory`` (those whose name contains ``match``, if given), to be
    logged under ``artifact_path`` with their relative folders."""
    files = []
    for root, _dirs, names in os.walk(directory):
        relative = os.path.relpath(root, directory)
        target = artifact_path if relative == "." else f"{artifact_path}/{relative}"
        files += [
            ArtifactFile(os.path.join(root, name), target)
            for name in sorted(names)
            if match is None or match in name
        ]
    return files


class RunRecorder:
    """Posts the records of MLflow run ``run_id`` to its outbox (``settings.outbox_dir``); a
    courier thread of its own delivers them while the caller goes on. Several recorders may
    serve one run at a time (a flow and its subflows): the outbox keeps them in one order.

    Posting never waits for the tracking server. :meth:`deliver` waits for what was posted;
    :meth:`finish` ends the run; :meth:`close` ends the thread (what is left stays on disk).
    """

    def __init__(self, settings: TrackingParams, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self._courier = Courier(
            Outbox(os.path.abspath(settings.outbox_dir), run_id), lambda: connect(settings)
        )
        self._warned_outage = False

    @property
    def outbox_dir(self) -> str:
        return self._courier.outbox.dir

    @property
    def delivery_cpu_seconds(self) -> float:
        """CPU time the courier thread has spent delivering (the benchmark reports it)."""
        return self._courier.cpu_seconds

    def post(self, record: Record) -> None:
        """Keep ``record`` in the outbox, for delivery in order."""
        self._courier.post(record)
        if self._courier.in_outage and not self._warned_outage:
            self._warned_outage = True
            run_logger(__name__).warning(
                "MLflow at %s is unreachable: records kept in %s, delivered when it is back",
                tracking_uri(self.settings),
                self.outbox_dir,
            )

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log ``params`` flattened (:func:`flatten`); keys already logged are skipped."""
        self.post(Batch(params=flatten(params)))

    def log_tags(self, tags: Mapping[str, str]) -> None:
        self.post(Batch(tags=dict(tags)))

    def log_metrics(self, rows: Iterable[MetricRow], files: Iterable[ArtifactFile] = ()) -> None:
        """Log metric rows (and files) as one record."""
        self.post(Batch(metrics=tuple(rows), files=tuple(files)))

    def log_files(self, files: Iterable[ArtifactFile]) -> int:
        """Log ``files`` as one record; returns how many."""
        files = tuple(files)
        if files:
            self.post(Batch(files=files))
        return len(files)

    def log_datasets(self, datasets: Iterable[DatasetRecord]) -> None:
        self.post(Inputs(tuple(datasets)))

    def deliver(self, required: bool = True) -> int:
        """Send what waits, in order, and wait until it is delivered; returns how many records
        still wait. With ``required``, records still waiting raise
        :class:`TrackingUndeliveredError` naming the outbox and the command that delivers them
        later (nothing is lost: they stay on disk)."""
        waiting = self._courier.flush()
        if not waiting:
            self._warned_outage = False
        if waiting and required:
            uri = tracking_uri(self.settings)
            raise TrackingUndeliveredError(
                f"MLflow at {uri} stayed unreachable: {waiting} record(s) of run {self.run_id} "
                f"are kept in {self.outbox_dir}. Deliver them when it is back with: python -m "
                f"tasks.tracking deliver --tracking-uri {uri} --outbox {self.settings.outbox_dir} "
                f"--run-id {self.run_id}"
            )
        return waiting

    def finish(self, status: str = "FINISHED") -> None:
        """End the run with ``status`` and the courier thread; raises
        :class:`TrackingUndeliveredError` when records (this one included) could not be
        delivered."""
        self.post(Terminate(status))
        try:
            self.deliver()
        finally:
            self.close()

    def close(self) -> None:
        """End the courier thread once it has dealt with what was posted."""
        self._courier.close()
