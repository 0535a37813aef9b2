"""Data-prep tasks: a source → TFRecords via ``estimator_core.data``, one task per part.

``plan_tfrecords`` cuts the source into parts (or recognises an up-to-date data set),
``write_tfrecord_part`` converts one part (mapped: parts run in parallel on the flow's task
runner) and ``finalize_tfrecords`` publishes the data set. Retrying is safe: a part writes only
into the plan's temporary directory, and the data set is renamed into place only when complete.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from estimator_core.data import (
    DatasetPlan,
    PartResult,
    abandon_dataset,
    finalize_dataset,
    plan_dataset,
    write_part,
)


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """The few facts of a written data set's manifest that later stages and the UI need."""

    data_dir: str
    fingerprint: str
    records: dict[str, int]  # per split
    bad_rows: int
    cache_hit: bool


def resolve_source(source: str) -> Any:
    """A source for write_dataset: a path, or a data set shipped in a package (``sklearn:digits``:
    64 pixel features scaled to [0, 1] as ``pixels``, label ``digit``)."""
    if source == "sklearn:digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return {
            "pixels": (digits.data / 16.0).astype(np.float32),
            "digit": digits.target.astype(np.int64),
        }
    return source


# The data set's own fingerprint is the cache key (plan_tfrecords checks it), so Prefect's
# input-hash cache stays off: it would key on the path, not on the content.
@task(name="plan-tfrecords", cache_policy=NO_CACHE)
def plan_tfrecords(source: str, output_dir: str, **settings: Any) -> DatasetPlan:
    """Validate the settings, infer the schema and cut ``source`` into parts."""
    plan = plan_dataset(resolve_source(source), output_dir, **settings)
    if not plan.cache_hit:
        get_run_logger().info("Converting %s into %d part(s)", source, len(plan.parts))
    return plan


@task(name="write-tfrecord-part", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def write_tfrecord_part(plan: DatasetPlan, index: int) -> PartResult:
    """Convert part ``index`` into shards in the plan's temporary directory."""
    result = write_part(plan, index)
    if result.bad_count:
        get_run_logger().warning("part %d: %d bad row(s) skipped", index, result.bad_count)
    return result


@task(name="finalize-tfrecords", cache_policy=NO_CACHE)
def finalize_tfrecords(plan: DatasetPlan, results: list[PartResult]) -> PreparedData:
    """Publish the data set; returns a small summary of its manifest."""
    return summarize(finalize_dataset(plan, results), plan.output_dir)


@task(name="abandon-tfrecords", cache_policy=NO_CACHE)
def abandon_tfrecords(plan: DatasetPlan) -> None:
    """Remove the temporary directory of a failed conversion."""
    abandon_dataset(plan)


def summarize(manifest: dict[str, Any], data_dir: str) -> PreparedData:
    """The facts of ``manifest`` that later tasks and the UI need."""
    return PreparedData(
        data_dir=data_dir,
        fingerprint=manifest["fingerprint"],
        records={name: split["records"] for name, split in manifest["splits"].items()},
        bad_rows=manifest["bad_rows"],
        cache_hit=manifest["cache_hit"],
    )
