"""Runs the legacy tf.estimator anchor (``run.sh`` in the legacy directory) and reads its JSON.

Two runs: ``run.sh --out FILE --scenarios AD`` (scenario A on TFRecords; D = predict and export,
on scenario B's model) and ``run.sh --inmemory --steps N`` (framework-bound steady steps/s).
A failed run is recorded as ``{"error": ...}`` and the benchmark goes on without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any

from bench.common import data_dir, legacy_dir, progress, timed

TIMEOUT_S = 3600  # the first run also installs TF 2.15 into its own venv


def _run(args: list[str]) -> tuple[str, float]:
    """Run ``run.sh args``; returns (stdout, wall seconds); raises RuntimeError on failure."""
    script = legacy_dir() / "run.sh"
    if not script.exists():
        raise RuntimeError(f"{script} not found (set LEGACY_BENCH_DIR)")
    env = {**os.environ, "BENCH_DATA_DIR": data_dir()}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc, wall = timed(
            lambda: subprocess.run(
                ["bash", str(script), *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"run.sh {' '.join(args)} timed out after {TIMEOUT_S} s") from err
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"run.sh {' '.join(args)} exited {proc.returncode}:\n{tail}")
    return proc.stdout, wall


def _last_json_line(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("run.sh printed no JSON line")


def run_scenarios(rounds: int = 10) -> dict[str, Any]:
    """Legacy scenarios A and D (``--scenarios AD``): the full JSON, or ``{"error": ...}``."""
    progress("legacy: run.sh --scenarios AD (the first run installs its TF 2.15 venv)")
    with tempfile.TemporaryDirectory(prefix="legacy-bench-") as tmp:
        out = os.path.join(tmp, "legacy_AD.json")
        try:
            _, wall = _run(["--out", out, "--scenarios", "AD", "--rounds", str(rounds)])
            with open(out) as f:
                result = json.load(f)
        except (RuntimeError, OSError, ValueError) as err:
            progress(f"legacy AD failed: {err}")
            return {"error": str(err)}
    result["subprocess_wall_s"] = wall
    return result


def run_inmemory(steps: int = 2000) -> dict[str, Any]:
    """Legacy in-memory training (``--inmemory --steps N``): its JSON, or ``{"error": ...}``."""
    progress(f"legacy: run.sh --inmemory --steps {steps}")
    try:
        stdout, wall = _run(["--inmemory", "--steps", str(steps)])
        result = _last_json_line(stdout)
    except (RuntimeError, ValueError) as err:
        progress(f"legacy in-memory failed: {err}")
        return {"error": str(err)}
    result["subprocess_wall_s"] = wall
    return result


def summary(scenarios: dict[str, Any], inmemory: dict[str, Any]) -> dict[str, Any]:
    """The legacy figures the report compares with (None where a run failed)."""
    res = scenarios.get("results", {})
    a, d, b = res.get("A_loop", {}), res.get("D_predict_export", {}), res.get("B_straight", {})

    def get(node: dict, *keys: str) -> Any:
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    return {
        "inmemory_steps": inmemory.get("steps"),
        "inmemory_steady_steps_per_s": inmemory.get("steady_steps_per_s"),
        "inmemory_train_call_fixed_cost_s": inmemory.get("train_call_fixed_cost_s"),
        "a_total_s": a.get("total_s"),
        "a_median_round_s": get(a, "round_s", "median"),
        "a_train_fixed_cost_s": a.get("train_fixed_cost_s"),
        "a_eval_fixed_cost_s": a.get("eval_fixed_cost_s"),
        "a_round_switch_s": a.get("fixed_cost_per_round_s"),
        "a_per_round_overhead_s": get(a, "per_round_overhead_s", "median"),
        "a_train_step_ms": a.get("train_median_step_ms"),
        "a_eval_step_ms": a.get("eval_median_step_ms"),
        "a_full_eval_acc": get(a, "full_eval_10000", "accuracy"),
        "b_steady_steps_per_s": get(b, "steady", "window_steps_per_s"),
        "predict_single_examples_per_s": get(d, "predict_single", "examples_per_s"),
        "predict_batched_examples_per_s": get(d, "predict_batched", "examples_per_s"),
        "export_saved_model_s": d.get("export_saved_model_s"),
        "savedmodel_serve_examples_per_s": get(d, "savedmodel_serve", "examples_per_s"),
    }
