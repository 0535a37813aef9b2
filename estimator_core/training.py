"""train_and_evaluate: evaluation (and export) at checkpoints while training, in one process.

The loop, in pseudo-code (tf.estimator's ``run_local``)::

    restore each EvalSpec's recorded history (BestExporter's best survives a restart)
    evaluate the latest checkpoint if a killed run saved it but did not evaluate it
    estimator.train(train_spec.input_fn, hooks=train_spec.hooks, max_steps=train_spec.max_steps,
                    saving_listeners=train_spec.saving_listeners + [evaluate_at_checkpoints])
        # one call: the TrainSpec hooks see one begin()/end(), keep their timers, and any stop
        # they request ends the run. After each checkpoint save, every EvalSpec that is due
        # (EvalSchedule: every_n_steps, which adds save steps, or throttle_secs) evaluates the
        # weights in memory (they equal that checkpoint) and runs its exporters, before the
        # TrainSpec hooks see that step (so early stopping sees the evaluation).
    final evaluation of every EvalSpec at the last checkpoint (is_the_final_export=True)

Training continues one input pipeline and nothing is rebuilt, reloaded or retraced between
evaluations. Killed and started again with the same arguments, it resumes from the latest
checkpoint and ends at the same max_steps.

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
from estimator_core.estimator import Estimator
from estimator_core.eval_history import read_eval_history
from estimator_core.exporters import Exporter
from estimator_core.schedule import EvalSchedule

logger = logging.getLogger("estimator_core")


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """How to train: ``input_fn``, ``max_steps`` (None: until the input ends), hooks, listeners."""

    input_fn: Callable[..., Any]
    max_steps: int | None = None
    hooks: Sequence[hooks_lib.SessionRunHook] = ()
    saving_listeners: Sequence[hooks_lib.CheckpointSaverListener] = ()

    def __post_init__(self) -> None:
        _check_input_fn(self.input_fn)
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"Must specify max_steps > 0, given: {self.max_steps}")
        object.__setattr__(self, "hooks", _checked_hooks(self.hooks))
        listeners = tuple(self.saving_listeners or ())
        for listener in listeners:
            if not hooks_lib.is_saving_listener(listener):
                raise TypeError(
                    "All saving_listeners must be `CheckpointSaverListener` instances, given: "
                    f"{listener!r}"
                )
        object.__setattr__(self, "saving_listeners", listeners)


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """How to evaluate: ``steps`` batches (None: all) of ``input_fn``, under ``name``.

    When (:class:`~estimator_core.schedule.EvalSchedule`): every ``every_n_steps`` global steps
    when given (an addition to tf.estimator; the Estimator saves a checkpoint there), else after
    the first checkpoint saved ``throttle_secs`` or more after the previous evaluation (the
    first checkpoint after the start always), as tf.estimator. ``start_delay_secs`` applies
    to a separate evaluator task only. ``exporters`` run after each evaluation of this spec.
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
        _check_input_fn(self.input_fn)
        if self.steps is not None and self.steps <= 0:
            raise ValueError(f"Must specify steps > 0, given: {self.steps}")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"`name` must be string, given: {self.name!r}")
        if self.every_n_steps is not None and self.every_n_steps <= 0:
            raise ValueError(
                f"EvalSpec({self.name!r}): every_n_steps must be > 0, given: {self.every_n_steps}"
            )
        if self.start_delay_secs < 0:
            raise ValueError(f"Must specify start_delay_secs >= 0, given: {self.start_delay_secs}")
        if self.throttle_secs < 0:
            raise ValueError(f"Must specify throttle_secs >= 0, given: {self.throttle_secs}")
        object.__setattr__(self, "hooks", _checked_hooks(self.hooks))
        object.__setattr__(self, "exporters", _checked_exporters(self.exporters))


class TrainAndEvaluateResult(NamedTuple):
    """``metrics``: the last results; ``exports``: paths of the SavedModels written.

    With one EvalSpec these are its results dict and a list of paths (tf.estimator's shape);
    with a list of EvalSpecs, dicts keyed by eval name.
    """

    metrics: Any
    exports: Any


