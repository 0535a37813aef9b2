"""The benchmarked workload, written for estimator_core: the legacy anchor's model and input_fns.

Model: MLP 784-256-10, Adam(1e-3), sparse softmax cross-entropy, accuracy, twice: in
estimator_core's TF2 style (``model_fn``: Keras layers, optimizer and metric; the function
backend) and as the legacy anchor wrote it in TF1 idioms (``tf1_model_fn``:
``tf.compat.v1.layers``, ``AdamOptimizer.minimize``, ``tf.compat.v1.metrics``; the graph
backend). Inputs: the legacy TFRecords parsed one example at a time (the legacy input_fn,
unchanged), the same files batched first and parsed with ``parse_example``, and 8,192 rows held
in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import estimator_core as est
from bench.common import load_bench_common

bc = load_bench_common()

PARAMS = {"hidden": 256, "lr": 1e-3}
INMEMORY_ROWS = 8192
FEATURE_SPEC = {
    "x": tf.io.FixedLenFeature([bc.N_FEAT], tf.float32),
    "y": tf.io.FixedLenFeature([1], tf.int64),
}

InputFn = Callable[[], tf.data.Dataset]


def model_fn(features: dict[str, tf.Tensor], labels: tf.Tensor, mode: str, params: dict[str, Any]):
    """The legacy model_fn in estimator_core style (Keras layers, Keras optimizer and metric)."""
    hidden = keras.layers.Dense(params["hidden"], activation="relu", name="hidden")
    output = keras.layers.Dense(bc.N_CLASSES, name="logits")
    logits = output(hidden(features["x"]))
    classes = tf.argmax(logits, axis=1, output_type=tf.int32)
    predictions = {"classes": classes, "prob": tf.nn.softmax(logits)}
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
    return est.EstimatorSpec(mode, loss=loss, train_op=keras.optimizers.Adam(params["lr"]))


def tf1_model_fn(features, labels, mode, params):
    """The legacy anchor's model_fn, in its TF1 idioms (``tf.estimator`` -> ``est``)."""
    hidden = tf.compat.v1.layers.dense(
        features["x"], params["hidden"], activation=tf.nn.relu, name="hidden"
    )
    logits = tf.compat.v1.layers.dense(hidden, bc.N_CLASSES, name="logits")
    classes = tf.argmax(logits, axis=1, output_type=tf.int32)
    predictions = {"classes": classes, "prob": tf.nn.softmax(logits)}
    if mode == est.ModeKeys.PREDICT:
        return est.EstimatorSpec(
            mode,
            predictions=predictions,
            export_outputs={"serving_default": est.export.PredictOutput(predictions)},
        )
    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)
    if mode == est.ModeKeys.EVAL:
        accuracy = tf.compat.v1.metrics.accuracy(labels=labels, predictions=classes)
        return est.EstimatorSpec(mode, loss=loss, eval_metric_ops={"accuracy": accuracy})
    optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=params["lr"])
    train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return est.EstimatorSpec(mode, loss=loss, train_op=train_op)


BACKENDS = {"function": model_fn, "graph": tf1_model_fn}


def scenario_a_config() -> est.RunConfig:
    """Legacy scenario A's RunConfig: checkpoints every 500 steps, summaries and logs every 100."""
    return est.RunConfig(
        save_checkpoints_steps=500,
        save_summary_steps=100,
        keep_checkpoint_max=5,
        log_step_count_steps=100,
        tf_random_seed=42,
    )


def inmemory_config() -> est.RunConfig:
    """No periodic checkpoints, summaries or step logs: the framework-bound training setting."""
    return est.RunConfig(
        save_checkpoints_steps=None,
        save_checkpoints_secs=None,
        save_summary_steps=None,
        log_step_count_steps=None,
        tf_random_seed=42,
    )


def make_estimator(
    model_dir: str, config: est.RunConfig, backend: str = "function"
) -> est.Estimator:
    """The benchmark's model in ``backend``'s style (``BACKENDS``), run by that backend."""
    return est.Estimator(
        BACKENDS[backend],
        model_dir=model_dir,
        config=config.replace(backend=backend),
        params=PARAMS,
    )


# -- in-memory input ------------------------------------------------------------------------


def inmemory_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The first 8,192 training rows, as legacy_inmemory.py slices them (int32 labels)."""
    x, y, _, _, _ = bc._make_arrays()
    return x[:INMEMORY_ROWS], y[:INMEMORY_ROWS].astype(np.int32)


def inmemory_dataset(x: np.ndarray, y: np.ndarray, dict_features: bool = True) -> tf.data.Dataset:
    """Shuffled, repeated batches of the arrays (features ``{"x": x}`` unless ``dict_features``)."""
    features = {"x": x} if dict_features else x
    ds = tf.data.Dataset.from_tensor_slices((features, y))
    return ds.shuffle(bc.SHUFFLE_BUF).repeat().batch(bc.BATCH).prefetch(tf.data.AUTOTUNE)


def inmemory_input_fn(x: np.ndarray, y: np.ndarray) -> InputFn:
    return lambda: inmemory_dataset(x, y)


# -- TFRecord input, parsed one example at a time (the legacy input_fns) ---------------------


def _parse_single(record: tf.Tensor):
    ex = tf.io.parse_single_example(record, FEATURE_SPEC)
    return {"x": ex["x"]}, tf.cast(ex["y"][0], tf.int32)


def single_train_input_fn() -> tf.data.Dataset:
    ds = tf.data.TFRecordDataset(bc.train_files())
    ds = ds.map(_parse_single, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.shuffle(bc.SHUFFLE_BUF).repeat().batch(bc.BATCH)
    return ds.prefetch(tf.data.AUTOTUNE)


def single_eval_input_fn() -> tf.data.Dataset:
    ds = tf.data.TFRecordDataset(bc.eval_files())
    ds = ds.map(_parse_single, num_parallel_calls=tf.data.AUTOTUNE).batch(bc.BATCH)
    return ds.prefetch(tf.data.AUTOTUNE)


def single_predict_input_fn() -> tf.data.Dataset:
    ds = tf.data.TFRecordDataset(bc.eval_files())
    ds = ds.map(lambda r: _parse_single(r)[0], num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(bc.BATCH).prefetch(tf.data.AUTOTUNE)


# -- TFRecord input, batched first and parsed with parse_example ------------------------------


def _parse_batch(records: tf.Tensor):
    ex = tf.io.parse_example(records, FEATURE_SPEC)
    return {"x": ex["x"]}, tf.cast(ex["y"][:, 0], tf.int32)


def batched_train_input_fn() -> tf.data.Dataset:
    ds = tf.data.TFRecordDataset(bc.train_files()).shuffle(bc.SHUFFLE_BUF).repeat()
    ds = ds.batch(bc.BATCH).map(_parse_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def batched_eval_input_fn() -> tf.data.Dataset:
    ds = tf.data.TFRecordDataset(bc.eval_files()).batch(bc.BATCH)
    ds = ds.map(_parse_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


INPUT_VARIANTS: dict[str, tuple[InputFn, InputFn]] = {
    "single_parse": (single_train_input_fn, single_eval_input_fn),
    "batch_parse": (batched_train_input_fn, batched_eval_input_fn),
}


def serving_input_receiver_fn():
    """Serving signature input: serialized tf.Examples (``examples``), parsed to ``{"x"}``."""
    return est.export.build_parsing_serving_input_receiver_fn({"x": FEATURE_SPEC["x"]})()
