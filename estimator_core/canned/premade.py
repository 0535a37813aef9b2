"""A premade estimator for a prepared data set, from plain parameters (no model code).

::

    estimator = premade_estimator(
        "DNNClassifier", "data/rows", {"hidden_units": [64, 32]}, model_dir="runs/rows"
    )
    estimator.train(make_input_fn("data/rows", "train", 128, est.ModeKeys.TRAIN), steps=1000)

The feature columns come from the data set's ``schema.json`` and ``stats.json``
(:func:`estimator_core.data.feature_columns_from_schema`: numbers standardized, strings as
vocabularies or hash buckets), and a classifier's classes from the label's recorded
distribution; every other argument is a JSON value, so the whole model is a parameter dict.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Mapping
from typing import Any

import keras

from estimator_core.canned.baseline import BaselineClassifier, BaselineRegressor
from estimator_core.canned.dnn import DNNClassifier, DNNRegressor
from estimator_core.canned.dnn_linear_combined import (
    DNNLinearCombinedClassifier,
    DNNLinearCombinedRegressor,
)
from estimator_core.canned.linear import LinearClassifier, LinearRegressor
from estimator_core.canned.optimizers import optimizer_class
from estimator_core.data.columns import feature_columns_from_schema
from estimator_core.data.schema import read_schema
from estimator_core.data.writer import read_stats
from estimator_core.estimator import Estimator
from estimator_core.run_config import RunConfig

__all__ = ["PREMADE_ESTIMATORS", "premade_estimator"]

PREMADE_ESTIMATORS: dict[str, type[Estimator]] = {
    cls.__name__: cls
    for cls in (
        DNNClassifier,
        DNNRegressor,
        LinearClassifier,
        LinearRegressor,
        DNNLinearCombinedClassifier,
        DNNLinearCombinedRegressor,
        BaselineClassifier,
        BaselineRegressor,
    )
}
_CLASSIFIERS = {
    "DNNClassifier",
    "LinearClassifier",
    "DNNLinearCombinedClassifier",
    "BaselineClassifier",
}
# Arguments this module fills in itself.
_GIVEN = {
    "feature_columns",
    "linear_feature_columns",
    "dnn_feature_columns",
    "model_dir",
    "config",
    "warm_start_from",
    "self",
}
_OPTIMIZER_ARGS = {"optimizer", "linear_optimizer", "dnn_optimizer"}
_ACTIVATION_ARGS = {"activation_fn", "dnn_activation_fn"}
_COLUMN_OPTIONS = {"embedding_threshold": 50, "normalize": True}


def premade_estimator(
    name: str,
    data_dir: str | os.PathLike,
    params: Mapping[str, Any] | None = None,
    *,
    model_dir: str | os.PathLike | None = None,
    config: RunConfig | None = None,
    warm_start_from: Any = None,
) -> Estimator:
    """The premade estimator ``name`` for the data set written to ``data_dir``.

    ``name``: one of :data:`PREMADE_ESTIMATORS` (the classifiers and regressors; the
    ``*Estimator`` classes need a head object). ``params``: the estimator's own arguments, as
    JSON values, with these conversions:

    - ``optimizer`` / ``linear_optimizer`` / ``dnn_optimizer``: a name (``"Adagrad"``,
      ``"Adam"``, ``"Ftrl"``, ``"RMSProp"``, ``"SGD"``, with the estimator's default rate) or
      ``{"name": "Adam", "learning_rate": 0.01, ...}`` (Keras constructor arguments);
    - ``activation_fn`` / ``dnn_activation_fn``: a Keras activation name (``"relu"``, ...);
    - ``weight_column``: a feature name (left out of the feature columns).

    Not given, a classifier's ``n_classes`` and ``label_vocabulary`` come from the label's
    distribution in ``stats.json`` (string labels: their sorted values; integer labels:
    ``n_classes = max + 1``), and a regressor's ``label_dimension`` from the label's shape.
    The feature columns are ``feature_columns_from_schema(schema, stats,
    embedding_threshold=params["embedding_threshold"] (50), normalize=params["normalize"]
    (True))``; a linear model takes the categorical columns bare (one weight per value), and
    a wide-and-deep model puts them in its linear part and every proposed column in its DNN.

    Raises:
      ValueError: an unknown name or parameter (the message lists the accepted ones), a
        classifier of a float label, a weight column or label the schema lacks.
    """
    if name not in PREMADE_ESTIMATORS:
        raise ValueError(
            f"unknown premade estimator {name!r}; choose one of {sorted(PREMADE_ESTIMATORS)}"
        )
    cls = PREMADE_ESTIMATORS[name]
    data_dir = os.fspath(data_dir)
    params = dict(params or {})
    accepted = set(inspect.signature(cls.__init__).parameters) - _GIVEN
    unknown = set(params) - accepted - set(_COLUMN_OPTIONS)
    if unknown:
        raise ValueError(
            f"{name}: unknown parameter(s) {sorted(unknown)}; accepted: "
            f"{sorted(accepted | set(_COLUMN_OPTIONS))}"
        )
    schema = read_schema(data_dir)
    stats = read_stats(data_dir)
    if schema.label is None:
        raise ValueError(f"{name}: the data set in {data_dir} has no label")
    column_options = {key: params.pop(key, default) for key, default in _COLUMN_OPTIONS.items()}
    kwargs = {key: _converted(key, value) for key, value in params.items()}
    kwargs.update(_label_arguments(name, schema, stats, params))
    weight = params.get("weight_column")
    if weight is not None and weight not in {f.name for f in schema.features}:
        raise ValueError(f"{name}: weight_column {weight!r} is not a feature of the data set")
    columns = [
        c
        for c in feature_columns_from_schema(schema, stats, **column_options)
        if _source_key(c) != weight
    ]
    kwargs.update(_column_arguments(cls, columns))
    return cls(model_dir=model_dir, config=config, **kwargs, **_warm_start(cls, warm_start_from))


def _converted(key: str, value: Any) -> Any:
    if key in _OPTIMIZER_ARGS and isinstance(value, Mapping):
        options = dict(value)
        # A new optimizer per call, as an optimizer callable gives.
        return functools.partial(optimizer_class(options.pop("name", None)), **options)
    if key in _ACTIVATION_ARGS and isinstance(value, str):
        try:
            keras.activations.get(value)
        except ValueError as error:
            raise ValueError(f"{key}: unknown activation {value!r} ({error})") from None
    return value


def _label_arguments(
    name: str, schema: Any, stats: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    label = schema.feature(schema.label)
    if name not in _CLASSIFIERS:
        if label.dtype == "string":
            raise ValueError(f"{name}: label {label.name!r} is a string; use a classifier")
        if "label_dimension" in params:
            return {}
        size = 1
        for dim in label.shape:
            size *= dim
        return {"label_dimension": size}
    if label.dtype == "float32":
        raise ValueError(
            f"{name}: label {label.name!r} is float32 (a regression target); use a regressor, "
            "or write the label as integer class ids or strings"
        )
    if "n_classes" in params or "label_vocabulary" in params:
        return {}
    distribution = (stats.get("label") or {}).get("distribution") or {}
    values = {value for split in distribution.values() for value in split}
    if not values:
        raise ValueError(
            f"{name}: stats.json records no label values; give n_classes (and "
            "label_vocabulary for string labels)"
        )
    if label.dtype == "string":
        vocabulary = sorted(values)
        return {"n_classes": max(len(vocabulary), 2), "label_vocabulary": vocabulary}
    ids = sorted(int(v) for v in values)
    if ids[0] < 0:
        raise ValueError(f"{name}: label {label.name!r} has negative class ids {ids[:5]}")
    return {"n_classes": max(ids[-1] + 1, 2)}


def _column_arguments(cls: type[Estimator], columns: list[Any]) -> dict[str, Any]:
    parameters = inspect.signature(cls.__init__).parameters
    bare = [_bare(c) for c in columns]
    if "feature_columns" in parameters:
        linear = cls in (LinearClassifier, LinearRegressor)
        return {"feature_columns": bare if linear else columns}
    if "dnn_feature_columns" in parameters:
        categorical = [b for b, c in zip(bare, columns, strict=True) if b is not c]
        return {"linear_feature_columns": categorical or columns, "dnn_feature_columns": columns}
    return {}  # a baseline reads no feature


def _bare(column: Any) -> Any:
    """An indicator or embedding column's categorical column; any other column itself."""
    return getattr(column, "categorical_column", column)


def _source_key(column: Any) -> str:
    return getattr(_bare(column), "key", column.name)


def _warm_start(cls: type[Estimator], warm_start_from: Any) -> dict[str, Any]:
    if warm_start_from is None:
        return {}
    if "warm_start_from" not in inspect.signature(cls.__init__).parameters:
        raise ValueError(f"{cls.__name__} takes no warm_start_from (as in tf.estimator)")
    return {"warm_start_from": warm_start_from}
