"""The global step, readable inside model_fn (``tf.compat.v1.train.get_global_step``'s successor)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import tensorflow as tf

# Per thread: two Estimators training in two threads each see their own global step.
_local = threading.local()


def _active() -> list[tf.Variable]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def get_global_step() -> tf.Variable:
    """The int64 global step of the Estimator that is calling model_fn.

    Inside model_fn it holds the number of training steps completed before the current one,
    as ``tf.compat.v1.train.get_global_step()`` did in a TF1 session run.
    """
    stack = _active()
    if not stack:
        raise RuntimeError("get_global_step() is only available while an Estimator calls model_fn")
    return stack[-1]


@contextlib.contextmanager
def global_step_scope(global_step: tf.Variable) -> Iterator[None]:
    """While an Estimator runs model_fn: ``get_global_step()`` returns ``global_step``, and so
    does TF1's ``tf.compat.v1.train.get_global_step()`` (the variable is in the current graph's
    ``GLOBAL_STEP`` collection, which traced functions read)."""
    stack = _active()
    stack.append(global_step)
    collection = tf.compat.v1.get_default_graph().get_collection_ref(
        tf.compat.v1.GraphKeys.GLOBAL_STEP
    )
    # By identity: a variable's == is an element-wise comparison. A TF1 graph's own global
    # step (the graph backend's) is in its collection already: one entry, or TF1 finds none.
    added = not any(v is global_step for v in collection)
    if added:
        collection.append(global_step)
    try:
        yield
    finally:
        if added:
            del collection[max(i for i, v in enumerate(collection) if v is global_step)]
        stack.pop()
