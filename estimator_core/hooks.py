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
import os
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


class _PeriodicHook(SessionRunHook):
    """A hook that acts at multiples of ``every_steps`` global steps or every ``every_secs``
    seconds: the compiled loop ends at its steps, and ``_due(step)`` says whether to act now."""

    def __init__(self, every_steps: int | None, every_secs: float | None) -> None:
        self._timer = _Timer(every_steps, every_secs)

    def start_at(self, global_step: int) -> None:
        self._timer.start(global_step)

    def next_trigger_step(self, global_step: int) -> int | None:
        return self._timer.next_step(global_step)

    def _due(self, step: int) -> tuple[float | None, int | None] | None:
        """``(seconds, steps)`` since the previous trigger when one is due at ``step``, else None."""
        if not self._timer.should_trigger(step):
            return None
        return self._timer.mark(step)


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


class StepCounterHook(_PeriodicHook):
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
        elapsed, steps = self._due(step) or (None, None)
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


class SummarySaverHook(_PeriodicHook):
    """Writes fetched values as TensorBoard summaries every N steps or seconds.

    TF2 semantics: ``summary_op`` names what to write, as hook fetches do (see the module
    docstring): a name, a list of names (each its own tag), or a dict ``tag -> name`` (or tag ->
    the loss/prediction tensor model_fn returned). At each trigger the values at that global step
    are written at that step: numeric scalars with ``tf.summary.scalar``, other numeric arrays
    with ``tf.summary.histogram``, strings with ``tf.summary.text``. With ``save_steps`` the
    triggers are the multiples of ``save_steps`` (the compiled loop ends there); with
    ``save_secs``, the end of the first loop ``save_secs`` or more after the previous write.
    TF1 also wrote at the first step of every train() call; this hook does not.

    Summaries go to ``summary_writer`` (a ``tf.summary.SummaryWriter``) or, when it is None, to
    a writer on ``output_dir`` (a TensorBoard log directory); one of them is required. The
    writer is flushed at the end of every call.

    In TF1 ``summary_op`` was a merged summary op (or ``scaffold.summary_op``, the merge of
    every ``tf.summary`` call in model_fn). In TF2 the Estimator itself records the
    ``tf.summary`` calls made inside model_fn (and ``loss``) to model_dir every
    ``RunConfig.save_summary_steps`` steps, so this hook is only needed for other values,
    other directories or another frequency. ``scaffold`` is accepted and ignored; ``summary_op``
    is required.
    """

    def __init__(
        self,
        save_steps: int | None = None,
        save_secs: float | None = None,
        output_dir: str | None = None,
        summary_writer: tf.summary.SummaryWriter | None = None,
        scaffold: Any = None,
        summary_op: Any = None,
    ) -> None:
        if (save_steps is None) == (save_secs is None):
            raise ValueError("SummarySaverHook: exactly one of save_steps and save_secs is needed")
        if summary_op is None:
            raise ValueError(
                "SummarySaverHook: give summary_op (a name, a list of names or a dict "
                "tag -> name/tensor). The tf.summary calls inside model_fn are already written "
                "by the Estimator every RunConfig.save_summary_steps steps."
            )
        if output_dir is None and summary_writer is None:
            raise ValueError("SummarySaverHook: give output_dir or summary_writer")
        super().__init__(save_steps, save_secs)
        self._fetches = _tagged_fetches(summary_op, "SummarySaverHook")
        self._output_dir = output_dir
        self._writer = summary_writer

    def begin(self) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.fspath(self._output_dir))

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs({"step": "global_step", "values": self._fetches})

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        step = int(run_values.results["step"])
        if self._due(step) is None:
            return
        assert self._writer is not None
        with self._writer.as_default(step=step):
            for tag, value in run_values.results["values"].items():
                _write_summary(tag, value)

    def end(self, session: Any) -> None:
        if self._writer is not None:
            self._writer.flush()


