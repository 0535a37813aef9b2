"""The hooks of one train()/evaluate()/predict() call: every call of their methods is here.

A call's life, in pseudo-code::

    loop = HookedLoop(backend, mode, leading, hooks, chief)
    loop.begin(global_step)       # begin(), after_create_session(session, coord), start_at(step)
    while ...:
        n = min(steps wanted, loop.next_trigger(global_step) - global_step, ...)
        result, stop = loop.run(lambda requests: backend.train(iterator, n, infinite, requests), n)
        # inside run: before_run() of every hook -> the backend runs n steps and fetches what
        # the hooks asked for -> after_run() of every hook
    loop.end()                    # end(session), only when the call ends normally

Hook order is tf.estimator's: in TRAIN ``leading`` (the checkpoint saver and step counter),
the spec's ``training_chief_hooks`` (on the chief only), ``hooks`` (the caller's, then the
built-in NaN and logging hooks), then the spec's ``training_hooks``; in EVAL and PREDICT
``hooks`` then the spec's evaluation/prediction hooks. The spec's hooks exist once model_fn has
been traced, so when the backend could not trace before the first step (eager execution) they
join after the first loop.

Hooks are any objects with the five SessionRunHook methods; ``start_at`` and
``next_trigger_step`` (TF2 additions) are optional (see :mod:`estimator_core.hooks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from estimator_core.backend import LoopResult, ModelFnBackend
from estimator_core.hooks import SessionRunContext, SessionRunValues, trigger_step
from estimator_core.mode_keys import ModeKeys


class HookedLoop:
    """Runs the compiled loops of one call between its hooks' ``before_run`` and ``after_run``."""

    def __init__(
        self,
        backend: ModelFnBackend,
        mode: str,
        hooks: Sequence[Any] = (),
        leading: Sequence[Any] = (),
        chief: bool = True,
    ) -> None:
        self._backend = backend
        self._mode = mode
        self._leading = list(leading)
        self._hooks = list(hooks)
        self._chief = chief
        self._spec_hooks: tuple[list[Any], list[Any]] | None = None
        self._global_step = 0

    @property
    def hooks(self) -> list[Any]:
        """All hooks in the order they are called."""
        chief, trailing = self._spec_hooks or ([], [])
        return self._leading + chief + self._hooks + trailing

    def begin(self, global_step: int) -> None:
        """``begin``, ``after_create_session`` and ``start_at`` of every hook, in order."""
        self._global_step = global_step
        self._start(self._leading + self._hooks)
        self._join_spec_hooks()

    def next_trigger(self, global_step: int) -> int | None:
        """The nearest step after ``global_step`` at which some hook must see ``after_run``."""
        steps = [trigger_step(hook, global_step) for hook in self.hooks]
        return min((s for s in steps if s is not None and s > global_step), default=None)

    def run(
        self, run: Callable[[list[Any]], LoopResult], num_steps: int, global_step: Callable[[], int]
    ) -> tuple[LoopResult | None, str | None]:
        """One compiled loop of ``num_steps`` between the hooks' before_run and after_run.

        ``run(requests)`` runs the loop with each hook's ``SessionRunArgs`` (or None) and
        returns a :class:`~estimator_core.backend.LoopResult` with their values. Returns ``(result, stop)``: ``stop`` is ``"hook"`` when a
        hook requested a stop, ``"input"`` when the input ended, else None; ``result`` is None
        when the input ended before the loop's first step (no after_run then).
        """
        context = SessionRunContext(session=self._backend.session(self._mode))
        hooks = self.hooks
        requests = []
        for hook in hooks:
            with self._backend.hook_scope(self._mode, hook):
                requests.append(hook.before_run(context))
        try:
            result = run(requests)
        except tf.errors.OutOfRangeError:
            return None, "input"
        hook_values = result.hook_values or [None] * len(hooks)
        for hook, values in zip(hooks, hook_values, strict=True):
            with self._backend.hook_scope(self._mode, hook):
                hook.after_run(context, values if values is not None else SessionRunValues(None))
        self._global_step = global_step()
        self._join_spec_hooks()
        if context.stop_requested:
            return result, "hook"
        return result, "input" if result.steps < num_steps else None

    def end(self) -> None:
        """``end(session)`` of every hook (only for a call that ended normally, as in TF1)."""
        session = self._backend.session(self._mode)
        for hook in self.hooks:
            with self._backend.hook_scope(self._mode, hook):
                hook.end(session)

    def _join_spec_hooks(self) -> None:
        if self._spec_hooks is not None:
            return
        spec = self._backend.traced_spec(self._mode)
        if spec is None:
            return
        if self._mode == ModeKeys.TRAIN:
            chief = list(spec.training_chief_hooks) if self._chief else []
            trailing = list(spec.training_hooks)
        elif self._mode == ModeKeys.EVAL:
            chief, trailing = [], list(spec.evaluation_hooks)
        else:
            chief, trailing = [], list(spec.prediction_hooks)
        self._spec_hooks = (chief, trailing)
        self._start(chief + trailing)

    def _start(self, hooks: list[Any]) -> None:
        for hook in hooks:
            with self._backend.hook_scope(self._mode, hook):
                hook.begin()
        session = self._backend.session(self._mode)
        # TF1 hooks get a Coordinator with a real session (the graph backend's), as in TF1.
        coordinator = tf.compat.v1.train.Coordinator() if session is not None else None
        for hook in hooks:
            with self._backend.hook_scope(self._mode, hook):
                hook.after_create_session(session, coordinator)
                start_at = getattr(hook, "start_at", None)
                if callable(start_at):
                    start_at(self._global_step)
