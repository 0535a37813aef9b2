"""Scenario E: rounds with two named evaluations, ``train_and_evaluate`` against Keras ``fit``.

Both train the same MLP on the batch-then-parse TFRecord input for ``rounds`` x
``train_steps`` steps and, after each round, evaluate ``eval_steps`` batches of two sets: the
eval files ("eval") and the train files ("train_sample"). estimator_core:
``est.train_and_evaluate`` with two EvalSpecs (``every_n_steps`` = one round), which also saves a
checkpoint per round and records every result. Keras: ``Model.fit(steps_per_epoch, epochs,
validation_data, validation_steps)`` plus a callback evaluating the second set each epoch.
Per-round overhead = round wall - (train_steps x train step time + 2 x eval_steps x eval step
time), with the step times from scenario A's batch-parse run.
"""

from __future__ import annotations

import time
from typing import Any

import keras
import tensorflow as tf

import estimator_core as est
from bench import workload as wl
from bench.plan import Plan


def _train_sample_input_fn() -> tf.data.Dataset:
    """The train files read like an evaluation set (no shuffle, no repeat)."""
    ds = tf.data.TFRecordDataset(wl.bc.train_files()).batch(wl.bc.BATCH)
    return ds.map(wl._parse_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def estimator_core_rounds(model_dir: str, plan: Plan) -> dict[str, Any]:
    config = wl.inmemory_config().replace(save_summary_steps=100, log_step_count_steps=100)
    estimator = wl.make_estimator(model_dir, config)
    every = plan.train_steps
    specs = [
        est.EvalSpec(
            wl.batched_eval_input_fn, steps=plan.eval_steps, name="eval", every_n_steps=every
        ),
        est.EvalSpec(
            _train_sample_input_fn, steps=plan.eval_steps, name="train_sample", every_n_steps=every
        ),
    ]
    start = time.perf_counter()
    metrics, _ = est.train_and_evaluate(
        estimator, est.TrainSpec(wl.batched_train_input_fn, max_steps=plan.rounds * every), specs
    )
    total = time.perf_counter() - start
    return {
        "total_s": total,
        "round_s": total / plan.rounds,
        "eval_accuracy": float(metrics["eval"]["accuracy"]),
    }


class _EvaluateSecondSet(keras.callbacks.Callback):
    def __init__(self, dataset: tf.data.Dataset, steps: int) -> None:
        super().__init__()
        self._dataset = dataset
        self._steps = steps

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.evaluate(self._dataset, steps=self._steps, verbose=0)


def keras_fit_rounds(plan: Plan) -> dict[str, Any]:
    def as_tuples(dataset: tf.data.Dataset) -> tf.data.Dataset:
        return dataset.map(lambda features, labels: (features["x"], labels))

    keras.utils.set_random_seed(42)
    model = keras.Sequential(
        [
            keras.Input((wl.bc.N_FEAT,)),
            keras.layers.Dense(wl.PARAMS["hidden"], activation="relu"),
            keras.layers.Dense(wl.bc.N_CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(wl.PARAMS["lr"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        as_tuples(wl.batched_train_input_fn()),
        steps_per_epoch=plan.train_steps,
        epochs=plan.rounds,
        validation_data=as_tuples(wl.batched_eval_input_fn()),
        validation_steps=plan.eval_steps,
        callbacks=[_EvaluateSecondSet(as_tuples(_train_sample_input_fn()), plan.eval_steps)],
        shuffle=False,
        verbose=0,
    )
    total = time.perf_counter() - start
    return {
        "total_s": total,
        "round_s": total / plan.rounds,
        "eval_accuracy": float(history.history["val_accuracy"][-1]),
    }


def measure(model_dir: str, plan: Plan, step_times: dict[str, float]) -> dict[str, Any]:
    """Both runs, and their per-round overhead over the pure step time."""
    pure = plan.train_steps * step_times["train_s"] + 2 * plan.eval_steps * step_times["eval_s"]
    out = {
        "keras_fit": keras_fit_rounds(plan),
        "estimator_core": estimator_core_rounds(model_dir, plan),
    }
    for run in out.values():
        run["per_round_overhead_s"] = run["round_s"] - pure
    out["pure_round_s"] = pure
    return out
