"""Turns the measurements into comparison rows (with targets), a text table and a JSON file."""

from __future__ import annotations

import json
import os
import time
from typing import Any

ROUND_SWITCH_TARGET_S = 0.030  # estimator_core: train + evaluate fixed cost per round
PREDICT_RATIO_TARGET = 2.0  # estimator_core predict examples/s / legacy predict_single


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    """A number with ``digits`` decimals and a unit; ``n/a`` for None."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}{unit}"


def ms(seconds: float | None) -> str:
    return fmt(None if seconds is None else seconds * 1e3, " ms")


def verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned others, widths fitted to the contents."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  " + "  ".join(parts)

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


# -- comparisons ------------------------------------------------------------------------------


def comparisons(core: dict[str, Any], base: dict[str, Any], leg: dict[str, Any]) -> list[dict]:
    """Every ratio the report prints: value, target and verdict (None where there is no target)."""
    steady = core["inmemory"]["steady_steps_per_s"]
    paired = core["inmemory"].get("paired_ratio_vs", {})
    single, batched = core["scenario_a"]["single_parse"], core["scenario_a"]["batch_parse"]
    pred = core["predict_export"]
    rows = [
        _row(
            "in-memory steps/s: estimator_core / legacy tf.estimator",
            ratio(steady, leg["inmemory_steady_steps_per_s"]),
            "x",
        )
    ]
    graph_rate = base["estimator_core_graph"]["steady_steps_per_s"]
    legacy_rate = leg["inmemory_steady_steps_per_s"]
    graph_vs_legacy = ratio(graph_rate, legacy_rate)
    rows.append(
        _row(
            "in-memory steps/s: graph backend (TF1 model_fn) / legacy tf.estimator",
            graph_vs_legacy,
            "x",
            target=">= 1x",
            passed=None if graph_vs_legacy is None else graph_vs_legacy >= 1.0,
        )
    )
    function_vs_graph = paired.get("estimator_core_graph")
    rows.append(
        _row(
            "in-memory steps/s: graph backend / function backend (paired)",
            ratio(1.0, function_vs_graph) if function_vs_graph else None,
            "x",
        )
    )
    rows.append(
        _row(
            "in-memory steps/s: estimator_core jit_compile=True / legacy tf.estimator",
            ratio(
                base["estimator_core_xla"]["steady_steps_per_s"], leg["inmemory_steady_steps_per_s"]
            ),
            "x",
        )
    )
    for key, label in (
        ("tf_function_per_step", "tf.function 1 step/call"),
        ("tf_function_100_per_call", "tf.function 100 steps/call"),
        ("keras_fit", "Keras fit"),
    ):
        value = paired.get(key) or ratio(steady, base[key]["steady_steps_per_s"])
        rows.append(_row(f"in-memory steps/s: estimator_core / {label} (paired)", value, "x"))
    for name, a in (("single-parse", single), ("batch-parse", batched)):
        switch = a["round_switch_s"]
        rows.append(
            _row(
                f"round switch, estimator_core ({name})",
                switch,
                "s",
                target=f"< {ROUND_SWITCH_TARGET_S * 1e3:.0f} ms",
                passed=switch < ROUND_SWITCH_TARGET_S,
            )
        )
    for name, a in core["round_switch_unseeded"].items():
        switch = a["round_switch_s"]
        rows.append(
            _row(
                f"  diagnostic: same, {name.replace('_', '-')}, tf_random_seed=None",
                switch,
                "s",
                target=f"< {ROUND_SWITCH_TARGET_S * 1e3:.0f} ms",
                passed=switch < ROUND_SWITCH_TARGET_S,
            )
        )
    graph = core.get("graph", {})
    for name, a in graph.get("scenario_a", {}).items():
        switch = a["round_switch_s"]
        rows.append(
            _row(
                f"round switch, graph backend ({name.replace('_', '-')})",
                switch,
                "s",
                target=f"< {ROUND_SWITCH_TARGET_S * 1e3:.0f} ms",
                passed=switch < ROUND_SWITCH_TARGET_S,
            )
        )
        rows.append(
            _row(
                f"scenario A total: legacy / graph backend ({name.replace('_', '-')})",
                ratio(leg["a_total_s"], a["total_s"]),
                "x",
            )
        )
    if graph.get("predict_export"):
        gp = graph["predict_export"]
        rows.append(
            _row(
                "predict examples/s (single examples): graph backend / legacy",
                ratio(gp["predict_single"]["examples_per_s"], leg["predict_single_examples_per_s"]),
                "x",
            )
        )
        rows.append(_row("export_saved_model, graph backend", gp["export_saved_model_s"], "s"))
    rows += [
        _row("round switch, legacy tf.estimator", leg["a_round_switch_s"], "s"),
        _row(
            "round switch: legacy / estimator_core (single-parse)",
            ratio(leg["a_round_switch_s"], single["round_switch_s"]),
            "x",
        ),
        _row(
            "scenario A total: legacy / estimator_core (single-parse)",
            ratio(leg["a_total_s"], single["total_s"]),
            "x",
        ),
        _row(
            "scenario A total: legacy / estimator_core (batch-parse)",
            ratio(leg["a_total_s"], batched["total_s"]),
            "x",
        ),
    ]
    predict = ratio(pred["predict_single"]["examples_per_s"], leg["predict_single_examples_per_s"])
    rows += [
        _row(
            "predict examples/s (single examples): estimator_core / legacy",
            predict,
            "x",
            target=f">= {PREDICT_RATIO_TARGET:.0f}x",
            passed=None if predict is None else predict >= PREDICT_RATIO_TARGET,
        ),
        _row(
            "predict examples/s, later calls (traced once): estimator_core / legacy",
            ratio(
                pred["predict_single_warm"]["examples_per_s"], leg["predict_single_examples_per_s"]
            ),
            "x",
        ),
        _row(
            "  diagnostic: estimator_core predict / its input_fn alone (the bound)",
            ratio(
                pred["predict_single"]["examples_per_s"], pred["input_fn_alone"]["examples_per_s"]
            ),
            "x",
        ),
        _row(
            "  diagnostic: legacy predict / estimator_core's input_fn alone",
            ratio(leg["predict_single_examples_per_s"], pred["input_fn_alone"]["examples_per_s"]),
            "x",
        ),
        _row("export_saved_model, estimator_core", pred["export_saved_model_s"], "s"),
        *_train_and_evaluate_rows(core.get("train_and_evaluate")),
        _row("export_saved_model, legacy tf.estimator", leg["export_saved_model_s"], "s"),
    ]
    return rows


def _train_and_evaluate_rows(tae: dict[str, Any] | None) -> list[dict]:
    """Scenario E: train_and_evaluate (two named evals) against Keras fit with validation."""
    if not tae:
        return []
    core, keras_fit = tae["estimator_core"], tae["keras_fit"]
    speed = ratio(keras_fit["total_s"], core["total_s"])
    return [
        _row(
            "train_and_evaluate, 2 named evals: Keras fit time / estimator_core time",
            speed,
            "x",
            target=">= 1x",
            passed=None if speed is None else speed >= 1.0,
        ),
        _row("  per-round overhead, estimator_core", core["per_round_overhead_s"], "s"),
        _row("  per-round overhead, Keras fit", keras_fit["per_round_overhead_s"], "s"),
    ]


def _row(
    name: str, value: float | None, unit: str, target: str = "-", passed: bool | None = None
) -> dict[str, Any]:
    return {"comparison": name, "value": value, "unit": unit, "target": target, "passed": passed}


def _show(row: dict[str, Any]) -> list[str]:
    value = ms(row["value"]) if row["unit"] == "s" else fmt(row["value"], "x", 2)
    result = "-" if row["target"] == "-" else verdict(row["passed"])
    return [row["comparison"], value, row["target"], result]


# -- the text report --------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    """The whole printed report: four tables and the legacy status line."""
    core, base, leg = results["estimator_core"], results["baselines"], results["legacy_summary"]
    plan = results["plan"]
    parts = [
        f"estimator_core benchmark  ({results['timestamp']}, {results['mode']} mode, "
        f"TF {results['versions']['tensorflow']}, {results['sysinfo']['cpu_count']} CPUs)",
        _legacy_status(results),
        "",
        f"In-memory training: 8,192 rows, batch 128, MLP 784-256-10, {plan['inmemory_steps']} "
        f"steps (steady steps/s = steps / (wall - 1-step call), median of {plan['repeats']})",
        _inmemory_table(core, base, leg),
        "",
        f"Scenario A: {plan['rounds']} x (train(steps={plan['train_steps']}) + "
        f"evaluate(steps={plan['eval_steps']})) on TFRecords; round switch = train(steps=1) + "
        "evaluate(steps=1) wall",
        _scenario_a_table(core, leg),
        "",
        "Predict 10,000 eval rows (single-parse input_fn, batch 128) and export "
        "(parsing serving receiver)",
        _predict_table(core, leg),
        "",
        "Ratios and targets",
        table(
            ["comparison", "value", "target", "result"], [_show(r) for r in results["comparisons"]]
        ),
    ]
    return "\n".join(parts)


def _legacy_status(results: dict[str, Any]) -> str:
    errors = results["legacy_errors"]
    if not errors:
        return "legacy anchor: tf.estimator (TF 2.15.1) run in this invocation"
    return "legacy anchor UNAVAILABLE, ratios against it are n/a: " + "; ".join(
        f"{k}: {v.splitlines()[0]}" for k, v in errors.items()
    )


def _inmemory_table(core: dict, base: dict, leg: dict) -> str:
    legacy = {
        "steady_steps_per_s": leg["inmemory_steady_steps_per_s"],
        "call_fixed_cost_s": leg["inmemory_train_call_fixed_cost_s"],
    }
    runs = [
        ("estimator_core Estimator.train (iterations_per_loop=100)", core["inmemory"]),
        ("estimator_core graph backend (TF1 model_fn)", base["estimator_core_graph"]),
        ("estimator_core, RunConfig(jit_compile=True)", base["estimator_core_xla"]),
        ("legacy tf.estimator (TF 2.15 graph mode, one run)", legacy),
        ("tf.function, 1 step per call", base["tf_function_per_step"]),
        ("tf.function, 100 steps per call", base["tf_function_100_per_call"]),
        ("Keras Model.fit (steps_per_execution=1)", base["keras_fit"]),
    ]
    rows = []
    for name, r in runs:
        rate = r["steady_steps_per_s"]
        examples = None if rate is None else rate * 128
        best = fmt(r["best_steps_per_s"]) if "best_steps_per_s" in r else "-"
        rows.append([name, fmt(rate), best, fmt(examples, "", 0), ms(r["call_fixed_cost_s"])])
    text = table(["framework", "steps/s", "best", "examples/s", "1-step call"], rows)
    return text + _legacy_inmemory_note(leg)


def _legacy_inmemory_note(leg: dict) -> str:
    """A warning when legacy's timed steps took less time than its (once-measured) fixed cost."""
    rate, fixed = leg["inmemory_steady_steps_per_s"], leg["inmemory_train_call_fixed_cost_s"]
    steps = leg.get("inmemory_steps")
    if not rate or not fixed or not steps or steps / rate >= fixed:
        return ""
    return (
        f"\n  note: legacy's {steps} timed steps took {steps / rate:.2f} s of a "
        f"{steps / rate + fixed:.2f} s call whose fixed cost ({fixed:.2f} s) is measured once: "
        "its rate swings with that fixed cost (more steps: --legacy-inmemory-steps)"
    )


