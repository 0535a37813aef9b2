"""estimator_core on the legacy anchor's workload: in-memory training, scenario A, predict, export.

Every figure is wall-clock time around public Estimator calls, as a user would see it.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from bench import workload as wl
from bench.common import median, progress, timed
from bench.plan import Plan

bc = wl.bc


def inmemory_runner(
    model_dir: str, jit_compile: bool = False, backend: str = "function"
) -> Callable[[int], None]:
    """``n -> estimator.train(steps=n)`` on 8,192 in-memory rows, no periodic checkpoints,
    summaries or step logs, default ``iterations_per_loop`` (100), and optionally XLA-compiled
    steps; ``backend="graph"``: the TF1 model_fn in the graph backend. Each call also checks
    for a newer checkpoint and saves one at its end (the 1-step fixed cost).
    """
    x, y = wl.inmemory_arrays()
    input_fn = wl.inmemory_input_fn(x, y)
    config = wl.inmemory_config().replace(jit_compile=jit_compile)
    estimator = wl.make_estimator(model_dir, config, backend)

    def run_steps(n: int) -> None:
        estimator.train(input_fn, steps=n)

    return run_steps


def _train_eval_rounds(estimator, train_fn, eval_fn, plan: Plan) -> dict[str, Any]:
    """``plan.rounds`` x (train(steps=S) + evaluate(steps=E)): wall time of each call."""
    rounds = []
    for _ in range(plan.rounds):
        _, train_s = timed(lambda: estimator.train(train_fn, steps=plan.train_steps))
        metrics, eval_s = timed(lambda: estimator.evaluate(eval_fn, steps=plan.eval_steps))
        rounds.append(
            {"train_s": train_s, "eval_s": eval_s, "eval_acc": float(metrics["accuracy"])}
        )
    return {"rounds": rounds, "total_s": sum(r["train_s"] + r["eval_s"] for r in rounds)}


def _fixed_costs(estimator, train_fn, eval_fn, plan: Plan) -> dict[str, float]:
    """Median wall time of train(steps=1) and evaluate(steps=1) calls on a trained model_dir."""
    train = [timed(lambda: estimator.train(train_fn, steps=1))[1] for _ in range(plan.probes)]
    evals = [timed(lambda: estimator.evaluate(eval_fn, steps=1))[1] for _ in range(plan.probes)]
    return {"train_fixed_cost_s": median(train), "eval_fixed_cost_s": median(evals)}


def _per_step_costs(estimator, train_fn, eval_fn, plan: Plan, fixed: dict) -> dict[str, Any]:
    """Per-step train and eval time: (long call - steps=1 call) / (steps - 1).

    Train: one ``train(steps=long_steps)`` call (periodic checkpoints and logs included, as in
    the rounds). Eval: one full evaluation of the 10,000 eval rows (79 batches).
    """
    _, long_s = timed(lambda: estimator.train(train_fn, steps=plan.long_steps))
    full, full_s = timed(lambda: estimator.evaluate(eval_fn, name="full"))
    eval_batches = math.ceil(bc.N_EVAL / bc.BATCH)
    return {
        "long_train_call_s": long_s,
        "train_step_s": (long_s - fixed["train_fixed_cost_s"]) / (plan.long_steps - 1),
        "eval_step_s": (full_s - fixed["eval_fixed_cost_s"]) / (eval_batches - 1),
        "full_eval_10000": {
            "accuracy": float(full["accuracy"]),
            "loss": float(full["loss"]),
            "global_step": int(full["global_step"]),
            "wall_s": full_s,
        },
    }


def scenario_a(
    model_dir: str, variant: str, plan: Plan, backend: str = "function"
) -> tuple[dict[str, Any], Any]:
    """Legacy scenario A with one input variant; returns (results, the trained Estimator).

    Round switch = fixed cost of a train() plus an evaluate() call (steps=1 probes). Overhead per
    round (rounds 2..R) = round wall - S x per-step train time - E x per-step eval time.
    ``backend="graph"``: the legacy TF1 model_fn in the graph backend.
    """
    train_fn, eval_fn = wl.INPUT_VARIANTS[variant]
    estimator = wl.make_estimator(model_dir, wl.scenario_a_config(), backend)
    loop = _train_eval_rounds(estimator, train_fn, eval_fn, plan)
    fixed = _fixed_costs(estimator, train_fn, eval_fn, plan)
    per_step = _per_step_costs(estimator, train_fn, eval_fn, plan, fixed)
    rounds = loop["rounds"]
    round_s = [r["train_s"] + r["eval_s"] for r in rounds]
    step_cost = (
        plan.train_steps * per_step["train_step_s"] + plan.eval_steps * per_step["eval_step_s"]
    )
    switch = fixed["train_fixed_cost_s"] + fixed["eval_fixed_cost_s"]
    return {
        "input": variant,
        "R": plan.rounds,
        "S": plan.train_steps,
        "E": plan.eval_steps,
        "total_s": loop["total_s"],
        "first_round_s": round_s[0],
        "median_round_s": median(round_s[1:] or round_s),
        "median_train_call_s": median([r["train_s"] for r in rounds[1:]]),
        "median_eval_call_s": median([r["eval_s"] for r in rounds]),
        **fixed,
        "round_switch_s": switch,
        "round_switch_fraction_of_round": switch / median(round_s[1:] or round_s),
        **per_step,
        "per_round_overhead_s": median([s - step_cost for s in round_s[1:]]),
        "final_eval_acc": float(rounds[-1]["eval_acc"]),
        "rounds": rounds,
    }, estimator


def round_switch_unseeded(model_dir: str, variant: str, plan: Plan) -> dict[str, Any]:
    """Scenario A's round switch with ``tf_random_seed=None`` (diagnostic; not in legacy).

    With a seed, every train/evaluate/predict call runs ``tf.random.set_seed``, which in eager
    TF clears the runtime's caches (``TFE_ContextClearCaches``), so each call's first compiled
    loop is instantiated again. After one warm round, times the steps=1 probes without a seed.
    """
    train_fn, eval_fn = wl.INPUT_VARIANTS[variant]
    config = wl.scenario_a_config().replace(tf_random_seed=None)
    estimator = wl.make_estimator(model_dir, config)
    estimator.train(train_fn, steps=plan.train_steps)
    estimator.evaluate(eval_fn, steps=plan.eval_steps)
    fixed = _fixed_costs(estimator, train_fn, eval_fn, plan)
    return {**fixed, "round_switch_s": fixed["train_fixed_cost_s"] + fixed["eval_fixed_cost_s"]}


class _GcTimer:
    """Seconds the Python garbage collector ran while active: a full collection in a process
    holding ~500k objects (this benchmark's earlier models and traces) takes ~0.3 s, which
    lands on whichever call triggers it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began

    def __enter__(self) -> _GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _predict_once(estimator, single: bool) -> dict[str, Any]:
    """One predict() call over the 10,000 eval rows; examples/s including its first batch."""
    gen = estimator.predict(wl.single_predict_input_fn, yield_single_examples=single)
    with _GcTimer() as collector:
        start = time.perf_counter()
        first = next(gen)
        first_s = time.perf_counter() - start
        items = [first, *gen]
        wall = time.perf_counter() - start
    if single:
        classes = np.array([p["classes"] for p in items])
    else:
        classes = np.concatenate([p["classes"] for p in items])
    return {
        "n": len(classes),
        "s": wall,
        "examples_per_s": len(classes) / wall,
        "time_to_first_s": first_s,
        "python_gc_s": collector.seconds,
        "classes": classes,
    }


def predict_input_only() -> dict[str, Any]:
    """Examples/s of the predict input_fn alone, iterated eagerly: a bound on predict()."""
    _, wall = timed(lambda: sum(1 for _ in wl.single_predict_input_fn()))
    return {"n": bc.N_EVAL, "s": wall, "examples_per_s": bc.N_EVAL / wall}


def _checked(result: dict[str, Any], eval_labels: np.ndarray) -> dict[str, Any]:
    """Replace the predicted classes with their accuracy against the eval labels."""
    classes = result.pop("classes")
    result["accuracy_vs_labels"] = float(np.mean(classes == eval_labels[: len(classes)]))
    return result


def predict_and_export(estimator, export_base: str, eval_labels: np.ndarray) -> dict[str, Any]:
    """Predict (single examples: first call, then the median of 3 more; batches) and export.

    The first single-example call is the one compared with legacy (which builds its graph on
    every call). Export: ``export_saved_model`` with a parsing serving receiver; the SavedModel is
    then reloaded and serves the 10,000 serialized eval examples in batches of 128.
    """
    out: dict[str, Any] = {"input_fn_alone": predict_input_only()}
    out["predict_single"] = _checked(_predict_once(estimator, True), eval_labels)
    warm = [_checked(_predict_once(estimator, True), eval_labels) for _ in range(3)]
    out["predict_single_warm"] = {
        "calls": warm,
        "examples_per_s": median([w["examples_per_s"] for w in warm]),
    }
    out["predict_batched"] = _checked(_predict_once(estimator, False), eval_labels)
    progress("estimator_core: export_saved_model")
    path, out["export_saved_model_s"] = timed(
        lambda: estimator.export_saved_model(export_base, wl.serving_input_receiver_fn)
    )
    out["export_bytes"] = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
    )
    out["savedmodel_serve"] = serve_saved_model(path, eval_labels)
    return out


def serve_saved_model(path: str, eval_labels: np.ndarray) -> dict[str, Any]:
    """Reload the SavedModel and run serving_default over the serialized eval examples."""
    fn, load_s = timed(lambda: tf.saved_model.load(path).signatures["serving_default"])
    batches = list(tf.data.TFRecordDataset(bc.eval_files()).batch(bc.BATCH).as_numpy_iterator())
    fn(examples=tf.constant(batches[0]))
    outputs, wall = timed(lambda: [fn(examples=tf.constant(b))["classes"] for b in batches])
    classes = np.concatenate([o.numpy() for o in outputs])
    return {
        "load_s": load_s,
        "n": len(classes),
        "examples_per_s": len(classes) / wall,
        "accuracy_vs_labels": float(np.mean(classes == eval_labels[: len(classes)])),
    }
