"""SessionRunHook-style hooks and checkpoint listeners, with tf.estimator's signatures.

TF2 has no session: methods that took one (``after_create_session``, ``end``, the listener
methods) receive ``None`` in its place, and ``coord`` is ``None`` too. The Estimator runs many
steps per compiled call, so ``before_run``/``after_run`` are called around each compiled *loop*,
and ``run_values.results`` hold the fetched values at the loop's last step. A hook that needs
particular steps says so with :meth:`SessionRunHook.next_trigger_step`; a hook that overrides
``before_run`` or ``after_run`` without it is called after every step, exactly like TF1.

Fetches (``SessionRunArgs.fetches``): a name, or a nest (list/tuple/dict) of names, among
``"loss"``, ``"global_step"`` and the keys of ``EstimatorSpec.predictions`` (predictions are
allowed in TRAIN and EVAL mode, so put there whatever a hook should see). A tensor model_fn
returned as ``loss`` or as a predictions value may be given instead of its name.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

logger = logging.getLogger("estimator_core")


class NanLossDuringTrainingError(RuntimeError):
    """Training produced a NaN or infinite loss; no checkpoint of those weights was written."""

    def __str__(self) -> str:
        return "NaN loss during training."


class SessionRunArgs(NamedTuple):
    """What a hook asks to fetch at the end of the next loop. ``feed_dict``/``options`` are ignored."""

    fetches: Any
    feed_dict: Any = None
    options: Any = None


class SessionRunValues(NamedTuple):
    """Fetched values (numpy), in the structure of the hook's ``SessionRunArgs.fetches``."""

    results: Any
    options: Any = None
    run_metadata: Any = None


class SessionRunContext:
    """Passed to ``before_run``/``after_run``; ``request_stop()`` ends the loop after this run."""

    def __init__(self, original_args: SessionRunArgs | None = None, session: Any = None) -> None:
        self.original_args = original_args
        self.session = session
        self._stop_requested = False

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def request_stop(self) -> None:
        self._stop_requested = True


class SessionRunHook:
    """Base class of hooks; every method is a no-op by default."""

    def begin(self) -> None:
        """Called once at the start of train()/evaluate()/predict(), before any step."""

    def after_create_session(self, session: Any, coord: Any) -> None:
        """Called after variables are restored; ``session`` and ``coord`` are ``None``."""

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs | None:
        """Called before each compiled loop; may return fetches for ``after_run``."""
        return None

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        """Called after each compiled loop with the fetches' values at its last step."""

    def end(self, session: Any) -> None:
        """Called once at the end; ``session`` is ``None``."""

    def start_at(self, global_step: int) -> None:
        """Called after ``after_create_session`` with the global step at the start of the call.

        TF2 addition: it is the value a TF1 hook read from the session in after_create_session.
        """

    def next_trigger_step(self, global_step: int) -> int | None:
        """The next global step (> ``global_step``) at which this hook must see ``after_run``.

        The compiled loop stops there at the latest. ``None``: any loop end will do. The default
        is every step for hooks that override ``before_run``/``after_run``, else ``None``.
        """
        cls = type(self)
        if (
            cls.before_run is SessionRunHook.before_run
            and cls.after_run is SessionRunHook.after_run
        ):
            return None
        return global_step + 1


class CheckpointSaverListener:
    """Called around checkpoint saves; ``after_save`` returning True stops training."""

    def begin(self) -> None:
        pass

    def before_save(self, session: Any, global_step_value: int) -> None:
        pass

    def after_save(self, session: Any, global_step_value: int) -> bool | None:
        pass

    def end(self, session: Any, global_step_value: int) -> None:
        pass


