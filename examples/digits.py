"""The seed's classifier on scikit-learn's digits (8x8 images, 10 classes, ships with sklearn).

A model_fn written the tf.estimator way: layers, loss, optimizer and metrics built inside it,
one ``EstimatorSpec`` per mode.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

import estimator_core as est

NUM_FEATURES = 64
NUM_CLASSES = 10


def load_digits_arrays(seed: int = 0, eval_fraction: float = 0.2):
    """(x_train, y_train, x_eval, y_eval): float32 pixels scaled to [0, 1], int32 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - eval_fraction))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def input_fn_from_arrays(x: np.ndarray, y: np.ndarray | None, batch_size: int, training: bool):
    """An input_fn over in-memory arrays: shuffle and repeat when ``training``."""

    def input_fn() -> tf.data.Dataset:
        features = {"x": x}
        dataset = tf.data.Dataset.from_tensor_slices((features, y) if y is not None else features)
        if training:
            dataset = dataset.shuffle(1000).repeat()
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    return input_fn


def model_fn(features: dict[str, tf.Tensor], labels: tf.Tensor, mode: str, params: dict[str, Any]):
    """MLP classifier: sparse softmax cross-entropy, Adam, accuracy; classes and probabilities.

    params: ``hidden_units`` (64), ``learning_rate`` (0.01), ``feature``: the name of the
    64-pixel input feature ("x"; the prepared TFRecords call it "pixels").
    """
    hidden = keras.layers.Dense(params.get("hidden_units", 64), activation="relu", name="hidden")
    output = keras.layers.Dense(NUM_CLASSES, name="logits")
    logits = output(hidden(features[params.get("feature", "x")]))
    classes = tf.argmax(logits, axis=1, output_type=tf.int32)
    predictions = {"classes": classes, "probabilities": tf.nn.softmax(logits)}
    if mode == est.ModeKeys.PREDICT:
        return est.EstimatorSpec(
            mode,
            predictions=predictions,
            export_outputs={"serving_default": est.export.PredictOutput(predictions)},
        )
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    if mode == est.ModeKeys.EVAL:
        return est.EstimatorSpec(
            mode, loss=loss, eval_metric_ops={"accuracy": est.metrics.accuracy(labels, classes)}
        )
    optimizer = keras.optimizers.Adam(params.get("learning_rate", 1e-2))
    return est.EstimatorSpec(mode, loss=loss, train_op=optimizer, predictions=predictions)
