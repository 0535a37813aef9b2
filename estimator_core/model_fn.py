"""Calling a user's model_fn and input_fn with the arguments they declare."""

from __future__ import annotations

import contextlib
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
        with self._device_scope():
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

    def _device_scope(self) -> Any:
        """``RunConfig.device_fn`` over the ops model_fn creates, as tf.estimator applied it:
        in graphs (not eagerly) and without a distribution strategy (which places ops itself)."""
        device_fn = getattr(self._config, "device_fn", None)
        strategy = getattr(self._config, "train_distribute", None)
        if device_fn is None or tf.executing_eagerly() or strategy is not None:
            return contextlib.nullcontext()
        return tf.compat.v1.device(device_fn)


def call_input_fn(
    input_fn: Callable[..., Any],
    mode: str,
    params: dict,
    config: Any,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Call input_fn with the arguments it declares (``mode``, ``params``, ``config``,
    ``input_context``: None without a distribution strategy)."""
    if not callable(input_fn):
        raise TypeError(f"input_fn must be callable, got {type(input_fn).__name__}")
    args = declared_args(input_fn)
    available = {"mode": mode, "params": params, "config": config, "input_context": input_context}
    kwargs = {name: value for name, value in available.items() if "*" in args or name in args}
    dataset = input_fn(**kwargs)
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "input_fn must return a tf.data.Dataset of (features, labels) or of features, got "
            f"{type(dataset).__name__}; TF1's dataset.make_one_shot_iterator().get_next() is "
            "replaced by returning the dataset itself"
        )
    return dataset


def split_element(element: Any) -> tuple[Any, Any]:
    """A dataset element → (features, labels); labels are None when the element has none."""
    if isinstance(element, tuple) and len(element) == 2:
        return element
    return element, None