def train_and_evaluate(
    estimator: Estimator, train_spec: TrainSpec, eval_spec: EvalSpec | Sequence[EvalSpec]
) -> TrainAndEvaluateResult:
    """Train ``estimator`` to ``train_spec.max_steps``, evaluating (and exporting) along the way.

    ``eval_spec`` may be a list of EvalSpecs with distinct names: each evaluates when it is due,
    and the final evaluation runs them all. Returns a :class:`TrainAndEvaluateResult`.
    Needs checkpoints to evaluate: a ``RunConfig`` that saves some during training, or
    ``EvalSpec.every_n_steps`` (``ValueError`` otherwise, as tf.estimator).

    Exporters get ``is_the_final_export=True`` at the evaluation of ``max_steps``, or, when
    training ends earlier (an early stop, the end of the input), at the final evaluation; an
    exporter that already exported that step is not called again.

    In a multi-worker ``TF_CONFIG`` cluster, a chief or worker task trains to
    ``train_spec.max_steps`` and evaluates nothing (its results are None, its exports empty);
    an ``evaluator`` task runs :func:`run_evaluator`.
    """
    if not isinstance(estimator, Estimator):
        raise TypeError(
            "`estimator` must have type `tf.estimator.Estimator` (estimator_core.Estimator), "
            f"given {type(estimator).__name__}"
        )
    single, specs = _specs(eval_spec)
    _check_specs(train_spec, specs)
    config = estimator.config
    if config.task_type == EVALUATOR and config.task_id > 0:
        raise ValueError(
            "For distributed training, there can only be one `evaluator` task (with task id "
            f"0). Given task id: {config.task_id}"
        )
    if config.task_type == EVALUATOR:
        return run_evaluator(estimator, train_spec, eval_spec)
    if config.cluster.is_multi_worker:
        _train(estimator, train_spec)
        if single:
            return TrainAndEvaluateResult(None, [])
        return TrainAndEvaluateResult(
            {spec.name: None for spec in specs}, {spec.name: [] for spec in specs}
        )
    state = {spec.name: _EvalState(spec, estimator, train_spec.max_steps) for spec in specs}
    start = _latest_step(estimator)
    for eval_state in state.values():  # a run killed between its save and its evaluation
        if start and eval_state.due(start):
            eval_state.evaluate(start)
    _train(estimator, train_spec, _EvaluateAtCheckpoints(list(state.values()), start))
    step = _latest_step(estimator)
    for eval_state in state.values():
        eval_state.evaluate(step, final=True)
    return _result(state, single)


def _train(estimator: Estimator, train_spec: TrainSpec, *listeners: Any) -> None:
    estimator.train(
        input_fn=train_spec.input_fn,
        hooks=list(train_spec.hooks),
        max_steps=train_spec.max_steps,
        saving_listeners=list(train_spec.saving_listeners) + list(listeners),
    )


def _result(state: dict[str | None, _EvalState], single: bool) -> TrainAndEvaluateResult:
    """The last results and exports: of the one EvalSpec when ``single``, else by name."""
    if single:
        (only,) = state.values()
        return TrainAndEvaluateResult(only.last_result, only.exports)
    return TrainAndEvaluateResult(
        {name: s.last_result for name, s in state.items()},
        {name: s.exports for name, s in state.items()},
    )


class _EvaluateAtCheckpoints(hooks_lib.CheckpointSaverListener):
    """After each checkpoint save of the run (not the save it started from), the evaluations
    that are due; asks for saves at the steps the every_n_steps schedules evaluate."""

    def __init__(self, states: list[_EvalState], start_step: int) -> None:
        self._states = states
        self._start_step = start_step

    def next_save_step(self, global_step: int) -> int | None:
        steps = [s.schedule.next_stop(global_step) for s in self._states if s.spec.every_n_steps]
        return min((s for s in steps if s is not None), default=None)

    def after_save(self, session: Any, global_step_value: int) -> None:
        if global_step_value == self._start_step:
            return
        for state in self._states:
            if state.due(global_step_value):
                state.evaluate(global_step_value)


