"""Periodic hooks: act every N global steps or every S seconds (a public base class)."""

from __future__ import annotations

import time

from estimator_core.hooks.session_run_hook import SessionRunHook


class Timer:
    """Triggers at every multiple of ``every_steps`` global steps, or every ``every_secs`` seconds.

    Before its first trigger (and before :meth:`start`) it triggers at any step.
    """

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
        """Count from ``step`` and now, as if it had just triggered."""
        self.last_step, self.last_time = step, time.time()

    def should_trigger(self, step: int) -> bool:
        if self.last_step is None:
            return True
        if self.every_steps is not None:
            return step // self.every_steps > self.last_step // self.every_steps
        assert self.last_time is not None and self.every_secs is not None
        return time.time() >= self.last_time + self.every_secs

    def next_step(self, step: int) -> int | None:
        """The next step at which a steps timer triggers (the next one before any trigger)."""
        if self.every_steps is None:
            return None
        if self.last_step is None:
            return step + 1
        return (step // self.every_steps + 1) * self.every_steps

    def mark(self, step: int) -> tuple[float | None, int | None]:
        """Record a trigger; returns (seconds, steps) since the previous one."""
        now = time.time()
        elapsed = None if self.last_time is None else now - self.last_time
        steps = None if self.last_step is None else step - self.last_step
        self.last_time, self.last_step = now, step
        return elapsed, steps


class PeriodicHook(SessionRunHook):
    """A hook that acts at multiples of ``every_steps`` global steps or every ``every_secs``
    seconds: the compiled loop ends at its steps, and :meth:`trigger` says whether to act now.

    ``restart_each_call=True``: the count restarts at the global step each train()/evaluate()
    call starts from (a rate, a summary cadence). ``False``: the hook keeps its timer for its
    whole life, across calls, and acts at the first step it sees (tf.estimator's early
    stopping hooks did: a check at the first step, then every period).
    """

    def __init__(
        self, every_steps: int | None, every_secs: float | None, restart_each_call: bool = True
    ) -> None:
        self._timer = Timer(every_steps, every_secs)
        self._restart_each_call = restart_each_call

    def start_at(self, global_step: int) -> None:
        if self._restart_each_call:
            self._timer.start(global_step)

    def next_trigger_step(self, global_step: int) -> int | None:
        return self._timer.next_step(global_step)

    def trigger(self, step: int) -> tuple[float | None, int | None] | None:
        """``(seconds, steps)`` since the previous trigger when one is due at ``step`` (and
        records it), else None."""
        if not self._timer.should_trigger(step):
            return None
        return self._timer.mark(step)
