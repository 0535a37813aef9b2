"""Hooks that write what training does: TensorBoard summaries and profiler traces."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from estimator_core.hooks.periodic import PeriodicHook, Timer
from estimator_core.hooks.session_run_hook import (
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
)

logger = logging.getLogger("estimator_core")


class SummarySaverHook(PeriodicHook):
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
        if self.trigger(step) is None:
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
        self._timer: Timer | None = None
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
            self._timer = Timer(save_steps, save_secs)
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
