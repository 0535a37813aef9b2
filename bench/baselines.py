"""Plain TF 2.21 / Keras 3 references on the same in-memory data and model as estimator_core.

- a hand-written ``tf.function`` train step, called once per step from Python;
- the same step run ``loop_steps`` times inside one ``tf.function`` call (what estimator_core's
  ``iterations_per_loop`` does, without the Estimator around it);
- Keras ``Model.fit`` (default ``steps_per_execution=1``).

Steady steps/s everywhere = timed steps / (wall - fixed cost of a 1-step call), median of repeats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from bench import workload as wl
from bench.common import median, steady_rate, timed
from bench.plan import Plan

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


def _measure(run_steps: Callable[[int], None], plan: Plan) -> dict[str, Any]:
    """Warm up, then per repeat time a 1-step run and a ``plan.inmemory_steps`` run."""
    run_steps(plan.inmemory_warmup)
    samples = []
    for _ in range(plan.repeats):
        _, fixed = timed(lambda: run_steps(1))
        _, wall = timed(lambda: run_steps(plan.inmemory_steps))
        rate = steady_rate(plan.inmemory_steps, wall, fixed)
        samples.append({"fixed_s": fixed, "wall_s": wall, "steady_steps_per_s": rate})
    return {
        "steps": plan.inmemory_steps,
        "call_fixed_cost_s": median([s["fixed_s"] for s in samples]),
        "steady_steps_per_s": median([s["steady_steps_per_s"] for s in samples]),
        "samples": samples,
    }


def tf_function_per_step(plan: Plan) -> dict[str, Any]:
    """A Python loop calling a compiled one-step ``tf.function`` (reads the loss once at the end)."""
    x, y = wl.inmemory_arrays()
    iterator = iter(wl.inmemory_dataset(x, y))
    step = tf.function(_step_fn())

    def run_steps(n: int) -> None:
        loss = None
        for _ in range(n):
            loss = step(iterator)
        float(loss)

    return _measure(run_steps, plan)


def tf_function_multi_step(plan: Plan, loop_steps: int = 100) -> dict[str, Any]:
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

    return {"steps_per_call": loop_steps, **_measure(run_steps, plan)}


def keras_fit(plan: Plan) -> dict[str, Any]:
    """``Model.fit(steps_per_epoch=N, epochs=1)`` after a warmup epoch of the same length."""
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
        model.fit(dataset, steps_per_epoch=n, epochs=1, verbose=0)

    warm = dataclasses.replace(plan, inmemory_warmup=plan.inmemory_steps)
    return {"steps_per_execution": 1, **_measure(run_steps, warm)}