class _EvalState:
    """One EvalSpec's evaluations in a run: when they are due, the last one, its exports."""

    def __init__(self, spec: EvalSpec, estimator: Any, max_steps: int | None) -> None:
        self.spec = spec
        self.schedule = EvalSchedule(spec.every_n_steps, spec.throttle_secs, max_steps)
        self.estimator = estimator
        self.last_result: dict[str, Any] | None = None
        self.exports: list[str] = []
        history = read_eval_history(estimator.eval_dir(spec.name))
        self.last_step: int | None = history[-1]["global_step"] if history else None
        self.last_time: float | None = None
        self._final = False
        self._exported_last: set[str] = set()  # exporters that exported last_step
        start = _latest_step(estimator)
        for exporter in spec.exporters:
            exporter.restore([h for h in history if h["global_step"] < start])

    def due(self, step: int) -> bool:
        since = None if self.last_time is None else time.monotonic() - self.last_time
        return self.schedule.due(step, self.last_step, since)

    def evaluate(
        self, step: int, final: bool | None = None, checkpoint_path: str | None = None
    ) -> None:
        """Evaluate ``step`` (unless it was just evaluated) and run the exporters;
        ``final`` (default: ``step`` is max_steps) marks the run's last evaluation."""
        final = self.schedule.finished(step) if final is None else final
        if self._final:
            return
        evaluated = self.last_step == step and (self.last_result is not None or not final)
        if evaluated and not final:
            return
        checkpoint = checkpoint_path or self.estimator.latest_checkpoint()
        if not evaluated:
            self.last_result = _checked_result(
                self.estimator.evaluate(
                    input_fn=self.spec.input_fn,
                    steps=self.spec.steps,
                    hooks=self.spec.hooks,
                    checkpoint_path=checkpoint,
                    name=self.spec.name,
                )
            )
            self.last_step, self.last_time = step, time.monotonic()
            self._exported_last = set()
        for exporter in self.spec.exporters:
            if exporter.name in self._exported_last:
                continue
            base = os.path.join(self.estimator.model_dir, "export", exporter.name)
            path = exporter.export(self.estimator, base, checkpoint, self.last_result, final)
            if path is not None:
                self.exports.append(path)
                self._exported_last.add(exporter.name)
        self._final = final


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
    single, specs = _specs(eval_spec)
    _check_specs(train_spec, specs)
    state = {spec.name: _EvalState(spec, estimator, train_spec.max_steps) for spec in specs}
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


def _specs(eval_spec: Any) -> tuple[bool, list[Any]]:
    """(one EvalSpec given?, the EvalSpecs)."""
    if isinstance(eval_spec, (list, tuple)):
        return False, list(eval_spec)
    return True, [eval_spec]


def _check_specs(train_spec: TrainSpec, specs: list[EvalSpec]) -> None:
    if not isinstance(train_spec, TrainSpec):
        raise TypeError(
            "`train_spec` must have type `tf.estimator.TrainSpec` (estimator_core.TrainSpec), "
            f"given {type(train_spec).__name__}"
        )
    if not specs:
        raise ValueError("eval_spec: give at least one EvalSpec")
    for spec in specs:
        if not isinstance(spec, EvalSpec):
            raise TypeError(
                "`eval_spec` must have type `tf.estimator.EvalSpec` (estimator_core.EvalSpec), "
                f"given {type(spec).__name__}"
            )
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"eval_spec: EvalSpec names must be distinct, got {names}")


def _check_input_fn(input_fn: Any) -> None:
    if not callable(input_fn):
        raise TypeError(f"`input_fn` must be callable, given: {input_fn!r}")


def _checked_hooks(hooks: Sequence[Any]) -> tuple[Any, ...]:
    hooks = tuple(hooks or ())
    for hook in hooks:
        if not hooks_lib.is_session_run_hook(hook):
            raise TypeError(f"All hooks must be `SessionRunHook` instances, given: {hook!r}")
    return hooks


def _checked_exporters(exporters: Any) -> tuple[Exporter, ...]:
    if exporters is None:
        return ()
    if isinstance(exporters, Exporter):
        exporters = (exporters,)
    elif isinstance(exporters, (list, tuple)):
        exporters = tuple(exporters)
    else:
        raise TypeError(f"`exporters` must be an Exporter or a list of them, given {exporters!r}")
    names: set[str] = set()
    for exporter in exporters:
        if not isinstance(exporter, Exporter):
            raise TypeError(f"`exporters` must be an Exporter, given {exporter!r}")
        if not exporter.name:
            raise ValueError(
                "An Exporter cannot have a name that is `None` or empty. All exporter names: "
                f"{[e.name for e in exporters]}"
            )
        if not isinstance(exporter.name, str):
            raise ValueError(f"An Exporter must have a string name. Given: {exporter.name!r}")
        if exporter.name in names:
            raise ValueError(
                f"`exporters` must have unique names. Such a name cannot be `None`. "
                f"{exporter.name!r} already exists."
            )
        names.add(exporter.name)
    return exporters


def _checked_result(result: Any) -> dict[str, Any]:
    """tf.estimator's checks of what evaluate() returned (a broken Estimator subclass)."""
    if not isinstance(result, dict):
        raise TypeError(f"`Estimator.evaluate` should return dict. Given {type(result)}.")
    if not result:
        raise ValueError("Internal error: `Estimator.evaluate` should never return empty metrics.")
    if "global_step" not in result:
        raise ValueError(
            "Internal error: `Estimator.evaluate` result should have `global_step` in result. "
            f"Given {result}"
        )
    return result


def _latest_step(estimator: Any) -> int:
    latest = estimator.latest_checkpoint()
    return checkpoint_step(latest) if latest else 0
