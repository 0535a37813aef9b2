"""Plain TF 2.21 / Keras 3 references on the same in-memory data and model as estimator_core.

- a hand-written ``tf.function`` train step, called once per step from Python;
- the same step run ``loop_steps`` times inside one ``tf.function`` call (what estimator_core's
  ``iterations_per_loop`` does, without the Estimator around it);
- Keras ``Model.fit`` (default ``steps_per_execution=1``).

Each is a runner ``n -> None`` that trains n more steps; ``bench.inmemory`` measures them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from bench import workload as wl

bc = wl.bc


def _mlp() -> tuple[list[keras.layers.Layer], keras.optimizers.Optimizer, list[tf.Variable]]:
    """Built Dense(256, relu) and Dense(10) layers, an Adam(1e-3) with its slots, the variables."""
    keras.utils.set_random_seed(42)
    hidden = keras.layers.Dense(wl.PARAMS["hidden"], activation="relu")
    output = keras.layers.Dense(bc.N_CLASSES)
    hidden.build((None, bc.N_FEAT))
    output.build((None, wl.PARAMS["hidden"]))
    variables = hidden.trainable_variables + output.trainable_variables
    optimizer = keras.optimizers.Adam(wl.PARAMS["lr"])
    optimizer.build(variables)
    return [hidden, output], optimizer, variables


def _step_fn() -> Callable[[Any], tf.Tensor]:
    """One training step on the next batch of an iterator (not compiled)."""
    (hidden, output), optimizer, variables = _mlp()

    def step(iterator):
        features, labels = next(iterator)
        with tf.GradientTape() as tape:
            logits = output(hidden(features["x"]))
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def tf_function_per_step_runner() -> Callable[[int], None]:
    """A Python loop calling a compiled one-step ``tf.function``; reads the loss once at the end."""
    x, y = wl.inmemory_arrays()
    iterator = iter(wl.inmemory_dataset(x, y))
    step = tf.function(_step_fn())

    def run_steps(n: int) -> None:
        loss = None
        for _ in range(n):
            loss = step(iterator)
        float(loss)

    return run_steps


def tf_function_multi_step_runner(loop_steps: int) -> Callable[[int], None]:
    """A compiled ``tf.range`` loop of up to ``loop_steps`` steps per ``tf.function`` call."""
    x, y = wl.inmemory_arrays()
    iterator = iter(wl.inmemory_dataset(x, y))
    step = _step_fn()

    @tf.function
    def loop(n):
        loss = step(iterator)
        for _ in tf.range(n - 1):
            loss = step(iterator)
        return loss

    def run_steps(n: int) -> None:
        while n > 0:
            chunk = min(n, loop_steps)
            loss = loop(tf.constant(chunk))
            n -= chunk
        float(loss)

    return run_steps


def keras_fit_runner() -> Callable[[int], None]:
    """``Model.fit(steps_per_epoch=n, epochs=1)`` on the same model and data."""
    x, y = wl.inmemory_arrays()
    dataset = wl.inmemory_dataset(x, y, dict_features=False)
    keras.utils.set_random_seed(42)
    model = keras.Sequential(
        [
            keras.Input((bc.N_FEAT,)),
            keras.layers.Dense(wl.PARAMS["hidden"], activation="relu"),
            keras.layers.Dense(bc.N_CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(wl.PARAMS["lr"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def run_steps(n: int) -> None:
        model.fit(dataset, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False)

    return run_steps
