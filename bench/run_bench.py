"""One invocation: the legacy tf.estimator anchor, estimator_core and plain TF2/Keras references on
the same data and model; prints a table of figures and ratios and writes bench/results/<ts>.json.

    python -m bench.run_bench            # full run (legacy included, ~10-15 min on 2 cores)
    python -m bench.run_bench --quick    # smoke test: fewer steps and rounds, no legacy run
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bench import core_bench, inmemory, legacy, report, tae_bench
from bench import workload as wl
from bench.common import REPO_ROOT, data_dir, progress
from bench.plan import FULL, QUICK, Plan

RESULTS_DIR = REPO_ROOT / "bench" / "results"


LEGACY_INMEMORY_STEPS = 20000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: fewer steps and rounds, and no legacy run"
    )
    parser.add_argument("--skip-legacy", action="store_true", help="do not run the legacy anchor")
    parser.add_argument(
        "--legacy-inmemory-steps",
        type=int,
        default=LEGACY_INMEMORY_STEPS,
        help="timed steps of the legacy in-memory run (run.sh --inmemory --steps N); many, "
        "because its ~2-3 s fixed cost is measured once and would swamp a short run",
    )
    parser.add_argument("--results-dir", default=str(RESULTS_DIR), help="where the JSON goes")
    return parser.parse_args(argv)


def run_legacy_inmemory(plan: Plan, steps: int) -> dict[str, Any]:
    return legacy.run_inmemory(steps) if plan.run_legacy else {"error": "skipped"}


def run_legacy_scenarios(plan: Plan) -> dict[str, Any]:
    return legacy.run_scenarios(plan.rounds) if plan.run_legacy else {"error": "skipped"}


def run_inmemory_part(plan: Plan, workdir: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """estimator_core and the plain TF2/Keras references, measured round-robin."""
    progress("in-memory training: estimator_core, tf.function loops, Keras fit (round-robin)")
    measured = inmemory.measure(os.path.join(workdir, "inmemory"), plan)
    return measured.pop("estimator_core"), measured


def run_scenario_a_part(plan: Plan, workdir: str, eval_labels: np.ndarray) -> dict[str, Any]:
    """estimator_core scenario A with both input variants; predict and export on the first."""
    out: dict[str, Any] = {"scenario_a": {}}
    trained = None
    for variant in wl.INPUT_VARIANTS:
        progress(f"estimator_core: scenario A, {variant} input_fn")
        result, estimator = core_bench.scenario_a(
            os.path.join(workdir, f"A_{variant}"), variant, plan
        )
        out["scenario_a"][variant] = result
        trained = trained or estimator
    out["round_switch_unseeded"] = {}
    for variant in wl.INPUT_VARIANTS:
        progress(f"estimator_core: round switch without tf_random_seed, {variant}")
        out["round_switch_unseeded"][variant] = core_bench.round_switch_unseeded(
            os.path.join(workdir, f"unseeded_{variant}"), variant, plan
        )
    progress("estimator_core: predict")
    out["predict_export"] = core_bench.predict_and_export(
        trained, os.path.join(workdir, "export"), eval_labels
    )
    return out


def run_graph_part(plan: Plan, workdir: str, eval_labels: np.ndarray) -> dict[str, Any]:
    """The legacy TF1 model_fn in the graph backend: scenario A (both inputs), predict, export."""
    out: dict[str, Any] = {"scenario_a": {}}
    trained = None
    for variant in wl.INPUT_VARIANTS:
        progress(f"estimator_core graph backend: scenario A, {variant} input_fn")
        result, estimator = core_bench.scenario_a(
            os.path.join(workdir, f"graph_A_{variant}"), variant, plan, backend="graph"
        )
        out["scenario_a"][variant] = result
        trained = trained or estimator
    progress("estimator_core graph backend: predict")
    out["predict_export"] = core_bench.predict_and_export(
        trained, os.path.join(workdir, "graph_export"), eval_labels
    )
    return out


def environment(bc: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "sysinfo": bc.sysinfo(),
        "data_dir": data_dir(),
        "data": {k: v for k, v in manifest.items() if k != "sha256"},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.skip_legacy:
        plan = dataclasses.replace(plan, run_legacy=False)
    bc = wl.bc
    started = time.time()
    manifest, eval_labels = bc.ensure_data(tf)
    results: dict[str, Any] = {
        "started_at": started,
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "mode": "quick" if args.quick else "full",
        "plan": dataclasses.asdict(plan),
        **environment(bc, manifest),
    }
    workdir = tempfile.mkdtemp(prefix="bench-estimator-core-")
    try:
        # Paired measurements run back to back: the machine is noisy.
        legacy_inmemory = run_legacy_inmemory(plan, args.legacy_inmemory_steps)
        core_inmemory, results["baselines"] = run_inmemory_part(plan, workdir)
        legacy_scenarios = run_legacy_scenarios(plan)
        core = {"inmemory": core_inmemory, **run_scenario_a_part(plan, workdir, eval_labels)}
        core["graph"] = run_graph_part(plan, workdir, eval_labels)
        progress("scenario E: train_and_evaluate with two named evals vs Keras fit")
        batched = core["scenario_a"]["batch_parse"]
        core["train_and_evaluate"] = tae_bench.measure(
            os.path.join(workdir, "tae"),
            plan,
            {"train_s": batched["train_step_s"], "eval_s": batched["eval_step_s"]},
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["estimator_core"] = core
    results["legacy"] = {"scenarios_AD": legacy_scenarios, "inmemory": legacy_inmemory}
    results["legacy_errors"] = {
        name: r["error"]
        for name, r in (("scenarios_AD", legacy_scenarios), ("inmemory", legacy_inmemory))
        if "error" in r
    }
    results["legacy_summary"] = legacy.summary(legacy_scenarios, legacy_inmemory)
    results["comparisons"] = report.comparisons(
        core, results["baselines"], results["legacy_summary"]
    )
    results["wall_s"] = time.time() - started
    results = bc.r(results)
    print(report.render(results))
    path = report.write_json(results, args.results_dir)
    print(f"\nJSON: {os.path.relpath(path, os.getcwd())}  (total {results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
