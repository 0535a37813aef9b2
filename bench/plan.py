"""How much work each benchmark part does: the full plan, and a quick one for smoke tests."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes of every measurement (steps, rounds, repeats); see README.md for what each means."""

    inmemory_steps: int = 2000  # timed steps of each in-memory training measurement
    inmemory_warmup: int = 100  # steps run before timing (tracing, first iterator)
    repeats: int = 5  # in-memory measurements per framework; the median is reported
    rounds: int = 10  # scenario A: rounds of train(steps=train_steps) + evaluate(eval_steps)
    train_steps: int = 200
    eval_steps: int = 20
    probes: int = 3  # scenario A: train(steps=1) and evaluate(steps=1) calls, fixed costs
    long_steps: int = 2000  # scenario A: one long train call, for the per-step time
    run_legacy: bool = True


FULL = Plan()
QUICK = Plan(
    inmemory_steps=200,
    inmemory_warmup=20,
    repeats=1,
    rounds=3,
    train_steps=20,
    eval_steps=5,
    probes=2,
    long_steps=200,
    run_legacy=False,
)