class ProfilerHook(SessionRunHook):
    """Writes a TensorFlow profiler trace of a range of training steps.

    TF2 semantics: TF1 wrote a Chrome-trace ``timeline-<step>.json`` of one step every
    ``save_steps`` steps or ``save_secs`` seconds. TF2 has no per-run ``RunMetadata``; this
    hook runs ``tf.profiler.experimental.start(output_dir)`` / ``stop()`` around whole compiled
    loops and writes a profiler trace to ``output_dir/plugins/profile/<timestamp>/`` (the
    TensorBoard profile plugin reads it; ``""`` is the current directory, as in TF1). Which steps:

    - ``profile_steps=(first, last)``: global steps ``first`` to ``last`` inclusive (step k is
      the one that takes the global step from k-1 to k). The compiled loops end at ``first - 1``
      and at ``last``, so the trace holds exactly those steps (and the hooks around them).
    - else ``save_steps=N``: the N steps after the first trigger, the first multiple of N after
      the global step at which training starts (so the first steps, with their tracing, are
      left out): starting at step 0 with N=100, steps 101 to 200.
    - else ``save_secs=S``: from the end of the first loop S seconds or more after training
      starts to the end of the first loop S seconds or more later (one trace only).

    A train() call that ends inside a step range stops the profiler in ``end()``, and a later
    call with the same hook traces the rest of the range in a second trace. ``traced_steps``
    lists the ``(first, last)`` steps of each trace written. Only one profiler may run in a
    process: when another is running the hook logs a warning and traces nothing. Two traces
    started within the same second in one ``output_dir`` share a directory name (the profiler's
    choice), so give each hook its own ``output_dir``. ``show_dataflow`` and ``show_memory``
    (options of the TF1 timeline) are accepted and ignored: the TF2 trace has the op timeline,
    and memory profiles are the profiler's own options.
    """

    def __init__(
        self,
        save_steps: int | None = None,
        save_secs: float | None = None,
        output_dir: str = "",
        show_dataflow: bool = True,
        show_memory: bool = False,
        profile_steps: tuple[int, int] | None = None,
    ) -> None:
        self._range: tuple[int, int] | None = None
        self._timer: _Timer | None = None
        if profile_steps is not None:
            if save_steps is not None or save_secs is not None:
                raise ValueError("ProfilerHook: give profile_steps or save_steps/save_secs")
            first, last = (int(s) for s in profile_steps)
            if not 1 <= first <= last:
                raise ValueError(
                    f"ProfilerHook: profile_steps must be (first, last) with 1 <= first <= last, "
                    f"got {profile_steps}"
                )
            self._range = (first, last)
        else:
            self._timer = _Timer(save_steps, save_secs)
        self._output_dir = os.fspath(output_dir) or "."
        self._step: int | None = None
        self._trace_start: tuple[int, float] | None = None  # (first step, time) while tracing
        self._start_next = False  # save_secs: start before the next loop
        self._finished = False  # save_secs trace written, or the profiler was unavailable
        self.traced_steps: list[tuple[int, int]] = []

    def start_at(self, global_step: int) -> None:
        self._step = global_step
        if self._timer is None or self._finished:
            return
        if self._timer.every_steps is not None:
            if self._range is None:
                first = global_step // self._timer.every_steps * self._timer.every_steps
                first += self._timer.every_steps + 1
                self._range = (first, first + self._timer.every_steps - 1)
        else:
            self._timer.start(global_step)

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        if self._trace_start is None and self._step is not None and not self._finished:
            next_step = self._step + 1
            in_range = self._range is not None and self._range[0] <= next_step <= self._range[1]
            if in_range or self._start_next:
                self._start(next_step)
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        self._step = step = int(run_values.results)
        if self._trace_start is not None:
            if self._range is not None:
                done = step >= self._range[1]
            else:
                assert self._timer is not None and self._timer.every_secs is not None
                done = time.time() - self._trace_start[1] >= self._timer.every_secs
            if done:
                self._stop()
        elif self._range is None and self._timer is not None and not self._finished:
            self._start_next = self._timer.should_trigger(step)

    def end(self, session: Any) -> None:
        if self._trace_start is not None:
            self._stop()

    def next_trigger_step(self, global_step: int) -> int | None:
        if self._range is None or self._finished:
            return None
        first, last = self._range
        if global_step < first - 1:
            return first - 1
        if global_step < last:
            return last
        return None

    def _start(self, first_step: int) -> None:
        self._start_next = False
        try:
            tf.profiler.experimental.start(self._output_dir)
        except (tf.errors.AlreadyExistsError, tf.errors.UnavailableError) as err:
            logger.warning("ProfilerHook: could not start the profiler (%s); no trace", err)
            self._finished = True
            return
        logger.info("ProfilerHook: profiling from step %d into %s", first_step, self._output_dir)
        self._trace_start = (first_step, time.time())

    def _stop(self) -> None:
        assert self._trace_start is not None and self._step is not None
        first = self._trace_start[0]
        self._trace_start = None
        tf.profiler.experimental.stop()
        if self._range is None:
            self._finished = True
        if self._step >= first:
            self.traced_steps.append((first, self._step))
            logger.info("ProfilerHook: trace of steps %d-%d written", first, self._step)


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
            step = _checkpoint_step(self._model_dir)
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


