"""The data-prep task: a source → TFRecords via ``estimator_core.data.write_dataset``.

Retrying is safe: a data set is renamed into place only when complete, and a re-run on the same
source content and settings is recognised by its fingerprint and writes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from estimator_core.data import write_dataset

BUILT_IN_SOURCES = ("sklearn:digits",)


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


# The data set's own fingerprint is the cache key (write_dataset checks it), so Prefect's
# input-hash cache stays off: it would key on the path, not on the content.
@task(name="prepare-tfrecords", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def prepare_tfrecords(
    source: str,
    output_dir: str,
    label: str | None = None,
    splits: dict[str, float] | None = None,
    seed: int = 0,
    split_key: str | None = None,
    shard_bytes: int = 128 << 20,
    num_shards: int | None = None,
    compression: str | None = None,
    on_bad_row: str = "error",
) -> dict[str, Any]:
    """Write ``source`` as TFRecords to ``output_dir``; returns a small summary of the manifest."""
    logger = get_run_logger()
    manifest = write_dataset(
        resolve_source(source),
        output_dir,
        label=label,
        splits=splits,
        seed=seed,
        split_key=split_key,
        shard_bytes=shard_bytes,
        num_shards=num_shards,
        compression=compression,
        on_bad_row=on_bad_row,
    )
    records = {name: split["records"] for name, split in manifest["splits"].items()}
    if manifest["cache_hit"]:
        logger.info(
            "TFRecords in %s are up to date (fingerprint %s)",
            output_dir,
            manifest["fingerprint"][:12],
        )
    else:
        logger.info("Wrote %s records to %s: %s", manifest["records"], output_dir, records)
    if manifest["bad_rows"]:
        logger.warning(
            "%d bad row(s) skipped; first ones in %s/stats.json", manifest["bad_rows"], output_dir
        )
    return {
        "data_dir": output_dir,
        "fingerprint": manifest["fingerprint"],
        "records": records,
        "bad_rows": manifest["bad_rows"],
        "cache_hit": manifest["cache_hit"],
    }
