"""The global step, readable inside model_fn (``tf.compat.v1.train.get_global_step``'s successor)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

_active: list[tf.Variable] = []


def get_global_step() -> tf.Variable:
    """The int64 global step of the Estimator that is calling model_fn.

    Inside model_fn it holds the number of training steps completed before the current one,
    as ``tf.compat.v1.train.get_global_step()`` did in a TF1 session run.
    """
    if not _active:
        raise RuntimeError("get_global_step() is only available while an Estimator calls model_fn")
    return _active[-1]


@contextlib.contextmanager
def global_step_scope(global_step: tf.Variable) -> Iterator[None]:
    _active.append(global_step)
    try:
        yield
    finally:
        _active.pop()
