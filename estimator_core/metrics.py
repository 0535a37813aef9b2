"""Streaming metrics for ``eval_metric_ops``, named after ``tf.compat.v1.metrics``.

Each function creates a Keras metric, updates it with this batch and returns it; the Estimator
resets it before an evaluation and reads ``result()`` after the last batch, so the value covers
the whole evaluation, whatever the batch size::

    eval_metric_ops = {"accuracy": est.metrics.accuracy(labels, predicted_classes)}
"""

from __future__ import annotations

from typing import Any

import keras


def _updated(metric: keras.metrics.Metric, *args: Any, weights: Any = None) -> keras.metrics.Metric:
    metric.update_state(*args, sample_weight=weights)
    return metric


def accuracy(labels: Any, predictions: Any, weights: Any = None, name: str = "accuracy"):
    """Fraction of ``predictions`` equal to ``labels`` (both class ids)."""
    return _updated(keras.metrics.Accuracy(name=name), labels, predictions, weights=weights)


def mean(values: Any, weights: Any = None, name: str = "mean"):
    """Weighted mean of ``values``."""
    return _updated(keras.metrics.Mean(name=name), values, weights=weights)


def mean_squared_error(labels: Any, predictions: Any, weights: Any = None, name: str = "mse"):
    return _updated(keras.metrics.MeanSquaredError(name=name), labels, predictions, weights=weights)


def root_mean_squared_error(labels: Any, predictions: Any, weights: Any = None, name: str = "rmse"):
    return _updated(
        keras.metrics.RootMeanSquaredError(name=name), labels, predictions, weights=weights
    )


def mean_absolute_error(labels: Any, predictions: Any, weights: Any = None, name: str = "mae"):
    return _updated(
        keras.metrics.MeanAbsoluteError(name=name), labels, predictions, weights=weights
    )


def auc(
    labels: Any, predictions: Any, weights: Any = None, num_thresholds: int = 200, name: str = "auc"
):
    """Area under the ROC curve of scores ``predictions`` in [0, 1] for binary ``labels``."""
    metric = keras.metrics.AUC(num_thresholds=num_thresholds, name=name)
    return _updated(metric, labels, predictions, weights=weights)


def precision(labels: Any, predictions: Any, weights: Any = None, name: str = "precision"):
    return _updated(keras.metrics.Precision(name=name), labels, predictions, weights=weights)


def recall(labels: Any, predictions: Any, weights: Any = None, name: str = "recall"):
    return _updated(keras.metrics.Recall(name=name), labels, predictions, weights=weights)
