"""Proposing ``tf.feature_column`` columns from a data schema and its statistics.

The proposal is a starting point for :func:`estimator_core.feature_column.input_layer`: one
column per non-label feature, in schema order, chosen by the rules of
:func:`feature_columns_from_schema`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

__all__ = [
    "HASH_BUCKET_SIZE",
    "HASH_EMBEDDING_DIMENSION",
    "Standardize",
    "embedding_dimension",
    "feature_columns_from_schema",
]

HASH_BUCKET_SIZE = 1000
HASH_EMBEDDING_DIMENSION = 8
_DTYPES = ("float32", "int64", "string")
_KINDS = ("fixed", "var")


def feature_columns_from_schema(
    schema: Mapping[str, Any],
    stats: Mapping[str, Any] | None = None,
    *,
    embedding_threshold: int = 50,
    normalize: bool = True,
) -> list[Any]:
    """Dense ``tf.feature_column`` columns for the features of ``schema``, in schema order.

    ``schema``: the ``schema.json`` of a data set (an ``estimator_core.data.Schema`` is accepted
    too): ``{"version": 1, "label": name or None, "features": [{"name": str, "dtype":
    "float32" | "int64" | "string", "shape": per-example shape ([] for a scalar), "kind":
    "fixed" | "var"}, ...]}``.

    ``stats`` (optional): ``{"features": {name: {...}}}`` with ``{"count", "missing", "min",
    "max", "mean", "std"}`` for numeric features and ``{"count", "missing", "vocabulary":
    {value: count}}`` for categorical ones (JSON turns integer values into string keys; both
    are accepted; ``stats.json`` from ``write_dataset`` fits, its ``"vocabulary": null`` meaning
    "too many values to list", beyond its cap of 10,000). The ``vocabulary``, ``mean`` and
    ``std`` entries are used.

    Rules, per feature (the label is skipped):

    1. ``float32``, ``fixed`` → ``numeric_column(name, shape)`` (shape ``(1,)`` for scalars),
       with ``normalizer_fn=Standardize(mean, std)`` when ``normalize`` and the statistics
       have the feature's mean and std (:class:`Standardize`).
    2. ``int64`` with a non-empty stats vocabulary (either kind) → categorical:
       ``categorical_column_with_identity(name, num_buckets=max + 2, default_value=max + 1)``
       when the values are integers in ``[0, 2 * size)`` (compact ids; ids never seen, including
       ones above ``max``, go to the extra bucket ``max + 1``), else
       ``categorical_column_with_vocabulary_list(name, sorted values, dtype=tf.int64,
       num_oov_buckets=1)``.
    3. ``int64``, ``fixed``, without a vocabulary → ``numeric_column(name, shape,
       dtype=tf.int64)``, standardized as in rule 1.
    4. ``string`` with a non-empty stats vocabulary (either kind) →
       ``categorical_column_with_vocabulary_list(name, sorted vocabulary, num_oov_buckets=1)``.
    5. ``string`` without a vocabulary, and ``int64`` ``var`` without one →
       ``categorical_column_with_hash_bucket(name, 1000)`` (dtype tf.int64 for int64) wrapped in
       ``embedding_column(dimension=8)``.
    6. A categorical column of rules 2 and 4 with ``size`` distinct values (its vocabulary's
       length) is wrapped in ``indicator_column`` if ``size <= embedding_threshold``, otherwise in
       ``embedding_column(dimension=max(1, round(6 * size ** 0.25)))``.
    7. ``float32``, ``var``: no column fits (variable-length floats are not categorical and
       numeric columns need a fixed shape); the feature is skipped with a ``UserWarning``.

    Variable-length (``var``) features get the categorical treatments above; their input is
    then a ``tf.SparseTensor`` or ``tf.RaggedTensor``, each example's values a bag of ids.

    Raises:
      ValueError: a malformed schema (wrong version, a feature without a name, an unknown dtype
        or kind, a duplicate name), naming the offending feature.
    """
    if not isinstance(schema, Mapping) and callable(getattr(schema, "to_json", None)):
        schema = schema.to_json()  # an estimator_core.data.Schema
    if not isinstance(schema, Mapping):
        raise ValueError(f"schema must be a dict, got {type(schema).__name__}")
    if schema.get("version") != 1:
        raise ValueError(f"unsupported schema version {schema.get('version')!r}; expected 1")
    features = schema.get("features")
    if not isinstance(features, list):
        raise ValueError("schema['features'] must be a list of feature dicts")
    label = schema.get("label")
    feature_stats = (stats or {}).get("features") or {}
    columns = []
    seen: set[str] = set()
    for index, feature in enumerate(features):
        name, dtype, shape, kind = _validated(feature, index)
        if name in seen:
            raise ValueError(f"schema feature {name!r} appears twice")
        seen.add(name)
        if name == label:
            continue
        entry = feature_stats.get(name) or {}
        vocabulary = _vocabulary(entry, dtype, name)
        normalizer = _standardize(entry, name) if normalize else None
        column = _propose(name, dtype, shape, kind, vocabulary, embedding_threshold, normalizer)
        if column is not None:
            columns.append(column)
    return columns


def _validated(feature: Any, index: int) -> tuple[str, str, tuple[int, ...], str]:
    if not isinstance(feature, Mapping) or not isinstance(feature.get("name"), str):
        raise ValueError(f"schema feature #{index} must be a dict with a string 'name'")
    name = feature["name"]
    dtype = feature.get("dtype")
    kind = feature.get("kind", "fixed")
    if dtype not in _DTYPES:
        raise ValueError(f"schema feature {name!r}: dtype must be one of {_DTYPES}, got {dtype!r}")
    if kind not in _KINDS:
        raise ValueError(f"schema feature {name!r}: kind must be one of {_KINDS}, got {kind!r}")
    shape = feature.get("shape", [])
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) or d is None for d in shape
    ):
        raise ValueError(f"schema feature {name!r}: shape must be a list of ints, got {shape!r}")
    if kind == "fixed" and not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            f"schema feature {name!r}: a fixed feature needs a shape of positive ints, got "
            f"{shape!r}"
        )
    return name, dtype, tuple(shape), kind


def _vocabulary(feature_stats: Mapping[str, Any], dtype: str, name: str) -> list[Any]:
    """The stats vocabulary as sorted values (ints for int64 features); [] when absent."""
    vocabulary = feature_stats.get("vocabulary") or {}
    if dtype == "float32" or not vocabulary:
        return []
    if dtype == "int64":
        try:
            return sorted({int(value) for value in vocabulary})
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"stats for int64 feature {name!r}: vocabulary has a non-integer value ({error})"
            ) from error
    return sorted({str(value) for value in vocabulary})


def _propose(
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    kind: str,
    vocabulary: list[Any],
    embedding_threshold: int,
    normalizer: Standardize | None,
) -> Any:
    fc = tf.feature_column
    numeric_shape = shape or (1,)
    if dtype == "float32":
        if kind == "var":
            warnings.warn(
                f"feature {name!r}: variable-length float32 features get no column; skipped",
                UserWarning,
                stacklevel=3,
            )
            return None
        return fc.numeric_column(name, shape=numeric_shape, normalizer_fn=normalizer)
    if vocabulary:
        if dtype == "int64" and vocabulary[0] >= 0 and vocabulary[-1] < 2 * len(vocabulary):
            top = vocabulary[-1]
            categorical = fc.categorical_column_with_identity(
                name, num_buckets=top + 2, default_value=top + 1
            )
        else:
            categorical = fc.categorical_column_with_vocabulary_list(
                name,
                vocabulary,
                dtype=tf.int64 if dtype == "int64" else tf.string,
                num_oov_buckets=1,
            )
        size = len(vocabulary)
        if size <= embedding_threshold:
            return fc.indicator_column(categorical)
        return fc.embedding_column(categorical, dimension=embedding_dimension(size))
    if dtype == "int64" and kind == "fixed":
        return fc.numeric_column(
            name, shape=numeric_shape, dtype=tf.int64, normalizer_fn=normalizer
        )
    hashed = fc.categorical_column_with_hash_bucket(
        name, HASH_BUCKET_SIZE, dtype=tf.int64 if dtype == "int64" else tf.string
    )
    return fc.embedding_column(hashed, dimension=HASH_EMBEDDING_DIMENSION)


@dataclasses.dataclass(frozen=True)
class Standardize:
    """A ``numeric_column`` normalizer: ``(float32(x) - mean) / std`` (``std`` 0, a constant
    feature: ``x - mean``)."""

    mean: float
    std: float

    def __call__(self, values: tf.Tensor) -> tf.Tensor:
        centered = tf.cast(values, tf.float32) - self.mean
        return centered / self.std if self.std > 0 else centered


def _standardize(entry: Mapping[str, Any], name: str) -> Standardize | None:
    """The feature's Standardize from its statistics, or None without a mean and std."""
    mean, std = entry.get("mean"), entry.get("std")
    if mean is None or std is None:
        return None
    try:
        mean, std = float(mean), float(std)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"stats for feature {name!r}: mean/std are not numbers ({error})"
        ) from error
    if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
        raise ValueError(f"stats for feature {name!r}: mean {mean} / std {std} are not usable")
    return Standardize(mean, std)


def embedding_dimension(size: int) -> int:
    """The embedding width proposed for ``size`` categories: ``max(1, round(6 * size**0.25))``."""
    return max(1, round(6 * math.pow(size, 0.25)))
