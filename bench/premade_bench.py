"""Premade estimators: estimator_core against TF 2.15's tf.estimator, same data, steps and seeds.

    .venv/bin/python -m bench.premade_bench                      # every case, seeds 1,2,3
    .venv/bin/python -m bench.premade_bench --cases dnn_iris_default --seeds 1 --steps 300

Each case (``bench/premade_cases.py``: the DNN, linear, wide-and-deep and baseline estimators on
scikit-learn's iris, digits and diabetes) runs first in the legacy venv (``$LEGACY_VENV``, default
``$TMPDIR/legacy-estimator-venv``, the one ``../shared/bench/legacy-estimator/run.sh`` installs;
one subprocess per case, through ``bench/premade_legacy.py``), then here, seed by seed, with the
same code. Reported per case: the final evaluation (mean and spread over the seeds) and the
steady training steps/s (median over the seeds; ratio = median of the per-seed ratios). Writes
every figure to ``bench/results/premade-<YYYYmmdd-HHMMSS>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_diabetes, load_digits, load_iris

import estimator_core as est
from bench import premade_cases
from bench.common import REPO_ROOT, progress

RESULTS_DIR = REPO_ROOT / "bench" / "results"
LEGACY_TIMEOUT_S = 1800


def legacy_python() -> Path:
    venv = os.environ.get("LEGACY_VENV") or os.path.join(
        os.environ.get("TMPDIR") or "/tmp", "legacy-estimator-venv"
    )
    return Path(venv) / "bin" / "python"


def write_arrays(path: str) -> None:
    """scikit-learn's data sets as one .npz (the legacy venv has no scikit-learn)."""
    arrays = {}
    for name, loader in (("iris", load_iris), ("digits", load_digits), ("diabetes", load_diabetes)):
        x, y = loader(return_X_y=True)
        arrays[f"{name}_x"], arrays[f"{name}_y"] = x, y
    arrays["digits_x"] = arrays["digits_x"] / 16.0
    np.savez(path, **arrays)


def run_legacy(arrays_path: str, case: premade_cases.Case, seeds: list[int], steps: int) -> dict:
    python = legacy_python()
    if not python.exists():
        return {
            "error": f"no legacy venv at {python.parent.parent} (../shared/bench/legacy-estimator/run.sh installs it)"
        }
    script = Path(__file__).with_name("premade_legacy.py")
    seed_list = ",".join(map(str, seeds))
    try:
        proc = subprocess.run(
            [str(python), str(script), arrays_path, case.name, seed_list, str(steps)],
            capture_output=True,
            text=True,
            timeout=LEGACY_TIMEOUT_S,
            check=False,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""},
        )
    except subprocess.TimeoutExpired:
        return {"error": f"legacy {case.name} timed out after {LEGACY_TIMEOUT_S} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        return {"error": f"legacy {case.name} exited {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def keras_optimizer(name: str, learning_rate: float):
    return lambda: getattr(keras.optimizers, name)(learning_rate=learning_rate)


def run_ours(arrays: dict, case: premade_cases.Case, seeds: list[int], steps: int) -> list[dict]:
    results = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as model_dir:
            results.append(
                premade_cases.run_case(
                    tf, est, keras_optimizer, case, seed, arrays, steps, model_dir
                )
            )
    return results


def summarize(case: premade_cases.Case, ours: list[dict], legacy: dict) -> dict[str, Any]:
    metric = "average_loss" if case.regression else "accuracy"
    row: dict[str, Any] = {"case": case.name, "metric": metric}

    def spread(results: list[dict]) -> dict[str, float]:
        values = [r["metrics"][metric] for r in results]
        return {
            "mean": statistics.fmean(values),
            "min": min(values),
            "max": max(values),
            "values": values,
        }

    row["ours"] = spread(ours)
    row["ours_steps_per_s"] = statistics.median(r["steady_steps_per_s"] for r in ours)
    legacy_results = legacy.get("results")
    if legacy_results:
        row["legacy"] = spread(legacy_results)
        row["legacy_steps_per_s"] = statistics.median(
            r["steady_steps_per_s"] for r in legacy_results
        )
        ratios = [
            o["steady_steps_per_s"] / lg["steady_steps_per_s"]
            for o, lg in zip(ours, legacy_results, strict=True)
            if o["steady_steps_per_s"] and lg["steady_steps_per_s"]
        ]
        row["speed_ratio"] = statistics.median(ratios) if ratios else None
    else:
        row["legacy_error"] = legacy.get("error")
    return row


def table(rows: list[dict]) -> str:
    lines = [
        f"{'case':26} {'metric':13} {'ours mean [min, max]':26} {'legacy mean [min, max]':26} "
        f"{'ours st/s':>9} {'legacy':>8} {'ratio':>6}"
    ]

    def cell(spread: dict | None) -> str:
        if not spread:
            return "n/a"
        return f"{spread['mean']:.3f} [{spread['min']:.3f}, {spread['max']:.3f}]"

    for row in rows:
        legacy_rate = row.get("legacy_steps_per_s")
        ratio = row.get("speed_ratio")
        lines.append(
            f"{row['case']:26} {row['metric']:13} {cell(row['ours']):26} "
            f"{cell(row.get('legacy')):26} {row['ours_steps_per_s']:9.0f} "
            f"{(f'{legacy_rate:.0f}' if legacy_rate else 'n/a'):>8} "
            f"{(f'{ratio:.2f}x' if ratio else 'n/a'):>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated tf_random_seed values")
    parser.add_argument("--steps", type=int, default=2000, help="timed steps (+2 warm-up steps)")
    parser.add_argument("--skip-legacy", action="store_true", help="estimator_core only")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    wanted = [c for c in args.cases.split(",") if c]
    unknown = set(wanted) - set(premade_cases.CASES_BY_NAME)
    if unknown:
        parser.error(
            f"unknown case(s) {sorted(unknown)}; cases: {list(premade_cases.CASES_BY_NAME)}"
        )
    cases = [premade_cases.CASES_BY_NAME[c] for c in wanted] or premade_cases.CASES
    seeds = [int(s) for s in args.seeds.split(",")]
    tf.get_logger().setLevel("ERROR")
    rows = []
    with tempfile.TemporaryDirectory(prefix="premade-bench-") as tmp:
        arrays_path = os.path.join(tmp, "arrays.npz")
        write_arrays(arrays_path)
        arrays = dict(np.load(arrays_path))
        legacy_version = None
        for case in cases:
            legacy: dict = {"error": "skipped"}
            if not args.skip_legacy:
                progress(f"legacy tf.estimator: {case.name} (seeds {args.seeds})")
                legacy = run_legacy(arrays_path, case, seeds, args.steps)
                legacy_version = legacy.get("tensorflow", legacy_version)
            progress(f"estimator_core: {case.name} (seeds {args.seeds})")
            ours = run_ours(arrays, case, seeds, args.steps)
            row = summarize(case, ours, legacy)
            row["ours_runs"], row["legacy_runs"] = ours, legacy.get("results")
            rows.append(row)
    print(table(rows))
    os.makedirs(args.results_dir, exist_ok=True)
    out = os.path.join(args.results_dir, f"premade-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(out, "w") as f:
        json.dump(
            {
                "steps": args.steps + 2,
                "seeds": seeds,
                "tensorflow": tf.__version__,
                "legacy_tensorflow": legacy_version,
                "rows": rows,
            },
            f,
            indent=1,
        )
    progress(f"figures written to {out}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
