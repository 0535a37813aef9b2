"""The prepare-data flow: a source → TFRecords, one mapped task per part, on a task runner of
your choice (threads, local processes, or a Dask cluster)."""

from __future__ import annotations

import os
from typing import Any, Literal

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows.locations import checked_location
from tasks.data_prep import (
    BUILT_IN_SOURCES,
    abandon_tfrecords,
    finalize_tfrecords,
    plan_tfrecords,
    summarize,
    write_tfrecord_part,
)


class DataPrepParams(BaseModel):
    """What to convert and how (see ``estimator_core.data.write_dataset`` for the semantics)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    source: str = Field(
        "sklearn:digits", description="a path, or one of " + ", ".join(BUILT_IN_SOURCES)
    )
    output_dir: str = Field(
        "runs/data/digits", description="where the data set goes (a location every worker reaches)"
    )
    label: str | None = "digit"
    splits: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "eval": 0.2})
    seed: int = 0
    split_key: str | None = None
    shard_bytes: int = Field(128 << 20, gt=0)
    num_shards: int | None = Field(None, ge=1)
    compression: str | None = Field(None, pattern="^GZIP$")
    on_bad_row: str = Field("error", pattern="^(error|skip)$")

    @field_validator("splits")
    @classmethod
    def _fractions(cls, splits: dict[str, float]) -> dict[str, float]:
        total = sum(splits.values())
        if not splits or any(f <= 0 for f in splits.values()) or abs(total - 1) > 1e-6:
            raise ValueError(f"split fractions must be positive and sum to 1, got {splits}")
        return splits

    @field_validator("source")
    @classmethod
    def _source_exists(cls, source: str) -> str:
        if source in BUILT_IN_SOURCES:
            return source
        source = checked_location(source)
        if "://" not in source and not os.path.exists(source):
            raise ValueError(f"source {source!r} does not exist")
        return source

    @field_validator("output_dir")
    @classmethod
    def _location(cls, path: str) -> str:
        return checked_location(path)


@flow(name="prepare-data")
def prepare_data(params: DataPrepParams | None = None) -> dict[str, Any]:
    """Convert ``params.source`` into TFRecords under ``params.output_dir``; returns the summary.

    The parts are converted by mapped ``write-tfrecord-part`` tasks, in parallel on the flow's
    task runner; a failed part removes the temporary directory and fails the run, leaving
    ``output_dir`` as it was.
    """
    params = params or DataPrepParams()
    plan = plan_tfrecords(**params.model_dump())
    if plan.cache_hit:
        summary = summarize(plan.cached_manifest(), plan.output_dir)
    else:
        parts = write_tfrecord_part.map(unmapped(plan), range(len(plan.parts)))
        try:
            summary = finalize_tfrecords(plan, parts.result())
        except BaseException:
            abandon_tfrecords(plan)
            raise
    create_table_artifact(
        key="tfrecord-splits",
        table=[{"split": name, "records": count} for name, count in summary["records"].items()],
        description=f"TFRecords in {summary['data_dir']} (fingerprint "
        f"{summary['fingerprint'][:12]}, {'unchanged' if summary['cache_hit'] else 'written'})",
    )
    return summary


def prepare_data_on(
    runner: Literal["threads", "processes", "dask"] = "processes",
    workers: int | None = None,
    dask_address: str | None = None,
):
    """``prepare_data`` with a task runner: threads, a local process pool (the default: parts
    are CPU-bound Python), or a Dask cluster (``dask_address`` of a scheduler, or a new
    ``LocalCluster`` of ``workers`` processes)."""
    if runner == "threads":
        return prepare_data.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    if runner == "processes":
        return prepare_data.with_options(task_runner=ProcessPoolTaskRunner(max_workers=workers))
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return prepare_data.with_options(task_runner=DaskTaskRunner(address=dask_address))
    cluster = {"n_workers": workers or os.cpu_count() or 1, "threads_per_worker": 1}
    return prepare_data.with_options(task_runner=DaskTaskRunner(cluster_kwargs=cluster))


if __name__ == "__main__":
    print(prepare_data_on("processes")())
