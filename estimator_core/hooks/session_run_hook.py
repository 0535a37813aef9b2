"""The hook and listener protocols, with tf.estimator's signatures (they subclass TF's own).

TF2 has no session: the function backend passes ``None`` where TF1 passed a session or a
coordinator (``after_create_session``, ``end``, the listener methods, ``run_context.session``).
It runs many steps per compiled call, so ``before_run``/``after_run`` wrap each compiled
*loop*, and ``run_values.results`` hold the fetched values at the loop's last step. A hook
says which steps it must see with :meth:`SessionRunHook.next_trigger_step`; a hook without it
(any ``tf.compat.v1.train.SessionRunHook``) that overrides ``before_run`` or ``after_run`` is
run after every step, exactly like TF1.

Fetches (``SessionRunArgs.fetches``): a name, or a nest (list/tuple/dict) of names, among
``"loss"``, ``"global_step"`` and the keys of ``EstimatorSpec.predictions`` (predictions are
allowed in TRAIN and EVAL mode, so put there whatever a hook should see). A tensor model_fn
returned as ``loss`` or as a predictions value may be given instead of its name.
"""

from __future__ import annotations

import numbers
from typing import Any

import tensorflow as tf

_TF_HOOK = tf.compat.v1.train.SessionRunHook
_TF_LISTENER = tf.compat.v1.train.CheckpointSaverListener
_HOOK_METHODS = ("begin", "after_create_session", "before_run", "after_run", "end")
_LISTENER_METHODS = ("begin", "before_save", "after_save", "end")


class NanLossDuringTrainingError(tf.compat.v1.train.NanLossDuringTrainingError):
    """Training produced a NaN or infinite loss; no checkpoint of those weights was written.

    A subclass of ``tf.compat.v1.train.NanLossDuringTrainingError`` (tf.estimator's), so
    ``except`` clauses written for tf.estimator catch it.
    """


class SessionRunArgs(tf.compat.v1.train.SessionRunArgs):
    """What a hook asks to fetch at the end of the next loop.

    ``feed_dict`` must be empty for the TF2 function backend (it has no feeds); ``options``
    is ignored there.
    """

    def __new__(cls, fetches: Any, feed_dict: Any = None, options: Any = None) -> SessionRunArgs:
        return super().__new__(cls, fetches, feed_dict, options)


class SessionRunValues(tf.compat.v1.train.SessionRunValues):
    """Fetched values (numpy), in the structure of the hook's ``SessionRunArgs.fetches``."""

    def __new__(cls, results: Any, options: Any = None, run_metadata: Any = None):
        return super().__new__(cls, results, options, run_metadata)


class SessionRunContext(tf.compat.v1.train.SessionRunContext):
    """Passed to ``before_run``/``after_run``; ``request_stop()`` ends the call after this run.

    ``session`` is the backend's session (``None`` for the TF2 function backend).
    """

    def __init__(self, original_args: Any = None, session: Any = None) -> None:
        super().__init__(original_args, session)


class SessionRunHook(_TF_HOOK):
    """Base class of hooks; every method is a no-op by default.

    A subclass of ``tf.compat.v1.train.SessionRunHook``; the Estimator also runs hooks that
    subclass TF's class directly, or any object with these five methods.
    """

    def begin(self) -> None:
        """Called once at the start of train()/evaluate()/predict(), before any step."""

    def after_create_session(self, session: Any, coord: Any) -> None:
        """Called after variables are restored; ``session`` and ``coord`` are ``None`` in TF2."""

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs | None:
        """Called before each compiled loop; may return fetches for ``after_run``."""
        return None

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        """Called after each compiled loop with the fetches' values at its last step."""

    def end(self, session: Any) -> None:
        """Called once at the end of a call that ended normally; ``session`` is ``None`` in TF2."""

    def start_at(self, global_step: int) -> None:
        """Called after ``after_create_session`` with the global step at the start of the call.

        TF2 addition: it is the value a TF1 hook read from the session in after_create_session.
        """

    def next_trigger_step(self, global_step: int) -> int | None:
        """The next global step (> ``global_step``) at which this hook must see ``after_run``.

        The compiled loop stops there at the latest. ``None``: any loop end will do. The default
        is every step for hooks that override ``before_run``/``after_run``, else ``None``.
        """
        return global_step + 1 if _overrides_run_methods(self) else None


class CheckpointSaverListener(_TF_LISTENER):
    """Called around checkpoint saves; ``after_save`` returning True stops training.

    A subclass of ``tf.compat.v1.train.CheckpointSaverListener``; the Estimator also takes
    listeners that subclass TF's class directly, or any object with its four methods.

    TF2 addition, optional: a listener with a method ``next_save_step(global_step) -> int |
    None`` gets a checkpoint at the step it returns (the next one it needs, > ``global_step``;
    None: RunConfig's saves will do), besides RunConfig's policy.
    """

    def begin(self) -> None:
        """Called once at the start of train()."""

    def before_save(self, session: Any, global_step_value: int) -> None:
        """Called before each checkpoint save (``session`` is ``None`` in TF2)."""

    def after_save(self, session: Any, global_step_value: int) -> bool | None:
        """Called after each checkpoint save; True requests a stop of training."""

    def end(self, session: Any, global_step_value: int) -> None:
        """Called once at the end of a train() call that ended normally, after its last save."""


def is_session_run_hook(value: Any) -> bool:
    """A hook: a (TF or estimator_core) ``SessionRunHook``, or an object with its five methods."""
    return isinstance(value, _TF_HOOK) or all(
        callable(getattr(value, m, None)) for m in _HOOK_METHODS
    )


def is_saving_listener(value: Any) -> bool:
    """A ``CheckpointSaverListener`` (TF's or estimator_core's), or an object with its methods."""
    return isinstance(value, _TF_LISTENER) or all(
        callable(getattr(value, m, None)) for m in _LISTENER_METHODS
    )


def trigger_step(hook: Any, global_step: int) -> int | None:
    """``hook.next_trigger_step(global_step)``; for a hook without it, the next step when it
    overrides ``before_run``/``after_run`` (a TF1 hook sees every step), else None."""
    method = getattr(hook, "next_trigger_step", None)
    if callable(method):
        step = method(global_step)
        if step is None or isinstance(step, numbers.Integral):
            return step
        return global_step + 1  # not a step (a test double): every step is always right
    return global_step + 1 if _overrides_run_methods(hook) else None


def listener_save_step(listener: Any, global_step: int) -> int | None:
    """``listener.next_save_step(global_step)``, or None for a listener without it."""
    method = getattr(listener, "next_save_step", None)
    step = method(global_step) if callable(method) else None
    return step if isinstance(step, numbers.Integral) else None


def _overrides_run_methods(hook: Any) -> bool:
    cls = type(hook)
    bases = (SessionRunHook, _TF_HOOK)
    return any(
        getattr(cls, name, None) not in [getattr(base, name) for base in bases]
        for name in ("before_run", "after_run")
    )
