"""A linear-regression model_fn on synthetic data (y = x·w + b + noise): the regression example."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

import estimator_core as est


def make_arrays(n: int = 512, num_features: int = 4, seed: int = 0):
    """(x, y, true_weights): float32 features, targets with small noise."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(num_features,)).astype(np.float32)
    x = rng.normal(size=(n, num_features)).astype(np.float32)
    y = (x @ weights + 0.5 + rng.normal(scale=0.01, size=n)).astype(np.float32)
    return x, y, weights


def model_fn(features: dict[str, tf.Tensor], labels: tf.Tensor, mode: str, params: dict[str, Any]):
    """One dense unit, mean squared error, SGD; exports a RegressionOutput."""
    value = tf.squeeze(keras.layers.Dense(1, name="linear")(features["x"]), axis=1)
    if mode == est.ModeKeys.PREDICT:
        return est.EstimatorSpec(
            mode,
            predictions={"value": value},
            export_outputs={"serving_default": est.export.RegressionOutput(value)},
        )
    loss = tf.reduce_mean(tf.square(value - labels))
    metrics = {"rmse": est.metrics.root_mean_squared_error(labels, value)}
    optimizer = keras.optimizers.SGD(params.get("learning_rate", 0.1))
    return est.EstimatorSpec(mode, loss=loss, train_op=optimizer, eval_metric_ops=metrics)