def _scenario_a_table(core: dict, leg: dict) -> str:
    def row(name: str, a: dict) -> list[str]:
        return [
            name,
            fmt(a["total_s"], " s", 2),
            fmt(a["median_round_s"], " s", 3),
            ms(a["train_fixed_cost_s"]),
            ms(a["eval_fixed_cost_s"]),
            ms(a["round_switch_s"]),
            ms(a["per_round_overhead_s"]),
            fmt(a["train_step_ms"], "", 2),
            fmt(a["eval_step_ms"], "", 2),
            fmt(a["full_eval_acc"], "", 4),
        ]

    rows = [
        row(f"estimator_core, {v}", _core_a(core["scenario_a"][v]))
        for v in ("single_parse", "batch_parse")
    ]
    rows += [
        row(f"graph backend (TF1 model_fn), {v}", _core_a(a))
        for v, a in core.get("graph", {}).get("scenario_a", {}).items()
    ]
    rows.append(row("legacy tf.estimator, single_parse", _legacy_a(leg)))
    return table(
        [
            "run",
            "total",
            "median round",
            "train() fixed",
            "evaluate() fixed",
            "round switch",
            "overhead/round",
            "train ms/step",
            "eval ms/step",
            "full-eval acc",
        ],
        rows,
    )


def _core_a(a: dict) -> dict:
    return {
        **a,
        "train_step_ms": a["train_step_s"] * 1e3,
        "eval_step_ms": a["eval_step_s"] * 1e3,
        "full_eval_acc": a["full_eval_10000"]["accuracy"],
    }