class InMemoryEvaluatorHook(_PeriodicHook):
    """Evaluates ``estimator`` on ``input_fn`` during its own train(), on the weights in memory.

    TF1 built a separate evaluation graph and copied the training variables into it. TF2 reads
    the very variables being trained: every ``every_n_iter`` global steps (at its multiples:
    the compiled loop ends there; TF1 counted the hook's own iterations, which is the same when
    training starts at a multiple) and once more at the end of train() (unless it just evaluated
    that step), it runs what :meth:`Estimator.evaluate` runs, minus the checkpoint restore:
    ``steps`` batches (None: until the input ends) with ``hooks``, results written like
    evaluate()'s to ``estimator.eval_dir(name)`` (summaries and ``eval_history.json``). The
    results' ``global_step`` is the training step, whatever the latest checkpoint. Training is
    not disturbed: the weights are only read, the training input iterator is not touched (the
    evaluation Dataset is built once per input_fn object and iterated from its beginning each
    time) and only the evaluation metrics are reset. ``results`` lists every evaluation's
    results, in order.

    Pass it to the train() of ``estimator`` itself (checked: the global steps must agree).
    """

    def __init__(
        self,
        estimator: Any,
        input_fn: Callable[..., Any],
        steps: int | None = None,
        hooks: list[SessionRunHook] | None = None,
        name: str | None = None,
        every_n_iter: int = 100,
    ) -> None:
        if not hasattr(estimator, "_evaluate_weights_in_memory"):
            raise TypeError(
                "InMemoryEvaluatorHook: estimator must be an estimator_core.Estimator, got "
                f"{type(estimator).__name__}"
            )
        if every_n_iter is None or every_n_iter <= 0:
            raise ValueError(f"InMemoryEvaluatorHook: every_n_iter must be > 0, got {every_n_iter}")
        if steps is not None and steps <= 0:
            raise ValueError(f"InMemoryEvaluatorHook: steps must be > 0 or None, got {steps}")
        for hook in hooks or ():
            if not isinstance(hook, SessionRunHook):
                raise TypeError(
                    f"InMemoryEvaluatorHook: hooks must be SessionRunHooks, got {hook!r}"
                )
        self._estimator = estimator
        self._input_fn = input_fn
        self._steps = steps
        self._hooks = list(hooks or ())
        self._name = name
        super().__init__(every_n_iter, None)
        self._last_evaluated: int | None = None
        self._step: int | None = None  # the global step after the last loop
        self.results: list[dict[str, Any]] = []

    def start_at(self, global_step: int) -> None:
        super().start_at(global_step)
        self._step = None

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        self._step = step = int(run_values.results)
        if self._due(step) is not None:
            self._evaluate(step)

    def end(self, session: Any) -> None:
        if self._step is not None and self._step != self._last_evaluated:
            self._evaluate(self._step)

    def _evaluate(self, step: int) -> None:
        own_step = self._estimator.get_global_step_value()
        if own_step != step:
            raise ValueError(
                f"InMemoryEvaluatorHook: the estimator it evaluates is at global step {own_step} "
                f"but training is at {step}; pass the hook to that estimator's train()"
            )
        results = self._estimator._evaluate_weights_in_memory(
            self._input_fn, self._steps, self._hooks, self._name
        )
        self._last_evaluated = int(results["global_step"])
        self.results.append(results)


def _tagged_fetches(fetches: Any, owner: str) -> dict[str, Any]:
    """``{tag: fetch}`` from a name, a list of names or a dict of tag -> fetch."""
    if isinstance(fetches, str):
        return {fetches: fetches}
    if isinstance(fetches, Mapping):
        return dict(fetches)
    if isinstance(fetches, (list, tuple)):
        if not all(isinstance(f, str) for f in fetches):
            raise TypeError(
                f"{owner}: a list must hold names; use a dict tag -> tensor for tensors"
            )
        return {f: f for f in fetches}
    raise TypeError(f"{owner}: expected a name, a list of names or a dict, got {fetches!r}")


def _write_summary(tag: str, value: Any) -> None:
    array = np.asarray(value)
    if array.dtype.kind in "SUO":
        tf.summary.text(tag, tf.constant(array.astype(str) if array.dtype.kind == "O" else array))
    elif array.ndim == 0:
        tf.summary.scalar(tag, array.astype(np.float64) if array.dtype == bool else array)
    else:
        tf.summary.histogram(tag, array.astype(np.float64) if array.dtype == bool else array)


def _checkpoint_step(model_dir: str) -> int | None:
    """The global step of the latest checkpoint in ``model_dir`` (``...-<step>``), or None."""
    latest = tf.train.latest_checkpoint(model_dir)
    if latest is None:
        return None
    try:
        return int(latest.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None
