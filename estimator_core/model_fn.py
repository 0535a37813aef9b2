"""Calling a user's model_fn and input_fn with the arguments they declare."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from estimator_core.spec import EstimatorSpec

_MODEL_FN_ARGS = ("features", "labels", "mode", "params", "config")


def declared_args(fn: Callable[..., Any]) -> set[str]:
    """Names of the parameters ``fn`` accepts (all of them if it takes ``**kwargs``)."""
    parameters = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return {"*"}
    return {p.name for p in parameters}


class ModelFn:
    """A model_fn bound to the Estimator's params and config.

    model_fn receives only the arguments it declares among ``features``, ``labels``, ``mode``,
    ``params`` and ``config`` (``features`` is required, as in tf.estimator).
    """

    def __init__(self, model_fn: Callable[..., EstimatorSpec], params: dict, config: Any) -> None:
        if not callable(model_fn):
            raise TypeError(f"model_fn must be callable, got {type(model_fn).__name__}")
        args = declared_args(model_fn)
        if "*" not in args and "features" not in args:
            raise ValueError(
                f"model_fn {getattr(model_fn, '__name__', model_fn)!r} must accept a 'features' "
                f"argument; it declares {sorted(args)}"
            )
        if params and "*" not in args and "params" not in args:
            raise ValueError(
                "Estimator got params but model_fn does not accept a 'params' argument"
            )
        self._fn = model_fn
        self._args = args
        self._params = params
        self._config = config

    def __call__(self, features: Any, labels: Any, mode: str) -> EstimatorSpec:
        available = {
            "features": features,
            "labels": labels,
            "mode": mode,
            "params": self._params,
            "config": self._config,
        }
        kwargs = {
            name: value
            for name, value in available.items()
            if "*" in self._args or name in self._args
        }
        spec = self._fn(**kwargs)
        if not isinstance(spec, EstimatorSpec):
            raise TypeError(
                f"model_fn must return an estimator_core.EstimatorSpec, got {type(spec).__name__}"
            )
        if spec.mode != mode:
            raise ValueError(
                f"model_fn was called with mode {mode!r} but returned a spec for {spec.mode!r}"
            )
        return spec


def input_fn_call(
    input_fn: Callable[..., Any],
    mode: str,
    params: dict,
    config: Any,
    input_context: tf.distribute.InputContext | None = None,
) -> Callable[[], Any]:
    """``input_fn`` bound to the arguments it declares (``mode``, ``params``, ``config``,
    ``input_context``: None without a distribution strategy): the backend calls it, where
    its input must be built (the graph backend: in its graph), and checks what it returns."""
    if not callable(input_fn):
        raise TypeError(f"input_fn must be callable, got {type(input_fn).__name__}")
    args = declared_args(input_fn)
    available = {"mode": mode, "params": params, "config": config, "input_context": input_context}
    kwargs = {name: value for name, value in available.items() if "*" in args or name in args}
    return functools.partial(input_fn, **kwargs)


def split_element(element: Any) -> tuple[Any, Any]:
    """A dataset element → (features, labels); labels are None when the element has none."""
    if isinstance(element, tuple) and len(element) == 2:
        return element
    return element, None
