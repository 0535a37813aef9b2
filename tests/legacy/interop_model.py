"""A TF1 model_fn and its data, shared by tf.estimator 2.15 and estimator_core's graph backend.

Imports only NumPy and TensorFlow, so the legacy virtual environment (TF 2.15 +
tensorflow-estimator) runs it too: ``make_model_fn(tf.estimator)`` there,
``make_model_fn(estimator_core)`` here: the import is all that differs.
"""

import numpy as np
import tensorflow as tf

FEATURES, CLASSES, ROWS = 8, 3, 600


def arrays():
    """Deterministic (NumPy's RandomState is stable across versions): x, y, x_eval, y_eval."""
    rng = np.random.RandomState(0)
    x = rng.rand(ROWS, FEATURES).astype(np.float32)
    weights = rng.randn(FEATURES, CLASSES).astype(np.float32)
    y = np.argmax(x @ weights + 0.1 * rng.randn(ROWS, CLASSES), axis=1).astype(np.int32)
    cut = ROWS * 4 // 5
    return x[:cut], y[:cut], x[cut:], y[cut:]


def train_input_fn():
    x, y, _, _ = arrays()
    dataset = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
    return dataset.repeat().batch(16)  # no shuffle: both sides see the same batches


def eval_input_fn():
    _, _, x, y = arrays()
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(40)


def make_model_fn(est):
    def model_fn(features, labels, mode, params):
        hidden = tf.compat.v1.layers.dense(features["x"], 16, activation=tf.nn.relu, name="hidden")
        logits = tf.compat.v1.layers.dense(hidden, CLASSES, name="logits")
        classes = tf.argmax(logits, axis=1, output_type=tf.int32)
        if mode == est.ModeKeys.PREDICT:
            return est.EstimatorSpec(mode, predictions={"classes": classes})
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)
        if mode == est.ModeKeys.EVAL:
            accuracy = tf.compat.v1.metrics.accuracy(labels=labels, predictions=classes)
            return est.EstimatorSpec(mode, loss=loss, eval_metric_ops={"accuracy": accuracy})
        optimizer = tf.compat.v1.train.AdamOptimizer(params["learning_rate"])
        train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
        return est.EstimatorSpec(mode, loss=loss, train_op=train_op)

    return model_fn


PARAMS = {"learning_rate": 0.01}
