"""TFRecord data preparation and input pipelines (pure TensorFlow; no orchestration here).

``write_dataset`` turns CSV / Parquet / NumPy / pandas / image-folder sources into sharded
``tf.train.Example`` TFRecords with ``schema.json``, ``stats.json`` and ``manifest.json``;
``make_input_fn`` reads them back as an Estimator input_fn.
"""

from estimator_core.data.columns import feature_columns_from_schema
from estimator_core.data.errors import DataError
from estimator_core.data.reader import (
    corrupt_shard_error,
    make_input_fn,
    make_serving_input_receiver_fn,
    split_files,
    verify_shards,
)
from estimator_core.data.schema import FeatureSpec, Schema, read_schema
from estimator_core.data.writer import (
    DatasetPlan,
    PartResult,
    abandon_dataset,
    finalize_dataset,
    plan_dataset,
    read_manifest,
    read_stats,
    write_dataset,
    write_part,
)

__all__ = [
    "DataError",
    "DatasetPlan",
    "FeatureSpec",
    "PartResult",
    "Schema",
    "abandon_dataset",
    "corrupt_shard_error",
    "feature_columns_from_schema",
    "finalize_dataset",
    "make_input_fn",
    "make_serving_input_receiver_fn",
    "plan_dataset",
    "read_manifest",
    "read_schema",
    "read_stats",
    "split_files",
    "verify_shards",
    "write_dataset",
    "write_part",
]
