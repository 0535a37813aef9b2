"""Framework-bound training speed on 8,192 in-memory rows: estimator_core and plain TF2/Keras.

Each framework is a *runner*: a callable that trains ``n`` more steps and returns once they are
done. All runners are warmed up first, then measured round-robin (the order rotates each repeat)
so that the noise of a shared 2-core machine falls on all of them alike. Per repeat and runner:
an untimed 1-step call, a 1-step call (the fixed cost of a call) and an N-step call; steady steps/s = N / (wall(N) -
wall(1)), as legacy_inmemory.py computes it; the median over repeats is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import baselines, core_bench
from bench.common import median, steady_rate, timed
from bench.plan import Plan

Runner = Callable[[int], None]

# name -> (factory(model_dir) -> runner, whether the warmup is a full N-step epoch)
RUNNERS: dict[str, tuple[Callable[[str], Runner], bool]] = {
    "estimator_core": (core_bench.inmemory_runner, False),
    "estimator_core_graph": (
        lambda d: core_bench.inmemory_runner(d + "-graph", backend="graph"),
        False,
    ),
    "estimator_core_xla": (
        lambda d: core_bench.inmemory_runner(d + "-xla", jit_compile=True),
        False,
    ),
    "tf_function_per_step": (lambda _: baselines.tf_function_per_step_runner(), False),
    "tf_function_100_per_call": (lambda _: baselines.tf_function_multi_step_runner(100), False),
    "keras_fit": (lambda _: baselines.keras_fit_runner(), True),
}


def _sample(run: Runner, steps: int) -> dict[str, Any]:
    """One 1-step call and one ``steps``-step call, after an untimed 1-step call.

    The untimed call keeps other runners' side effects out of this one's figures: an
    estimator_core call with ``tf_random_seed`` set runs ``tf.random.set_seed``, which clears the
    eager context's caches for every ``tf.function`` in the process.
    """
    run(1)
    _, fixed = timed(lambda: run(1))
    _, wall = timed(lambda: run(steps))
    return {"fixed_s": fixed, "wall_s": wall, "steady_steps_per_s": steady_rate(steps, wall, fixed)}


def _summary(samples: list[dict[str, Any]], steps: int, warmup_s: float) -> dict[str, Any]:
    rates = [s["steady_steps_per_s"] for s in samples]
    return {
        "steps": steps,
        "warmup_s": warmup_s,
        "call_fixed_cost_s": median([s["fixed_s"] for s in samples]),
        "steady_steps_per_s": median(rates),
        "best_steps_per_s": max((r for r in rates if r is not None), default=None),
        "samples": samples,
    }


def paired_ratios(samples: dict[str, list[dict[str, Any]]], ref: str) -> dict[str, float | None]:
    """Median over repeats of ``ref``'s rate / each other runner's rate in the same repeat.

    Runners of one repeat run seconds apart, so these ratios ride out slow swings in machine
    load better than a ratio of two medians does.
    """
    out = {}
    for name, other in samples.items():
        if name == ref:
            continue
        pairs = zip(samples[ref], other)
        out[name] = median(
            [
                a["steady_steps_per_s"] / b["steady_steps_per_s"]
                for a, b in pairs
                if a["steady_steps_per_s"] and b["steady_steps_per_s"]
            ]
        )
    return out


def measure(model_dir: str, plan: Plan) -> dict[str, dict[str, Any]]:
    """Steady steps/s and call fixed cost of every runner (see the module docstring)."""
    runners: dict[str, Runner] = {}
    warmup_s: dict[str, float] = {}
    for name, (factory, full_warmup) in RUNNERS.items():
        runners[name] = factory(model_dir)
        warm = plan.inmemory_steps if full_warmup else plan.inmemory_warmup
        _, warmup_s[name] = timed(lambda run=runners[name], n=warm: run(n))
    names = list(runners)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for repeat in range(plan.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_sample(runners[name], plan.inmemory_steps))
    out = {name: _summary(samples[name], plan.inmemory_steps, warmup_s[name]) for name in names}
    out["estimator_core"]["paired_ratio_vs"] = paired_ratios(samples, "estimator_core")
    return out
