"""TFRecord data preparation and input pipelines (pure TensorFlow; no orchestration here).

``write_dataset`` turns CSV / Parquet / NumPy / pandas / image-folder sources into sharded
``tf.train.Example`` TFRecords with ``schema.json``, ``stats.json`` and ``manifest.json``;
``make_input_fn`` reads them back as an Estimator input_fn.
"""

from estimator_core.data.columns import feature_columns_from_schema
from estimator_core.data.errors import DataError
from estimator_core.data.reader import make_input_fn, split_files
from estimator_core.data.schema import FeatureSpec, Schema, read_schema
from estimator_core.data.writer import read_manifest, read_stats, write_dataset

__all__ = [
    "DataError",
    "FeatureSpec",
    "Schema",
    "feature_columns_from_schema",
    "make_input_fn",
    "read_manifest",
    "read_schema",
    "read_stats",
    "split_files",
    "write_dataset",
]
