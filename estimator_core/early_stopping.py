"""Early stopping hooks, as ``tf.estimator.experimental``'s: they read recorded eval results.

Every evaluation records its results in its eval dir (:mod:`estimator_core.eval_history`:
``eval_history.json``, or the event files of a tf.estimator eval dir); these hooks check
them during training (every ``run_every_steps`` global steps, or ``run_every_secs`` seconds)
and request a stop when their condition holds. In ``train_and_evaluate`` a stop ends the run
(after the final evaluation).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from estimator_core.eval_history import read_eval_metrics
from estimator_core.hooks import (
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
    _PeriodicHook,
)


class _StopOnPredicateHook(_PeriodicHook):
    def __init__(
        self,
        should_stop_fn: Callable[[], bool],
        run_every_secs: float | None = 60,
        run_every_steps: int | None = None,
    ) -> None:
        if not callable(should_stop_fn):
            raise TypeError("should_stop_fn must be callable")
        if run_every_steps is not None:
            run_every_secs = None
        super().__init__(run_every_steps, run_every_secs)
        self._should_stop = should_stop_fn

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        if self._due(int(run_values.results)) is not None and self._should_stop():
            run_context.request_stop()


def make_early_stopping_hook(
    estimator: Any,
    should_stop_fn: Callable[[], bool],
    run_every_secs: float | None = 60,
    run_every_steps: int | None = None,
) -> SessionRunHook:
    """A hook that stops training when ``should_stop_fn()`` returns True (checked periodically)."""
    del estimator  # kept for tf.estimator's signature
    return _StopOnPredicateHook(should_stop_fn, run_every_secs, run_every_steps)


def _threshold_hook(compare, estimator, metric_name, threshold, eval_dir, min_steps, secs, steps):
    eval_dir = eval_dir or estimator.eval_dir()

    def should_stop() -> bool:
        for step, metrics in read_eval_metrics(eval_dir).items():
            if step >= min_steps and compare(_metric(metrics, metric_name, eval_dir), threshold):
                return True
        return False

    return _StopOnPredicateHook(should_stop, secs, steps)


def _no_improvement_hook(
    better, estimator, metric_name, patience, eval_dir, min_steps, secs, steps
):
    eval_dir = eval_dir or estimator.eval_dir()

    def should_stop() -> bool:
        best_value = best_step = None
        for step, metrics in read_eval_metrics(eval_dir).items():
            if step < min_steps:
                continue
            value = _metric(metrics, metric_name, eval_dir)
            if best_value is None or better(value, best_value):
                best_value, best_step = value, step
            if step - best_step >= patience:
                return True
        return False

    return _StopOnPredicateHook(should_stop, secs, steps)


def stop_if_higher_hook(
    estimator: Any,
    metric_name: str,
    threshold: float,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = 60,
    run_every_steps: int | None = None,
) -> SessionRunHook:
    """Stop once an evaluation at step >= ``min_steps`` has ``metric_name`` > ``threshold``."""
    return _threshold_hook(
        operator.gt,
        estimator,
        metric_name,
        threshold,
        eval_dir,
        min_steps,
        run_every_secs,
        run_every_steps,
    )


def stop_if_lower_hook(
    estimator: Any,
    metric_name: str,
    threshold: float,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = 60,
    run_every_steps: int | None = None,
) -> SessionRunHook:
    """Stop once an evaluation at step >= ``min_steps`` has ``metric_name`` < ``threshold``."""
    return _threshold_hook(
        operator.lt,
        estimator,
        metric_name,
        threshold,
        eval_dir,
        min_steps,
        run_every_secs,
        run_every_steps,
    )


def stop_if_no_increase_hook(
    estimator: Any,
    metric_name: str,
    max_steps_without_increase: int,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = 60,
    run_every_steps: int | None = None,
) -> SessionRunHook:
    """Stop when ``metric_name`` has not increased for ``max_steps_without_increase`` steps."""
    return _no_improvement_hook(
        operator.gt,
        estimator,
        metric_name,
        max_steps_without_increase,
        eval_dir,
        min_steps,
        run_every_secs,
        run_every_steps,
    )


def stop_if_no_decrease_hook(
    estimator: Any,
    metric_name: str,
    max_steps_without_decrease: int,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = 60,
    run_every_steps: int | None = None,
) -> SessionRunHook:
    """Stop when ``metric_name`` has not decreased for ``max_steps_without_decrease`` steps."""
    return _no_improvement_hook(
        operator.lt,
        estimator,
        metric_name,
        max_steps_without_decrease,
        eval_dir,
        min_steps,
        run_every_secs,
        run_every_steps,
    )


def _metric(metrics: dict[str, Any], name: str, eval_dir: str) -> Any:
    if name not in metrics:
        raise ValueError(
            f"early stopping: metric {name!r} not in the results of {eval_dir}: {sorted(metrics)}"
        )
    return metrics[name]
