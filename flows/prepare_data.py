"""The prepare-data flow: a source → TFRecords, one mapped task per part, on a task runner of
your choice (threads, local processes, or a Dask cluster)."""

from __future__ import annotations

import os
from typing import Literal

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows.artifacts import artifact_key
from tasks.data_prep import (
    PreparedData,
    abandon_tfrecords,
    finalize_tfrecords,
    plan_tfrecords,
    summarize,
    write_tfrecord_part,
)
from tasks.params import DataPrepParams


@flow(name="prepare-data")
def prepare_data(params: DataPrepParams | None = None) -> PreparedData:
    """Convert ``params.source`` into TFRecords under ``params.output_dir``; returns the summary.

    The parts are converted by mapped ``write-tfrecord-part`` tasks, in parallel on the flow's
    task runner; a failed part removes the temporary directory and fails the run, leaving
    ``output_dir`` as it was.
    """
    params = params or DataPrepParams()
    plan = plan_tfrecords(**params.model_dump())  # `schema` by its alias
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
        key=artifact_key(params.output_dir, "tfrecord-splits"),
        table=[{"split": name, "records": count} for name, count in summary.records.items()],
        description=f"TFRecords in {summary.data_dir} (fingerprint "
        f"{summary.fingerprint[:12]}, {'unchanged' if summary.cache_hit else 'written'})",
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
