"""train_and_evaluate: periodic evaluation (and export) while training, in one process.

The loop, in pseudo-code::

    restore each EvalSpec's recorded history (BestExporter's best survives a restart)
    while global_step < max_steps:
        estimator.train(train_spec.input_fn, max_steps=<next evaluation step>)   # one iterator
        for each eval_spec that is due:                                          # all run
            results = estimator.evaluate(eval_spec.input_fn, eval_spec.steps, name=eval_spec.name)
            for exporter in eval_spec.exporters: exporter.export(...)
        stop early when a hook stopped training or the input ended
    final evaluation of every eval_spec, exporters with is_the_final_export=True

Training continues one input pipeline across rounds (the same input_fn object) and the
evaluations read the weights in memory, which equal the checkpoint just saved: nothing is
rebuilt, reloaded or retraced between rounds. Killed and started again with the same
arguments, it resumes from the latest checkpoint and ends at the same max_steps.

In a ``TF_CONFIG`` cluster (see :class:`~estimator_core.RunConfig`) the roles split as in
tf.estimator: chief and workers only train, together, to max_steps (evaluations would make
them wait for each other); the ``evaluator`` task only evaluates, each checkpoint the chief
writes, as it appears.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import tensorflow as tf

from estimator_core import hooks as hooks_lib
from estimator_core.checkpoints import checkpoint_step
from estimator_core.distribute import EVALUATOR
from estimator_core.eval_history import read_eval_history
from estimator_core.exporters import Exporter

logger = logging.getLogger("estimator_core")


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """How to train: ``input_fn``, ``max_steps`` (None: until the input ends), hooks, listeners."""

    input_fn: Callable[..., Any]
    max_steps: int | None = None
    hooks: Sequence[hooks_lib.SessionRunHook] = ()
    saving_listeners: Sequence[hooks_lib.CheckpointSaverListener] = ()

    def __post_init__(self) -> None:
        if not callable(self.input_fn):
            raise TypeError(
                f"TrainSpec: input_fn must be callable, got {type(self.input_fn).__name__}"
            )
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"TrainSpec: max_steps must be > 0, given: {self.max_steps}")


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """How to evaluate: ``steps`` batches (None: all) of ``input_fn``, under ``name``.

    When to evaluate: every ``every_n_steps`` global steps when given (an addition to
    tf.estimator), else after the first checkpoint saved ``throttle_secs`` or more after the
    previous evaluation. ``start_delay_secs`` applies to a separate evaluator task only.
    ``exporters`` run after each evaluation of this spec.
    """

    input_fn: Callable[..., Any]
    steps: int | None = 100
    name: str | None = None
    hooks: Sequence[hooks_lib.SessionRunHook] = ()
    exporters: Sequence[Exporter] = ()
    start_delay_secs: float = 120
    throttle_secs: float = 600
    every_n_steps: int | None = None

    def __post_init__(self) -> None:
        if not callable(self.input_fn):
            raise TypeError(
                f"EvalSpec: input_fn must be callable, got {type(self.input_fn).__name__}"
            )
        if self.steps is not None and self.steps <= 0:
            raise ValueError(
                f"EvalSpec({self.name!r}): steps must be > 0 or None, given: {self.steps}"
            )
        if self.every_n_steps is not None and self.every_n_steps <= 0:
            raise ValueError(
                f"EvalSpec({self.name!r}): every_n_steps must be > 0, given: {self.every_n_steps}"
            )
        if self.throttle_secs < 0 or self.start_delay_secs < 0:
            raise ValueError(
                f"EvalSpec({self.name!r}): throttle_secs and start_delay_secs must be >= 0"
            )
        exporters = (
            (self.exporters,) if isinstance(self.exporters, Exporter) else tuple(self.exporters)
        )
        names = [e.name for e in exporters]
        if len(set(names)) != len(names):
            raise ValueError(f"EvalSpec({self.name!r}): exporter names must be unique, got {names}")
        object.__setattr__(self, "exporters", exporters)


class TrainAndEvaluateResult(NamedTuple):
    """``metrics``: the last results; ``exports``: paths of the SavedModels written.

    With one EvalSpec these are its results dict and a list of paths (tf.estimator's shape);
    with a list of EvalSpecs, dicts keyed by eval name.
    """

    metrics: Any
    exports: Any


def train_and_evaluate(
    estimator: Any, train_spec: TrainSpec, eval_spec: EvalSpec | Sequence[EvalSpec]
):
    """Train ``estimator`` to ``train_spec.max_steps``, evaluating (and exporting) along the way.

    ``eval_spec`` may be a list of EvalSpecs with distinct names: every round evaluates each one
    that is due, and the final evaluation runs them all. Returns a
    :class:`TrainAndEvaluateResult`.

    In a multi-worker ``TF_CONFIG`` cluster, a chief or worker task trains to
    ``train_spec.max_steps`` and evaluates nothing (its results are None, its exports empty);
    an ``evaluator`` task runs :func:`run_evaluator`.
    """
    single = isinstance(eval_spec, EvalSpec)
    specs = [eval_spec] if single else list(eval_spec)
    _check_specs(train_spec, specs)
    cluster = estimator.config.cluster
    if cluster.task_type == EVALUATOR:
        return run_evaluator(estimator, train_spec, eval_spec)
    if cluster.is_multi_worker:
        estimator.train(
            train_spec.input_fn,
            hooks=train_spec.hooks,
            max_steps=train_spec.max_steps,
            saving_listeners=train_spec.saving_listeners,
        )
        if single:
            return TrainAndEvaluateResult(None, [])
        return TrainAndEvaluateResult(
            {spec.name: None for spec in specs}, {spec.name: [] for spec in specs}
        )
    state = {spec.name: _EvalState(spec, estimator) for spec in specs}
    resumed_at = _checkpoint_step(estimator)
    for eval_state in state.values():  # a run killed between its save and its evaluation
        if resumed_at and eval_state.due(resumed_at):
            eval_state.evaluate(resumed_at, final=False)
    while True:
        step = _checkpoint_step(estimator)
        if train_spec.max_steps is not None and step >= train_spec.max_steps:
            break
        target = _next_target(step, specs, train_spec.max_steps)
        deadline = _throttle_hook(specs)
        round_hooks = list(train_spec.hooks) + ([deadline] if deadline is not None else [])
        estimator.train(
            train_spec.input_fn,
            hooks=round_hooks,
            max_steps=target,
            saving_listeners=train_spec.saving_listeners,
        )
        stop = estimator._last_train_stop  # "input", "hook" or None
        if stop == "hook" and deadline is not None and deadline.fired:
            stop = None
        step = estimator.get_global_step_value()
        if stop is not None:
            logger.info("train_and_evaluate: training stopped (%s) at step %d", stop, step)
            break
        if train_spec.max_steps is not None and step >= train_spec.max_steps:
            break  # the final evaluation follows
        for eval_state in state.values():
            if eval_state.due(step):
                eval_state.evaluate(step, final=False)
    step = _checkpoint_step(estimator)
    for eval_state in state.values():
        eval_state.evaluate(step, final=True)
    return _result(state, single)


def _result(state: dict[str | None, _EvalState], single: bool) -> TrainAndEvaluateResult:
    """The last results and exports: of the one EvalSpec when ``single``, else by name."""
    if single:
        (only,) = state.values()
        return TrainAndEvaluateResult(only.last_result, only.exports)
    return TrainAndEvaluateResult(
        {name: s.last_result for name, s in state.items()},
        {name: s.exports for name, s in state.items()},
    )


class _EvalState:
    def __init__(self, spec: EvalSpec, estimator: Any) -> None:
        self.spec = spec
        self.estimator = estimator
        self.last_result: dict[str, Any] | None = None
        self.exports: list[str] = []
        history = read_eval_history(estimator.eval_dir(spec.name))
        self.last_step = history[-1]["global_step"] if history else None
        self.last_time = time.monotonic()
        start = _checkpoint_step(estimator)
        for exporter in spec.exporters:
            exporter.restore([h for h in history if h["global_step"] < start])

    def due(self, step: int) -> bool:
        if self.last_step == step:
            return False
        if self.spec.every_n_steps is not None:
            last = self.last_step or 0
            return step // self.spec.every_n_steps > last // self.spec.every_n_steps
        return time.monotonic() - self.last_time >= self.spec.throttle_secs

    def evaluate(self, step: int, final: bool, checkpoint_path: str | None = None) -> None:
        if self.last_step == step and not final:
            return
        if self.last_step != step or self.last_result is None:
            self.last_result = self.estimator.evaluate(
                self.spec.input_fn,
                steps=self.spec.steps,
                hooks=self.spec.hooks,
                name=self.spec.name,
                checkpoint_path=checkpoint_path,
            )
        self.last_step, self.last_time = step, time.monotonic()
        checkpoint = checkpoint_path or self.estimator.latest_checkpoint()
        for exporter in self.spec.exporters:
            base = os.path.join(self.estimator.model_dir, "export", exporter.name)
            path = exporter.export(self.estimator, base, checkpoint, self.last_result, final)
            if path is not None:
                self.exports.append(path)


def run_evaluator(
    estimator: Any,
    train_spec: TrainSpec,
    eval_spec: EvalSpec | Sequence[EvalSpec],
    timeout_secs: float | None = None,
) -> TrainAndEvaluateResult:
    """The ``evaluator`` task: evaluate each new checkpoint in model_dir until max_steps.

    Waits ``start_delay_secs`` (the smallest of the specs'), then follows model_dir with
    ``tf.train.checkpoints_iterator`` (a check every second): each new latest checkpoint is
    evaluated by every EvalSpec, its exporters run, at most once per ``throttle_secs`` (the
    smallest of the specs'; checkpoints written meanwhile are skipped for the latest). A step
    already in an EvalSpec's eval history is not evaluated again, so a restarted evaluator
    goes on where it stopped. Ends after evaluating a checkpoint at or past
    ``train_spec.max_steps`` (its exporters get ``is_the_final_export=True``), or after
    ``timeout_secs`` without a new checkpoint (None: waits for ever, as tf.estimator did, so
    give max_steps). A checkpoint deleted before it was read (``keep_checkpoint_max``) is
    logged and skipped. Returns the last results and exports, as :func:`train_and_evaluate`.
    """
    single = isinstance(eval_spec, EvalSpec)
    specs = [eval_spec] if single else list(eval_spec)
    _check_specs(train_spec, specs)
    state = {spec.name: _EvalState(spec, estimator) for spec in specs}
    time.sleep(min(spec.start_delay_secs for spec in specs))
    throttle = min(spec.throttle_secs for spec in specs)
    max_steps = train_spec.max_steps
    for path in tf.train.checkpoints_iterator(
        estimator.model_dir, min_interval_secs=throttle, timeout=timeout_secs
    ):
        step = checkpoint_step(path)
        final = max_steps is not None and step >= max_steps
        for eval_state in state.values():
            try:
                eval_state.evaluate(step, final=final, checkpoint_path=path)
            except ValueError as err:
                if tf.io.gfile.exists(path + ".index"):
                    raise
                logger.warning("Checkpoint %s disappeared before evaluation: %s", path, err)
                break
        if final:
            break
    return _result(state, single)


class _DeadlineHook(hooks_lib.SessionRunHook):
    """Ends a training round ``seconds`` after it started (throttle_secs rounds)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._start = time.monotonic()
        self.fired = False

    def begin(self) -> None:
        self._start = time.monotonic()

    def after_run(self, run_context, run_values) -> None:
        if time.monotonic() - self._start >= self._seconds:
            self.fired = True
            run_context.request_stop()

    def next_trigger_step(self, global_step: int) -> int | None:
        return None


def _check_specs(train_spec: TrainSpec, specs: list[EvalSpec]) -> None:
    if not isinstance(train_spec, TrainSpec):
        raise TypeError(f"train_spec must be a TrainSpec, got {type(train_spec).__name__}")
    if not specs:
        raise ValueError("eval_spec: give at least one EvalSpec")
    for spec in specs:
        if not isinstance(spec, EvalSpec):
            raise TypeError(f"eval_spec must be EvalSpec(s), got {type(spec).__name__}")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"eval_spec: EvalSpec names must be distinct, got {names}")


def _checkpoint_step(estimator: Any) -> int:
    latest = estimator.latest_checkpoint()
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _next_target(step: int, specs: list[EvalSpec], max_steps: int | None) -> int | None:
    """The global step the next round trains to: the nearest every_n_steps multiple or max_steps."""
    targets = [(step // s.every_n_steps + 1) * s.every_n_steps for s in specs if s.every_n_steps]
    if max_steps is not None:
        targets.append(max_steps)
    return min(targets) if targets else None


def _throttle_hook(specs: list[EvalSpec]) -> _DeadlineHook | None:
    throttled = [s.throttle_secs for s in specs if s.every_n_steps is None]
    return _DeadlineHook(min(throttled)) if throttled else None
