"""``tf.estimator.add_metrics``: an Estimator with more evaluation metrics."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from estimator_core.estimator import Estimator
from estimator_core.mode_keys import ModeKeys
from estimator_core.model_fn import ModelFn
from estimator_core.spec import EstimatorSpec

_METRIC_FN_ARGS = ("predictions", "features", "labels", "config")


def add_metrics(estimator: Estimator, metric_fn: Callable[..., dict[str, Any]]) -> Estimator:
    """A new Estimator (same model_fn, params, model_dir, config and warm start) whose EVAL
    specs also carry ``metric_fn``'s metrics.

    ``metric_fn`` declares any of the arguments ``predictions`` (the spec's), ``features``,
    ``labels`` and ``config`` and returns a dict of metric name to metric (what
    ``eval_metric_ops`` takes: a Keras metric updated on this batch, e.g. from
    ``est.metrics``); its names win over the estimator's own. ``ValueError`` for other
    arguments.
    """
    args = set(inspect.signature(metric_fn).parameters)
    unexpected = sorted(args - set(_METRIC_FN_ARGS))
    if unexpected:
        raise ValueError(f"metric_fn ({metric_fn}) has following not expected args: {unexpected}")

    def model_fn(features: Any, labels: Any, mode: str, config: Any) -> EstimatorSpec:
        spec = ModelFn(estimator.model_fn, estimator.params, config)(features, labels, mode)
        if mode != ModeKeys.EVAL:
            return spec
        available = {
            "predictions": spec.predictions,
            "features": features,
            "labels": labels,
            "config": config,
        }
        metrics = metric_fn(**{name: value for name, value in available.items() if name in args})
        # Built anew (not _replace) so the merged metrics are validated as model_fn's are.
        merged = {**(spec.eval_metric_ops or {}), **metrics}
        return EstimatorSpec(**{**spec._asdict(), "eval_metric_ops": merged})

    return Estimator(
        model_fn,
        model_dir=estimator.model_dir,
        config=estimator.config,
        warm_start_from=estimator.warm_start_from,
    )
