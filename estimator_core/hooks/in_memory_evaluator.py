"""InMemoryEvaluatorHook: evaluations during train(), on the weights being trained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from estimator_core.hooks.periodic import PeriodicHook
from estimator_core.hooks.session_run_hook import (
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
    is_session_run_hook,
)


class InMemoryEvaluatorHook(PeriodicHook):
    """Evaluates ``estimator`` on ``input_fn`` during its own train(), on the weights in memory.

    TF1 built a separate evaluation graph and copied the training variables into it. TF2 reads
    the very variables being trained, with :meth:`Estimator.evaluate_in_memory`: once when
    training starts (at the global step it starts from, as TF1 did), every ``every_n_iter``
    global steps (at its multiples: the compiled loop ends there; TF1 counted the hook's own
    iterations, which is the same when training starts at a multiple) and once more at the end
    of train() (unless it just evaluated that step). Each runs ``steps`` batches (None: until
    the input ends) with ``hooks`` and writes its results like evaluate() to
    ``estimator.eval_dir(name)`` (summaries and ``eval_history.json``); the results'
    ``global_step`` is the training step, whatever the latest checkpoint. Training is not
    disturbed: the weights are only read, the training input iterator is not touched (the
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
        if not callable(getattr(estimator, "evaluate_in_memory", None)):
            raise TypeError(
                "InMemoryEvaluatorHook: estimator must be an estimator_core.Estimator, got "
                f"{type(estimator).__name__}"
            )
        if every_n_iter is None or every_n_iter <= 0:
            raise ValueError(f"InMemoryEvaluatorHook: every_n_iter must be > 0, got {every_n_iter}")
        if steps is not None and steps <= 0:
            raise ValueError(f"InMemoryEvaluatorHook: steps must be > 0 or None, got {steps}")
        for hook in hooks or ():
            if not is_session_run_hook(hook):
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
        self._step = global_step
        self._evaluate(global_step)

    def before_run(self, run_context: SessionRunContext) -> SessionRunArgs:
        return SessionRunArgs("global_step")

    def after_run(self, run_context: SessionRunContext, run_values: SessionRunValues) -> None:
        self._step = step = int(run_values.results)
        if self.trigger(step) is not None:
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
        results = self._estimator.evaluate_in_memory(
            self._input_fn, steps=self._steps, hooks=self._hooks, name=self._name
        )
        self._last_evaluated = int(results["global_step"])
        self.results.append(results)
