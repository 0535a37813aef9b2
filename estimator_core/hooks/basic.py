"""tf.estimator's basic hooks in their TF2 form (``tf.compat.v1.train``'s names and arguments).

See :mod:`estimator_core.hooks.session_run_hook` for what ``before_run``/``after_run`` see.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from estimator_core.checkpoints import latest_checkpoint_step
from estimator_core.hooks.periodic import PeriodicHook, Timer
from estimator_core.hooks.session_run_hook import (
    NanLossDuringTrainingError,
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
)

logger = logging.getLogger("estimator_core")


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
        if (every_n_iter is None) == (every_n_secs is None) and not (
            at_end and every_n_iter is None
        ):
            raise ValueError(
                "LoggingTensorHook: Exactly one of every_n_iter and every_n_secs should be "
                "provided (or at_end=True alone)."
            )
        if every_n_iter is not None and every_n_iter <= 0:
            raise ValueError(f"LoggingTensorHook: Invalid every_n_iter={every_n_iter}.")
        self._tensors = dict(tensors) if isinstance(tensors, Mapping) else {t: t for t in tensors}
        self._timer = (
            None
            if at_end and every_n_iter is None and every_n_secs is None
            else Timer(every_n_iter, every_n_secs)
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


class StepCounterHook(PeriodicHook):
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
        super().__init__(every_n_steps, every_n_secs)
        self._output_dir = output_dir
        self._writer = summary_writer
        self.rates: list[tuple[int, float]] = []

    def begin(self) -> None:
        if self._writer is None and self._output_dir is not None:
            self._writer = tf.summary.create_file_writer(self._output_dir)

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        step = int(run_values.results)
        elapsed, steps = self.trigger(step) or (None, None)
        if not elapsed or not steps:
            return
        rate = steps / elapsed
        self.rates.append((step, rate))
        logger.info("global_step/sec: %g (step %d)", rate, step)
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.scalar("global_step/sec", rate, step=step)


def _format(value: Any) -> str:
    array = np.asarray(value)
    if array.ndim == 0 and np.issubdtype(array.dtype, np.floating) and math.isfinite(array):
        return f"{float(array):.6g}"
    return np.array2string(array, threshold=20)


# -- tf.estimator's other hooks, in their TF2 form --------------------------------------------


class FinalOpsHook(SessionRunHook):
    """Fetches ``final_ops`` and keeps their values at the last step of the run.

    TF2 semantics: ``final_ops`` is a fetch as for every hook here: a name, a list or a dict of
    names (``"loss"``, ``"global_step"``, prediction keys) or of the loss/prediction tensors
    model_fn returned. TF1 ran them once more in ``end()``; here they are fetched after every
    compiled loop (no extra steps: the loops keep their length) and :attr:`final_ops_values`
    holds the numpy values of the last step run, in the structure of ``final_ops`` (None before
    any step). In evaluate() that is the last batch's value: the metrics' final values are
    evaluate()'s result. ``final_ops_feed_dict`` must be None: TF2 has no feeds.
    """

    def __init__(self, final_ops: Any, final_ops_feed_dict: Any = None) -> None:
        if final_ops_feed_dict is not None:
            raise ValueError(
                "FinalOpsHook: final_ops_feed_dict is not supported (TF2 has no feeds)"
            )
        self._final_ops = final_ops
        self._final_ops_values: Any = None

    @property
    def final_ops_values(self) -> Any:
        return self._final_ops_values

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs(self._final_ops)

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        self._final_ops_values = run_values.results

    def next_trigger_step(self, global_step: int) -> int | None:
        return None


class GlobalStepWaiterHook(SessionRunHook):
    """Delays training until another Estimator's checkpoint reaches ``wait_until_step``.

    TF1: non-chief workers of a distributed job waited until the shared global step reached
    ``wait_until_step`` (so the chief could get ahead first). TF2 has no shared global step: when
    the global step at which this train() call starts is below ``wait_until_step``, the hook
    polls ``tf.train.latest_checkpoint(model_dir)`` every ``poll_secs`` seconds before the first
    step, until the step of that checkpoint (its ``-<step>`` suffix) reaches
    ``wait_until_step``; after ``timeout_secs`` (None: forever) it raises ``RuntimeError``.
    ``waited_secs`` says how long it waited. Without ``model_dir`` (TF1's only argument) there
    is nothing to wait on: it logs a warning and does nothing. ``wait_until_step <= 0`` never
    waits.

    It only waits: this Estimator has already restored its own model_dir when hooks begin, so
    it trains on from its own weights (call train() again, or warm-start from ``model_dir``, to
    start from the checkpoint waited for). Point ``model_dir`` at another Estimator's directory;
    an Estimator that trains in the same model_dir would write its own checkpoints there.
    """

    def __init__(
        self,
        wait_until_step: int,
        model_dir: str | os.PathLike | None = None,
        poll_secs: float = 0.5,
        timeout_secs: float | None = None,
    ) -> None:
        if poll_secs <= 0:
            raise ValueError(f"GlobalStepWaiterHook: poll_secs must be > 0, got {poll_secs}")
        self._wait_until_step = int(wait_until_step)
        self._model_dir = os.fspath(model_dir) if model_dir is not None else None
        self._poll_secs = poll_secs
        self._timeout_secs = timeout_secs
        self.waited_secs = 0.0

    def start_at(self, global_step: int) -> None:
        if self._wait_until_step <= 0 or global_step >= self._wait_until_step:
            return
        if self._model_dir is None:
            logger.warning(
                "GlobalStepWaiterHook: no model_dir to wait on for global step %d; not waiting "
                "(TF2 has no shared global step)",
                self._wait_until_step,
            )
            return
        started = time.monotonic()
        logger.info(
            "Waiting for a checkpoint of global step %d in %s before starting training.",
            self._wait_until_step,
            self._model_dir,
        )
        while True:
            step = latest_checkpoint_step(self._model_dir)
            elapsed = time.monotonic() - started
            if step is not None and step >= self._wait_until_step:
                self.waited_secs = elapsed
                logger.info("GlobalStepWaiterHook: step %d reached after %.1f s", step, elapsed)
                return
            if self._timeout_secs is not None and elapsed >= self._timeout_secs:
                self.waited_secs = elapsed
                raise RuntimeError(
                    f"GlobalStepWaiterHook: timed out after {elapsed:.1f} s waiting for a "
                    f"checkpoint of global step {self._wait_until_step} in {self._model_dir} "
                    f"(latest step there: {step if step is not None else 'no checkpoint'})"
                )
            pause = self._poll_secs
            if self._timeout_secs is not None:
                pause = min(pause, max(self._timeout_secs - elapsed, 0.0))
            time.sleep(pause)

    def next_trigger_step(self, global_step: int) -> int | None:
        return None


class FeedFnHook(SessionRunHook):
    """Runs ``feed_fn`` and feeds what it returns at every step (TF1's feed_dict).

    The TF2 function backend has no feeds: training with this hook there raises a
    ``ValueError`` at the first step; a TF1 graph backend runs it as TF1 did.
    """

    def __init__(self, feed_fn: Callable[[], dict[Any, Any]]) -> None:
        self.feed_fn = feed_fn

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs(fetches=None, feed_dict=self.feed_fn())
