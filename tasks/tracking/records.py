"""What the pipeline sends MLflow, as frozen records: kept in the outbox as JSON, applied in order.

A :class:`Batch` carries metrics, params, tags and artifact files of one run; :class:`Inputs`
its dataset inputs; :class:`Terminate` its end. :func:`to_json` / :func:`from_json` are the
outbox's file format (``{"op": "batch", ...}``); records written by earlier versions (metric
rows as 4-item lists, one-file ``artifact`` records) still read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class MetricRow:
    """One metric value. ``model_id`` (with the dataset's name and digest) links it to an MLflow
    LoggedModel, whose page and the experiment's Models tab show it."""

    key: str
    value: float
    timestamp_ms: int
    step: int
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclasses.dataclass(frozen=True)
class ArtifactFile:
    """A local file to upload under ``artifact_path`` ("" is the run's artifact root)."""

    path: str
    artifact_path: str


@dataclasses.dataclass(frozen=True)
class Batch:
    metrics: tuple[MetricRow, ...] = ()
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    files: tuple[ArtifactFile, ...] = ()


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """A dataset input of the run (MLflow's Dataset entity: schema and profile are JSON)."""

    name: str
    digest: str
    source: str
    context: str
    schema: str | None = None
    profile: str | None = None


@dataclasses.dataclass(frozen=True)
class Inputs:
    datasets: tuple[DatasetRecord, ...]


@dataclasses.dataclass(frozen=True)
class Terminate:
    status: str


Record = Batch | Inputs | Terminate


def to_json(record: Record) -> dict[str, Any]:
    """The outbox file's content for ``record``."""
    if isinstance(record, Batch):
        return {
            "op": "batch",
            "metrics": [dataclasses.astuple(m) for m in record.metrics],
            "params": dict(record.params),
            "tags": dict(record.tags),
            "files": [[f.path, f.artifact_path] for f in record.files],
        }
    if isinstance(record, Inputs):
        return {"op": "inputs", "datasets": [dataclasses.asdict(d) for d in record.datasets]}
    return {"op": "terminate", "status": record.status}


def from_json(data: Mapping[str, Any]) -> Record:
    """The record an outbox file holds; ValueError for a kind this version does not know."""
    kind = data["op"]
    if kind == "batch":
        return Batch(
            metrics=tuple(MetricRow(*row) for row in data.get("metrics", [])),
            params=dict(data.get("params", {})),
            tags=dict(data.get("tags", {})),
            files=tuple(ArtifactFile(*pair) for pair in data.get("files", [])),
        )
    if kind == "artifact":  # one file: the form outboxes written before batches had files
        return Batch(files=(ArtifactFile(data["path"], data["artifact_path"]),))
    if kind == "inputs":  # earlier versions named the source "uri"
        return Inputs(
            tuple(
                DatasetRecord(**{("source" if k == "uri" else k): v for k, v in d.items()})
                for d in data["datasets"]
            )
        )
    if kind == "terminate":
        return Terminate(data["status"])
    raise ValueError(f"outbox record of unknown kind {kind!r}")
