"""Calling a user's model_fn and input_fn with the arguments they declare."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from estimator_core.mode_keys import ModeKeys
from estimator_core.spec import EstimatorSpec

logger = logging.getLogger("estimator_core")

_MODEL_FN_ARGS = {"features", "labels", "mode", "params", "config", "self"}
# Metric names the Estimator itself reports from evaluate().
_RESERVED_METRICS = ("global_step", "loss")


def declared_args(fn: Callable[..., Any]) -> set[str]:
    """Names of the parameters ``fn`` accepts (all of them if it takes ``**kwargs``); the
    keywords a ``functools.partial`` binds are not among them."""
    bound: set[str] = set()
    inner = fn
    while isinstance(inner, functools.partial):
        bound |= set(inner.keywords)
        inner = inner.func
    parameters = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return {"*"}
    return {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL} - bound


def check_model_fn(model_fn: Any, params: dict | None) -> set[str]:
    """The arguments ``model_fn`` declares; ``ValueError``/``TypeError`` as tf.estimator's for
    a missing model_fn, a missing ``features``, ``params`` it cannot take, or an argument that
    is none of ``features, labels, mode, params, config``."""
    if model_fn is None:
        raise ValueError("model_fn must be provided to Estimator.")
    if not callable(model_fn):
        raise TypeError(f"model_fn must be callable, got {type(model_fn).__name__}")
    args = declared_args(model_fn)
    name = getattr(model_fn, "__name__", model_fn)
    if "*" in args:
        return args
    if "features" not in args:
        raise ValueError(
            f"model_fn ({name}) must include features argument; it declares {sorted(args)}"
        )
    if params and "params" not in args:
        raise ValueError(
            f"model_fn ({name}) does not include params argument, but params "
            f"({sorted(params)}) is passed to Estimator."
        )
    unexpected = sorted(args - _MODEL_FN_ARGS)
    if unexpected:
        raise ValueError(
            f"model_fn ({name}) has following not expected args: {unexpected} (a model_fn "
            f"takes {sorted(_MODEL_FN_ARGS - {'self'})}; bind others with functools.partial "
            "or a lambda)"
        )
    return args


class ModelFn:
    """A model_fn bound to the Estimator's params and config.

    model_fn receives only the arguments it declares among ``features``, ``labels``, ``mode``,
    ``params`` and ``config`` (``features`` is required, as in tf.estimator; any other argument
    is a ``ValueError``).
    """

    def __init__(self, model_fn: Callable[..., EstimatorSpec], params: dict, config: Any) -> None:
        self._args = check_model_fn(model_fn, params)
        self._fn = model_fn
        self._params = params
        self._config = config

    def __call__(self, features: Any, labels: Any, mode: str, config: Any = None) -> EstimatorSpec:
        """model_fn's spec for ``mode``; ``config`` (default: the Estimator's) replaces it."""
        available = {
            "features": features,
            "labels": labels,
            "mode": mode,
            "params": self._params,
            "config": self._config if config is None else config,
        }
        declared = "*" in self._args or "labels" in self._args
        if labels is not None and not declared:
            raise ValueError("model_fn does not take labels, but input_fn returns labels.")
        kwargs = {
            name: value
            for name, value in available.items()
            if "*" in self._args or name in self._args
        }
        with self._device_scope():
            spec = self._fn(**kwargs)
        if not isinstance(spec, EstimatorSpec):
            raise ValueError(
                "model_fn should return an EstimatorSpec (estimator_core.EstimatorSpec), got "
                f"{type(spec).__name__}"
            )
        if spec.mode is None:  # a model_fn without mode: the spec is for the mode it ran in
            spec = EstimatorSpec(mode, *spec[1:])
        elif spec.mode != mode:
            raise ValueError(
                f"model_fn was called with mode {mode!r} but returned a spec for {spec.mode!r}"
            )
        if mode == ModeKeys.EVAL:
            for reserved in _RESERVED_METRICS:
                if reserved in spec.eval_metric_ops:
                    raise ValueError(
                        f"Metric with name `{reserved}` is not allowed, because Estimator "
                        "already defines a default metric with the same name."
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


def input_fn_call(
    input_fn: Callable[..., Any],
    mode: str,
    params: dict,
    config: Any,
    input_context: tf.distribute.InputContext | None = None,
) -> Callable[[], Any]:
    """``input_fn`` bound to the arguments it declares (``mode``, ``params``, ``config``,
    ``input_context``: None without a distribution strategy). The backend calls it where its
    input must be built (the graph backend: inside its graph) and takes what it returns in its
    own form (the function backend: :func:`as_dataset`)."""
    if not callable(input_fn):
        raise TypeError(f"input_fn must be callable, got {type(input_fn).__name__}")
    args = declared_args(input_fn)
    available = {"mode": mode, "params": params, "config": config, "input_context": input_context}
    kwargs = {name: value for name, value in available.items() if "*" in args or name in args}
    return functools.partial(input_fn, **kwargs)


def as_dataset(result: Any) -> tf.data.Dataset:
    """An input_fn's result as a Dataset (the function backend's input).

    An input_fn that returns tensors or Python values instead (``(features, labels)``, or
    features) has them repeated as one constant batch, ``Dataset.from_tensors(value).repeat()``:
    TF1 graph mode fed the same tensors at every step. The first batch of an iterator
    (``make_one_shot_iterator(...).get_next()`` called eagerly) is such a value: return the
    Dataset itself to iterate it (or run the model_fn in the graph backend, which iterates it).
    """
    if isinstance(result, tf.data.Dataset):
        return result
    try:
        dataset = tf.data.Dataset.from_tensors(result)
    except (TypeError, ValueError) as err:
        raise TypeError(
            "input_fn must return a tf.data.Dataset, or (features, labels) / features as "
            f"tensors; got {type(result).__name__}, which is neither: {err}"
        ) from err
    logger.info(
        "input_fn returned %s, not a Dataset: the same batch is used at every step",
        type(result).__name__,
    )
    return dataset.repeat()


def split_element(element: Any) -> tuple[Any, Any]:
    """A dataset element → (features, labels); labels are None when the element has none.

    A tuple (or list) must have two entries, ``(features, labels)``, as in tf.estimator.
    """
    if isinstance(element, (tuple, list)):
        if len(element) != 2:
            raise ValueError(
                "input_fn should return (features, labels) as a len 2 tuple; its elements are "
                f"tuples of {len(element)}. Put several features in a dict."
            )
        return element[0], element[1]
    return element, None