def _legacy_a(leg: dict) -> dict:
    return {
        "total_s": leg["a_total_s"],
        "median_round_s": leg["a_median_round_s"],
        "train_fixed_cost_s": leg["a_train_fixed_cost_s"],
        "eval_fixed_cost_s": leg["a_eval_fixed_cost_s"],
        "round_switch_s": leg["a_round_switch_s"],
        "per_round_overhead_s": leg["a_per_round_overhead_s"],
        "train_step_ms": leg["a_train_step_ms"],
        "eval_step_ms": leg["a_eval_step_ms"],
        "full_eval_acc": leg["a_full_eval_acc"],
    }


def _predict_table(core: dict, leg: dict) -> str:
    def rate(node: dict) -> str:
        return fmt(node["examples_per_s"], "", 0)

    def row(name: str, p: dict) -> list[str]:
        return [
            name,
            rate(p["input_fn_alone"]),
            rate(p["predict_single"]),
            fmt(p["predict_single"].get("python_gc_s"), " s", 3),
            rate(p["predict_single_warm"]),
            rate(p["predict_batched"]),
            fmt(p["export_saved_model_s"], " s", 3),
            rate(p["savedmodel_serve"]),
        ]

    rows = [row("estimator_core", core["predict_export"])]
    if core.get("graph", {}).get("predict_export"):
        rows.append(row("graph backend (TF1 model_fn)", core["graph"]["predict_export"]))
    rows += [
        [
            "legacy tf.estimator",
            "-",
            fmt(leg["predict_single_examples_per_s"], "", 0),
            "-",
            "-",
            fmt(leg["predict_batched_examples_per_s"], "", 0),
            fmt(leg["export_saved_model_s"], " s", 3),
            fmt(leg["savedmodel_serve_examples_per_s"], "", 0),
        ],
    ]
    headers = [
        "run",
        "input_fn alone ex/s",
        "predict ex/s",
        "of it Python GC",
        "next 3 calls ex/s",
        "batched ex/s",
        "export",
        "SavedModel serve ex/s",
    ]
    return table(headers, rows)


def write_json(results: dict[str, Any], directory: str) -> str:
    """Write ``results`` to ``directory/<timestamp>.json``; returns the path."""
    os.makedirs(directory, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(results["started_at"]))
    path = os.path.join(directory, f"{stamp}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=str)
    return path
