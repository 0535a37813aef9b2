"""Early stopping: rules over recorded evaluations, and the hooks of ``tf.estimator.experimental``.

Every evaluation records its results in its eval dir (:mod:`estimator_core.eval_history`:
``eval_history.json``, or the event files of a tf.estimator eval dir). A *stopping rule*
reads such a history and says whether to stop; it is one method, ``should_stop(history)``, so
any loop can use it::

    rule = NoImprovement("loss", patience_evals=3, min_delta=1e-3)   # or patience_steps=...
    while not done:
        estimator.train(input_fn, max_steps=next_target)
        estimator.evaluate(eval_input_fn, name="heldout")
        if rule.should_stop(read_eval_history(estimator.eval_dir("heldout"))):
            break

The hooks check a rule during training (every ``run_every_steps`` global steps, or
``run_every_secs`` seconds, and at the first step they see) and request a stop when it holds;
they keep their timer across train() calls. In ``train_and_evaluate`` the evaluation at a
checkpoint runs before the hooks look at that step, and a stop ends the run (after the final
evaluation).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from estimator_core.eval_history import read_eval_history
from estimator_core.eval_history import read_eval_metrics as read_eval_metrics  # tf.estimator's
from estimator_core.hooks import PeriodicHook, SessionRunArgs, SessionRunContext, SessionRunValues

History = Sequence[Mapping[str, Any]]


class StoppingRule(Protocol):
    """Says, from the recorded evaluations (oldest first, each with ``global_step``), whether
    training should stop."""

    def should_stop(self, history: History) -> bool: ...


@dataclasses.dataclass(frozen=True)
class Threshold:
    """Stop once an evaluation at step >= ``min_steps`` has ``metric`` beyond ``threshold``:
    above it when ``higher_is_better``, else below it (strictly)."""

    metric: str
    threshold: float
    higher_is_better: bool = True
    min_steps: int = 0

    def should_stop(self, history: History) -> bool:
        beyond = operator.gt if self.higher_is_better else operator.lt
        return any(
            beyond(_value(entry, self.metric), self.threshold)
            for entry in history
            if entry["global_step"] >= self.min_steps
        )


@dataclasses.dataclass(frozen=True)
class NoImprovement:
    """Stop when ``metric`` has not improved for a while.

    Evaluations at steps below ``min_steps`` are ignored. At each evaluation E, the *window* is
    the evaluations of the last ``patience_steps`` global steps up to E (steps in
    ``(step(E) - patience_steps, step(E)]``), or the last ``patience_evals`` evaluations; the
    rule holds at E when some evaluation precedes the window and none in the window improves
    on the best value before it by more than ``min_delta`` (lower is better unless
    ``higher_is_better``; a tie is no improvement). ``should_stop`` is True when the rule holds
    at any evaluation of the history (tf.estimator's ``stop_if_no_decrease_hook`` semantics with
    ``patience_steps``; the pipeline's patience in evaluations with ``patience_evals``).
    """

    metric: str
    higher_is_better: bool = False
    patience_steps: int | None = None
    patience_evals: int | None = None
    min_delta: float = 0.0
    min_steps: int = 0

    def __post_init__(self) -> None:
        if (self.patience_steps is None) == (self.patience_evals is None):
            raise ValueError("NoImprovement: give exactly one of patience_steps, patience_evals")
        if self.patience_evals is not None and self.patience_evals <= 0:
            raise ValueError(
                f"NoImprovement: patience_evals must be > 0, got {self.patience_evals}"
            )
        if self.min_delta < 0:
            raise ValueError(f"NoImprovement: min_delta must be >= 0, got {self.min_delta}")

    def should_stop(self, history: History) -> bool:
        entries = [e for e in history if e["global_step"] >= self.min_steps]
        values = [_value(e, self.metric) for e in entries]
        sign = 1.0 if self.higher_is_better else -1.0
        for now in range(len(entries)):
            first = self._window_start(entries, now)
            if first == 0:
                continue
            best_before = max(sign * v for v in values[:first])
            if not any(sign * v > best_before + self.min_delta for v in values[first : now + 1]):
                return True
        return False

    def _window_start(self, entries: list[Mapping[str, Any]], now: int) -> int:
        if self.patience_evals is not None:
            return max(now + 1 - self.patience_evals, 0)
        assert self.patience_steps is not None
        oldest = entries[now]["global_step"] - self.patience_steps
        return next(i for i in range(now + 1) if entries[i]["global_step"] > oldest)


# The default of run_every_secs, told apart from an explicit 60 (tf.estimator refused both
# run_every_secs and run_every_steps; run_every_steps alone means steps here).
_EVERY_60_SECS = type("_DefaultSecs", (float,), {"__repr__": lambda self: "60"})(60)


class _StopOnPredicateHook(PeriodicHook):
    """Requests a stop when ``should_stop_fn()`` is True; checks at the first step it sees,
    then every period, its timer kept across train() calls."""

    def __init__(
        self,
        should_stop_fn: Callable[[], bool],
        run_every_secs: float | None = _EVERY_60_SECS,
        run_every_steps: int | None = None,
    ) -> None:
        if not callable(should_stop_fn):
            raise TypeError("should_stop_fn must be callable")
        run_every_secs = _period(run_every_secs, run_every_steps)
        super().__init__(run_every_steps, run_every_secs, restart_each_call=False)
        self._should_stop = should_stop_fn

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        if self.trigger(int(run_values.results)) is not None and self._should_stop():
            run_context.request_stop()


def make_early_stopping_hook(
    estimator: Any,
    should_stop_fn: Callable[[], bool],
    run_every_secs: float | None = _EVERY_60_SECS,
    run_every_steps: int | None = None,
) -> PeriodicHook:
    """A hook that stops training when ``should_stop_fn()`` returns True (checked periodically)."""
    _check_estimator(estimator)
    return _StopOnPredicateHook(should_stop_fn, run_every_secs, run_every_steps)


def rule_hook(
    estimator: Any,
    rule: StoppingRule,
    eval_dir: str | None = None,
    run_every_secs: float | None = _EVERY_60_SECS,
    run_every_steps: int | None = None,
) -> PeriodicHook:
    """A hook that stops training when ``rule`` holds for the history recorded in ``eval_dir``
    (default ``estimator.eval_dir()``)."""
    _check_estimator(estimator)
    directory = eval_dir or estimator.eval_dir()
    return _StopOnPredicateHook(
        lambda: rule.should_stop(read_eval_history(directory)), run_every_secs, run_every_steps
    )


def stop_if_higher_hook(
    estimator: Any,
    metric_name: str,
    threshold: float,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = _EVERY_60_SECS,
    run_every_steps: int | None = None,
) -> PeriodicHook:
    """Stop once an evaluation at step >= ``min_steps`` has ``metric_name`` > ``threshold``."""
    rule = Threshold(metric_name, threshold, higher_is_better=True, min_steps=min_steps)
    return rule_hook(estimator, rule, eval_dir, run_every_secs, run_every_steps)


def stop_if_lower_hook(
    estimator: Any,
    metric_name: str,
    threshold: float,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = _EVERY_60_SECS,
    run_every_steps: int | None = None,
) -> PeriodicHook:
    """Stop once an evaluation at step >= ``min_steps`` has ``metric_name`` < ``threshold``."""
    rule = Threshold(metric_name, threshold, higher_is_better=False, min_steps=min_steps)
    return rule_hook(estimator, rule, eval_dir, run_every_secs, run_every_steps)


def stop_if_no_increase_hook(
    estimator: Any,
    metric_name: str,
    max_steps_without_increase: int,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = _EVERY_60_SECS,
    run_every_steps: int | None = None,
) -> PeriodicHook:
    """Stop when ``metric_name`` has not increased for ``max_steps_without_increase`` steps."""
    rule = NoImprovement(
        metric_name,
        higher_is_better=True,
        patience_steps=max_steps_without_increase,
        min_steps=min_steps,
    )
    return rule_hook(estimator, rule, eval_dir, run_every_secs, run_every_steps)


def stop_if_no_decrease_hook(
    estimator: Any,
    metric_name: str,
    max_steps_without_decrease: int,
    eval_dir: str | None = None,
    min_steps: int = 0,
    run_every_secs: float | None = _EVERY_60_SECS,
    run_every_steps: int | None = None,
) -> PeriodicHook:
    """Stop when ``metric_name`` has not decreased for ``max_steps_without_decrease`` steps."""
    rule = NoImprovement(
        metric_name,
        higher_is_better=False,
        patience_steps=max_steps_without_decrease,
        min_steps=min_steps,
    )
    return rule_hook(estimator, rule, eval_dir, run_every_secs, run_every_steps)


def _period(run_every_secs: float | None, run_every_steps: int | None) -> float | None:
    if run_every_steps is None:
        return run_every_secs
    if run_every_secs is not None and run_every_secs is not _EVERY_60_SECS:
        raise ValueError("Only one of run_every_secs and run_every_steps can be set.")
    return None


def _check_estimator(estimator: Any) -> None:
    if not callable(getattr(estimator, "eval_dir", None)):
        raise TypeError(
            "`estimator` must have type `tf.estimator.Estimator` (an estimator_core.Estimator),"
            f" got {type(estimator).__name__}"
        )


def _value(entry: Mapping[str, Any], name: str) -> Any:
    if name not in entry:
        raise ValueError(
            f"early stopping: metric {name!r} not in the recorded evaluation at step "
            f"{entry.get('global_step')}: {sorted(entry)}"
        )
    return entry[name]
