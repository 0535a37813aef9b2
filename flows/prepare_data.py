"""The prepare-data flow: TFRecords from a source, with a Prefect artifact of what was written."""

from __future__ import annotations

import os
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field, field_validator

from tasks.data_prep import BUILT_IN_SOURCES, prepare_tfrecords


class DataPrepParams(BaseModel):
    """What to convert and how (see ``estimator_core.data.write_dataset`` for the semantics)."""

    source: str = Field(
        "sklearn:digits", description="a path, or one of " + ", ".join(BUILT_IN_SOURCES)
    )
    output_dir: str = Field(
        "runs/data/digits", description="where the data set goes (shared by all workers)"
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
        if (
            not splits
            or any(f <= 0 for f in splits.values())
            or abs(sum(splits.values()) - 1) > 1e-6
        ):
            raise ValueError(f"split fractions must be positive and sum to 1, got {splits}")
        return splits

    @field_validator("source")
    @classmethod
    def _source_exists(cls, source: str) -> str:
        if source not in BUILT_IN_SOURCES and "://" not in source and not os.path.exists(source):
            raise ValueError(f"source {source!r} does not exist")
        return source


@flow(name="prepare-data")
def prepare_data(params: DataPrepParams | None = None) -> dict[str, Any]:
    """Convert ``params.source`` into TFRecords under ``params.output_dir``; returns the summary."""
    params = params or DataPrepParams()
    summary = prepare_tfrecords(**params.model_dump())
    create_table_artifact(
        key="tfrecord-splits",
        table=[{"split": name, "records": count} for name, count in summary["records"].items()],
        description=f"TFRecords in {summary['data_dir']} (fingerprint {summary['fingerprint'][:12]}, "
        f"{'unchanged' if summary['cache_hit'] else 'written'})",
    )
    return summary


if __name__ == "__main__":
    print(prepare_data())
