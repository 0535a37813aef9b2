"""tf.estimator's parse-spec helpers: ``tf.io.parse_example`` specs of features plus the label
(and weight) a classifier or regressor reads from the same ``tf.Example``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tensorflow as tf


def classifier_parse_example_spec(
    feature_columns: Iterable[Any],
    label_key: str,
    label_dtype: tf.DType = tf.int64,
    label_default: Any = None,
    weight_column: Any = None,
) -> dict[str, Any]:
    """``tf.feature_column.make_parse_example_spec(feature_columns)`` plus
    ``label_key: FixedLenFeature([1], label_dtype, label_default)`` and the weight column's
    spec (``weight_column``: a key or a ``tf.feature_column.numeric_column``)."""
    label = tf.io.FixedLenFeature((1,), label_dtype, label_default)
    return _with_label_and_weight(feature_columns, label_key, label, weight_column)


def regressor_parse_example_spec(
    feature_columns: Iterable[Any],
    label_key: str,
    label_dtype: tf.DType = tf.float32,
    label_default: Any = None,
    label_dimension: int = 1,
    weight_column: Any = None,
) -> dict[str, Any]:
    """As :func:`classifier_parse_example_spec`, the label a float
    ``FixedLenFeature([label_dimension])``."""
    label = tf.io.FixedLenFeature((label_dimension,), label_dtype, label_default)
    return _with_label_and_weight(feature_columns, label_key, label, weight_column)


def _with_label_and_weight(
    feature_columns: Iterable[Any], label_key: str, label: Any, weight_column: Any
) -> dict[str, Any]:
    spec = dict(tf.feature_column.make_parse_example_spec(feature_columns))
    if label_key in spec:
        raise ValueError(
            f"label should not be used as feature. label_key: {label_key}, features: {list(spec)}"
        )
    spec[label_key] = label
    if weight_column is None:
        return spec
    if isinstance(weight_column, str):
        weight_column = tf.feature_column.numeric_column(weight_column)
    if type(weight_column).__name__.lstrip("_") != "NumericColumn":
        raise ValueError(
            "weight_column should be an instance of tf.feature_column.numeric_column. "
            f"Given type: {type(weight_column)} value: {weight_column}"
        )
    if weight_column.key in spec:
        raise ValueError(
            f"weight_column should not be used as feature. weight_column: "
            f"{weight_column.key}, features: {list(spec)}"
        )
    spec.update(weight_column.parse_example_spec)
    return spec
