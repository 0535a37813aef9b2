"""EvalSchedule: when a train-and-evaluate loop evaluates, as a small value any loop can use.

Both of the project's loops use it: :func:`estimator_core.train_and_evaluate` (one train()
call, evaluations at checkpoints) and a loop that trains in rounds, one
``train(max_steps=...)`` call per round, e.g. a pipeline's tasks on a warm Estimator::

    schedule = EvalSchedule(every_n_steps=200, max_steps=1000)
    rule = early_stopping.NoImprovement("loss", patience_evals=3)
    step = checkpoints.latest_checkpoint_step(model_dir) or 0
    while not schedule.finished(step):
        target = schedule.next_stop(step)
        step = estimator.train(input_fn, max_steps=target).get_global_step_value()
        estimator.evaluate(eval_input_fn, name="heldout")
        history = eval_history.read_eval_history(estimator.eval_dir("heldout"))
        if step < target or rule.should_stop(history):   # the input ended, or no improvement
            break
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EvalSchedule:
    """Evaluate every ``every_n_steps`` global steps when given, else at the first checkpoint
    saved ``throttle_secs`` or more after the previous evaluation; train to ``max_steps``
    (None: until the input ends)."""

    every_n_steps: int | None = None
    throttle_secs: float = 600
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.every_n_steps is not None and self.every_n_steps <= 0:
            raise ValueError(f"every_n_steps must be > 0, given: {self.every_n_steps}")
        if self.throttle_secs < 0:
            raise ValueError(f"Must specify throttle_secs >= 0, given: {self.throttle_secs}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"Must specify max_steps > 0, given: {self.max_steps}")

    def next_stop(self, global_step: int) -> int | None:
        """The global step a round starting at ``global_step`` trains to: the next multiple of
        ``every_n_steps``, at most ``max_steps`` (None: no step bound)."""
        targets = []
        if self.every_n_steps is not None:
            targets.append((global_step // self.every_n_steps + 1) * self.every_n_steps)
        if self.max_steps is not None:
            targets.append(self.max_steps)
        return min(targets) if targets else None

    def due(
        self, global_step: int, last_evaluated: int | None, seconds_since_last: float | None
    ) -> bool:
        """Whether a checkpoint at ``global_step`` is evaluated, the previous evaluation having
        been at step ``last_evaluated`` ``seconds_since_last`` seconds ago (None: none yet).
        The final step (``finished``) is always due; a step already evaluated never is."""
        if last_evaluated == global_step:
            return False
        if self.finished(global_step):
            return True
        if self.every_n_steps is not None:
            last = last_evaluated or 0
            return global_step // self.every_n_steps > last // self.every_n_steps
        return seconds_since_last is None or seconds_since_last >= self.throttle_secs

    def finished(self, global_step: int) -> bool:
        """True once ``global_step`` reached ``max_steps``."""
        return self.max_steps is not None and global_step >= self.max_steps
