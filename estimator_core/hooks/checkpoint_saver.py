"""CheckpointSaverHook: when train() saves checkpoints, and the listeners around each save."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from estimator_core.checkpoints import CHECKPOINT_NAME, Checkpointer
from estimator_core.hooks.session_run_hook import (
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
    is_saving_listener,
    listener_save_step,
)

logger = logging.getLogger("estimator_core")


class CheckpointSaverHook(SessionRunHook):
    """Saves a checkpoint when training starts, every ``save_steps`` steps or ``save_secs``
    seconds, and when it ends, calling ``listeners`` around each save (tf.estimator's hook).

    The Estimator makes one from ``RunConfig`` (``save_checkpoints_steps``/``_secs``); a
    CheckpointSaverHook in train()'s ``hooks`` replaces it, as in tf.estimator, and train()'s
    ``saving_listeners`` join its ``listeners``. TF2 meanings: it saves the Estimator's own
    checkpoint (every variable model_fn created, and the global step), so ``checkpoint_dir``
    must be the Estimator's model_dir, ``saver`` must be None and ``checkpoint_basename``
    ``"model.ckpt"``; ``scaffold`` and ``save_graph_def`` are ignored. The start save happens
    only when no checkpoint of that step exists yet (a new or warm-started model: listeners see
    step 0); the end save only when the last step was not saved and its loss is finite; a step
    whose loss is not finite is never saved. Listeners' ``next_save_step`` (a TF2 addition) adds
    save steps. A listener's ``after_save`` returning True stops training after that save.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        save_secs: float | None = None,
        save_steps: int | None = None,
        saver: Any = None,
        checkpoint_basename: str = CHECKPOINT_NAME,
        scaffold: Any = None,
        listeners: Sequence[Any] | None = None,
        save_graph_def: bool = True,
    ) -> None:
        if saver is not None and scaffold is not None:
            raise ValueError("You cannot provide both saver and scaffold.")
        if saver is not None:
            raise ValueError(
                "CheckpointSaverHook: saver must be None: TF2 has no tf.train.Saver; the hook "
                "saves the Estimator's checkpoint of every variable model_fn created"
            )
        if checkpoint_basename != CHECKPOINT_NAME:
            raise ValueError(
                f"CheckpointSaverHook: checkpoint_basename must be {CHECKPOINT_NAME!r} (the "
                f"Estimator's checkpoint names), got {checkpoint_basename!r}"
            )
        if save_secs is not None and save_steps is not None:
            raise ValueError("Can not provide both save_secs and save_steps.")
        if save_secs is None and save_steps is None:
            raise ValueError("Either save_secs or save_steps should be provided.")
        self._init(checkpoint_dir, save_steps, save_secs, listeners)

    @classmethod
    def for_policy(
        cls,
        checkpoint_dir: str | os.PathLike,
        save_steps: int | None,
        save_secs: float | None,
        listeners: Sequence[Any] = (),
    ) -> CheckpointSaverHook:
        """The Estimator's own saver for a ``RunConfig`` policy (both None: only the start and
        end saves, and those listeners ask for)."""
        hook = cls.__new__(cls)
        hook._init(checkpoint_dir, save_steps or None, save_secs or None, listeners)
        return hook

    def _init(self, checkpoint_dir, save_steps, save_secs, listeners) -> None:
        for listener in listeners or ():
            if not is_saving_listener(listener):
                raise TypeError(
                    "CheckpointSaverHook: listeners must be CheckpointSaverListener instances, "
                    f"given: {listener!r}"
                )
        self.checkpoint_dir = os.fspath(checkpoint_dir)
        self.save_steps = save_steps
        self.save_secs = save_secs
        self.listeners = list(listeners or ())
        self._checkpointer: Checkpointer | None = None
        self._last_save_time = time.time()
        self._last_step: int | None = None
        self._finite = True
        self._listener_step: int | None = None
        self._session: Any = None

    def saves_periodically(self, global_step: int) -> bool:
        """True when it saves during training from ``global_step`` (a step or time policy, or
        a listener asks for a save step)."""
        return bool(self.save_steps or self.save_secs) or any(
            listener_save_step(listener, global_step) is not None for listener in self.listeners
        )

    def bind(self, checkpointer: Checkpointer) -> None:
        """Called by the Estimator before training: the checkpoints this hook saves."""
        if os.path.normpath(os.path.abspath(self.checkpoint_dir)) != os.path.normpath(
            os.path.abspath(checkpointer.model_dir)
        ):
            raise ValueError(
                f"CheckpointSaverHook: checkpoint_dir {self.checkpoint_dir!r} is not the "
                f"Estimator's model_dir {checkpointer.model_dir!r}; TF2 checkpoints are the "
                "Estimator's own (RunConfig.save_checkpoints_* sets their cadence)"
            )
        self._checkpointer = checkpointer

    def begin(self) -> None:
        if self._checkpointer is None:
            raise RuntimeError(
                "CheckpointSaverHook runs inside Estimator.train() only (it saves the "
                "Estimator's checkpoint)"
            )
        for listener in self.listeners:
            listener.begin()

    def after_create_session(self, session: Any, coord: Any) -> None:
        # The training session (the graph backend's; None in the function backend) is what
        # the listeners receive, as in TF1.
        self._session = session

    def start_at(self, global_step: int) -> None:
        self._last_step, self._finite = global_step, True
        self._last_save_time = time.time()
        assert self._checkpointer is not None
        if not self._checkpointer.holds_step(global_step):
            self._save(global_step)

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs({"step": "global_step", "loss": "loss"})

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        step = int(run_values.results["step"])
        previous, self._last_step = self._last_step, step
        self._finite = bool(np.all(np.isfinite(run_values.results["loss"])))
        if self._finite and self._due(previous, step) and self._save(step):
            run_context.request_stop()

    def end(self, session: Any) -> None:
        assert self._checkpointer is not None and self._last_step is not None
        step = self._last_step
        if self._finite and not self._checkpointer.holds_step(step):
            self._save(step)
        for listener in self.listeners:
            listener.end(self._session, step)

    def next_trigger_step(self, global_step: int) -> int | None:
        steps = [listener_save_step(listener, global_step) for listener in self.listeners]
        self._listener_step = min((s for s in steps if s is not None), default=None)
        if self.save_steps:
            steps.append((global_step // self.save_steps + 1) * self.save_steps)
        return min((s for s in steps if s is not None), default=None)

    def _due(self, previous: int | None, step: int) -> bool:
        if self._listener_step is not None and step >= self._listener_step:
            return True
        if self.save_steps:
            return previous is None or step // self.save_steps > previous // self.save_steps
        if self.save_secs:
            return time.time() - self._last_save_time >= self.save_secs
        return False

    def _save(self, step: int) -> bool:
        """Save at ``step``; True when a listener asked training to stop."""
        assert self._checkpointer is not None
        for listener in self.listeners:
            listener.before_save(self._session, step)
        path = self._checkpointer.save()
        self._last_save_time = time.time()
        logger.info("Saving checkpoints for %d into %s.", step, path)
        stop = False
        for listener in self.listeners:
            stop = bool(listener.after_save(self._session, step)) or stop
        return stop
