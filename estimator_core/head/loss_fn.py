"""A head's custom ``loss_fn``: its accepted arguments, and calling it with a shape check."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

_REQUIRED = ("labels", "logits")
_OPTIONAL = ("features", "loss_reduction")


def validate_loss_fn_args(loss_fn: Callable[..., Any]) -> None:
    """``loss_fn`` must take ``labels`` and ``logits``, and may take ``features`` and
    ``loss_reduction`` (nothing else), as in tf.estimator."""
    args = set(inspect.signature(loss_fn).parameters)
    for required in _REQUIRED:
        if required not in args:
            raise ValueError(
                f"loss_fn must contain argument: {required}. Given arguments: {sorted(args)}"
            )
    unexpected = args - set(_REQUIRED) - set(_OPTIONAL)
    if unexpected:
        raise ValueError(f"loss_fn has unexpected args: {sorted(unexpected)}")


def call_loss_fn(
    loss_fn: Callable[..., Any],
    labels: tf.Tensor,
    logits: tf.Tensor,
    features: Mapping[str, Any] | None,
    expected_loss_dim: int = 1,
) -> tf.Tensor:
    """``loss_fn(labels=, logits=[, features=])``, checked to be ``[D0, ..., DN,
    expected_loss_dim]`` for logits ``[D0, ..., DN, logits_dimension]``."""
    kwargs = {"features": features} if "features" in inspect.signature(loss_fn).parameters else {}
    loss = tf.convert_to_tensor(loss_fn(labels=labels, logits=logits, **kwargs))
    expected = tf.concat([tf.shape(logits)[:-1], [expected_loss_dim]], axis=0)
    static = logits.shape[:-1].concatenate([expected_loss_dim])
    if not loss.shape.is_compatible_with(static):
        raise ValueError(
            f"loss_fn must return Tensor of shape [D0, D1, ... DN, {expected_loss_dim}]; "
            f"logits shape {logits.shape}, loss shape {loss.shape}"
        )
    check = tf.debugging.assert_equal(
        tf.shape(loss),
        expected,
        message=f"loss_fn must return Tensor of shape [D0, D1, ... DN, {expected_loss_dim}]",
    )
    with tf.control_dependencies([check]):
        return tf.identity(loss)