class _Timer:
    """Triggers at every multiple of ``every_steps`` global steps, or every ``every_secs`` seconds."""

    def __init__(self, every_steps: int | None = None, every_secs: float | None = None) -> None:
        if (every_steps is None) == (every_secs is None):
            raise ValueError(
                "exactly one of every_n_steps/every_n_iter and every_n_secs must be set"
            )
        if every_steps is not None and every_steps <= 0:
            raise ValueError(f"every_n_steps must be positive, got {every_steps}")
        self.every_steps = every_steps
        self.every_secs = every_secs
        self.last_step: int | None = None
        self.last_time: float | None = None

    def start(self, step: int) -> None:
        self.last_step, self.last_time = step, time.time()

    def should_trigger(self, step: int) -> bool:
        if self.last_step is None:
            return True
        if self.every_steps is not None:
            return step // self.every_steps > self.last_step // self.every_steps
        assert self.last_time is not None and self.every_secs is not None
        return time.time() >= self.last_time + self.every_secs

    def next_step(self, step: int) -> int | None:
        if self.every_steps is None:
            return None
        return (step // self.every_steps + 1) * self.every_steps

    def mark(self, step: int) -> tuple[float | None, int | None]:
        """Record a trigger; returns (seconds, steps) since the previous one."""
        now = time.time()
        elapsed = None if self.last_time is None else now - self.last_time
        steps = None if self.last_step is None else step - self.last_step
        self.last_time, self.last_step = now, step
        return elapsed, steps


class LoggingTensorHook(SessionRunHook):
    """Logs fetched values every N steps or seconds (or only at the end with ``at_end``).

    ``tensors``: a dict of tag to fetch (a name, or a tensor model_fn returned), or a list of names.
    """

    def __init__(
        self,
        tensors: Mapping[str, Any] | list[str],
        every_n_iter: int | None = None,
        every_n_secs: float | None = None,
        at_end: bool = False,
        formatter: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        if not at_end and every_n_iter is None and every_n_secs is None:
            raise ValueError("LoggingTensorHook: set every_n_iter, every_n_secs or at_end")
        self._tensors = dict(tensors) if isinstance(tensors, Mapping) else {t: t for t in tensors}
        self._timer = (
            None
            if at_end and every_n_iter is None and every_n_secs is None
            else _Timer(every_n_iter, every_n_secs)
        )
        self._formatter = formatter
        self._log_now = False
        self.last_values: dict[str, Any] | None = None

    def start_at(self, global_step: int) -> None:
        if self._timer is not None:
            self._timer.start(global_step)

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs({"step": "global_step", "values": self._tensors})

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        step = int(run_values.results["step"])
        self.last_values = run_values.results["values"]
        if self._timer is not None and self._timer.should_trigger(step):
            self._timer.mark(step)
            self._log(self.last_values)

    def end(self, session: Any) -> None:
        if self._timer is None and self.last_values is not None:
            self._log(self.last_values)

    def next_trigger_step(self, global_step: int) -> int | None:
        return None if self._timer is None else self._timer.next_step(global_step)

    def _log(self, values: dict[str, Any]) -> None:
        if self._formatter is not None:
            logger.info(self._formatter(values))
        else:
            logger.info(", ".join(f"{tag} = {_format(v)}" for tag, v in values.items()))


class StopAtStepHook(SessionRunHook):
    """Requests a stop after ``num_steps`` more steps or at global step ``last_step``."""

    def __init__(self, num_steps: int | None = None, last_step: int | None = None) -> None:
        if (num_steps is None) == (last_step is None):
            raise ValueError("StopAtStepHook: exactly one of num_steps and last_step must be set")
        if num_steps is not None and num_steps < 0:
            raise ValueError(f"StopAtStepHook: num_steps must be >= 0, got {num_steps}")
        self._num_steps = num_steps
        self._last_step = last_step

    @property
    def last_step(self) -> int | None:
        return self._last_step

    def start_at(self, global_step: int) -> None:
        if self._num_steps is not None:
            self._last_step = global_step + self._num_steps

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        if self._last_step is not None and int(run_values.results) >= self._last_step:
            run_context.request_stop()

    def next_trigger_step(self, global_step: int) -> int | None:
        return (
            self._last_step
            if self._last_step is not None and self._last_step > global_step
            else None
        )


class NanTensorHook(SessionRunHook):
    """Stops training when the fetched loss is NaN or infinite.

    With ``fail_on_nan_loss`` (default) it raises :class:`NanLossDuringTrainingError`, otherwise
    it logs and requests a stop. The Estimator always installs one on ``"loss"``; its compiled
    loop ends at the first step with a non-finite loss, and no checkpoint of that step is saved.
    """

    def __init__(self, loss_tensor: Any = "loss", fail_on_nan_loss: bool = True) -> None:
        self._loss = loss_tensor
        self._fail = fail_on_nan_loss

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs(self._loss)

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        if np.all(np.isfinite(run_values.results)):
            return
        if self._fail:
            logger.error("Model diverged with loss = NaN.")
            raise NanLossDuringTrainingError
        logger.warning("Model diverged with loss = NaN; stopping training.")
        run_context.request_stop()

    def next_trigger_step(self, global_step: int) -> int | None:
        return None


class StepCounterHook(SessionRunHook):
    """Logs and records ``global_step/sec`` every N steps or seconds.

    Records to ``output_dir`` (a TensorBoard log dir) when given, or to ``summary_writer``.
    """

    def __init__(
        self,
        every_n_steps: int | None = 100,
        every_n_secs: float | None = None,
        output_dir: str | None = None,
        summary_writer: tf.summary.SummaryWriter | None = None,
    ) -> None:
        if every_n_secs is not None:
            every_n_steps = None
        self._timer = _Timer(every_n_steps, every_n_secs)
        self._output_dir = output_dir
        self._writer = summary_writer
        self.rates: list[tuple[int, float]] = []

    def begin(self) -> None:
        if self._writer is None and self._output_dir is not None:
            self._writer = tf.summary.create_file_writer(self._output_dir)

    def start_at(self, global_step: int) -> None:
        self._timer.start(global_step)

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        step = int(run_values.results)
        if not self._timer.should_trigger(step):
            return
        elapsed, steps = self._timer.mark(step)
        if not elapsed or not steps:
            return
        rate = steps / elapsed
        self.rates.append((step, rate))
        logger.info("global_step/sec: %g (step %d)", rate, step)
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.scalar("global_step/sec", rate, step=step)

    def next_trigger_step(self, global_step: int) -> int | None:
        return self._timer.next_step(global_step)


def _format(value: Any) -> str:
    array = np.asarray(value)
    if array.ndim == 0 and np.issubdtype(array.dtype, np.floating) and math.isfinite(array):
        return f"{float(array):.6g}"
    return np.array2string(array, threshold=20)
