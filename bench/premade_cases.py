"""The premade-estimator benchmark's workload, run unchanged by both sides.

Imported by ``bench/premade_bench.py`` (estimator_core, TF 2.21) and executed inside the legacy
venv by ``bench/premade_legacy.py`` (tf.estimator 2.15, which has no scikit-learn and no
estimator_core): it needs only NumPy here and receives TensorFlow, the estimator library
(``tf.estimator`` or ``est``) and an optimizer factory from its caller. The same code builds,
trains, times and evaluates each case on both sides.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

BATCH = 32
SHUFFLE = 1000


@dataclasses.dataclass(frozen=True)
class Case:
    """One estimator on one data set. ``optimizer``: None (the estimator's default, a name
    with its default rate) or ``(Keras class name, learning rate)``, built by each side's own
    Keras (tf.estimator 2.15 needs ``tf.keras.optimizers.legacy``)."""

    name: str
    estimator: str
    data: str  # iris | digits | diabetes
    kwargs: dict[str, Any]
    optimizer: tuple[str, float] | None = None
    optimizer_arg: str = "optimizer"

    @property
    def regression(self) -> bool:
        return "Regressor" in self.estimator


CASES = [
    # The defaults as users get them: tf.estimator 2.x names Adagrad at Keras' 0.001.
    Case("dnn_iris_default", "DNNClassifier", "iris", {"hidden_units": [10, 10], "n_classes": 3}),
    Case(
        "dnn_iris_adagrad_0.05",
        "DNNClassifier",
        "iris",
        {"hidden_units": [10, 10], "n_classes": 3},
        ("Adagrad", 0.05),
    ),
    Case("linear_iris_default", "LinearClassifier", "iris", {"n_classes": 3}),
    Case(
        "wide_deep_iris_default",
        "DNNLinearCombinedClassifier",
        "iris",
        {"dnn_hidden_units": [10], "n_classes": 3, "columns": "both"},
    ),
    Case("baseline_iris_default", "BaselineClassifier", "iris", {"n_classes": 3}),
    Case(
        "dnn_digits_adam",
        "DNNClassifier",
        "digits",
        {"hidden_units": [64], "n_classes": 10},
        ("Adam", 0.001),
    ),
    Case(
        "dnn_diabetes_adam",
        "DNNRegressor",
        "diabetes",
        {"hidden_units": [32]},
        ("Adam", 0.01),
    ),
    Case("linear_diabetes_default", "LinearRegressor", "diabetes", {}),
]
CASES_BY_NAME = {case.name: case for case in CASES}


def split(arrays: dict[str, np.ndarray], data: str) -> tuple[dict, dict]:
    """(train, eval) arrays of data set ``data`` (a fixed 80/20 shuffle), x float32."""
    x = arrays[f"{data}_x"].astype(np.float32)
    y = arrays[f"{data}_y"]
    y = y.astype(np.float32) / 100.0 if data == "diabetes" else y.astype(np.int64)
    order = np.random.RandomState(0).permutation(len(y))
    cut = int(len(y) * 0.8)
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def run_case(
    tf: Any,
    lib: Any,
    optimizer_factory: Callable[[str, float], Callable[[], Any]],
    case: Case,
    seed: int,
    arrays: dict[str, np.ndarray],
    steps: int,
    model_dir: str,
) -> dict[str, Any]:
    """Train ``case`` for ``steps + 2`` steps and evaluate it; returns its metrics and speed.

    Speed as in bench/README.md: after a warm-up ``train(steps=1)``, steady steps/s =
    ``steps / (wall(train(steps)) - wall(train(steps=1)))``, taking out the per-call fixed cost
    (tf.estimator rebuilds its graph on every call).
    """
    (train_x, train_y), (eval_x, eval_y) = split(arrays, case.data)
    width = train_x.shape[1]
    column = tf.feature_column.numeric_column("x", shape=(width,))
    kwargs = dict(case.kwargs)
    columns = kwargs.pop("columns", "feature")
    if columns == "both":
        kwargs["linear_feature_columns"] = [column]
        kwargs["dnn_feature_columns"] = [column]
    elif not case.estimator.startswith("Baseline"):
        kwargs["feature_columns"] = [column]
    if case.optimizer is not None:
        kwargs[case.optimizer_arg] = optimizer_factory(*case.optimizer)
    config = lib.RunConfig(tf_random_seed=seed)
    estimator = getattr(lib, case.estimator)(model_dir=model_dir, config=config, **kwargs)

    def train_input_fn():
        dataset = tf.data.Dataset.from_tensor_slices(({"x": train_x}, train_y))
        return dataset.shuffle(SHUFFLE, seed=seed).repeat().batch(BATCH)

    def eval_input_fn():
        return tf.data.Dataset.from_tensor_slices(({"x": eval_x}, eval_y)).batch(BATCH)

    start = time.perf_counter()
    estimator.train(train_input_fn, steps=1)
    first_call_s = time.perf_counter() - start
    start = time.perf_counter()
    estimator.train(train_input_fn, steps=1)
    fixed_s = time.perf_counter() - start
    start = time.perf_counter()
    estimator.train(train_input_fn, steps=steps)
    wall_s = time.perf_counter() - start
    metrics = estimator.evaluate(eval_input_fn)
    keys = ("average_loss", "loss") if case.regression else ("accuracy", "average_loss", "loss")
    busy = wall_s - fixed_s
    return {
        "case": case.name,
        "seed": seed,
        "steps": steps + 2,
        "metrics": {k: float(metrics[k]) for k in keys},
        "first_call_s": round(first_call_s, 4),
        "fixed_s": round(fixed_s, 4),
        "wall_s": round(wall_s, 4),
        "steady_steps_per_s": round(steps / busy, 1) if busy > 0 else None,
    }
