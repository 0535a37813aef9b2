"""Orchestration overhead: the same rounds through the train-and-evaluate flow (Prefect tasks,
MLflow tracking) versus bare ``est.train_and_evaluate``, in one process, alternating.

    python -m bench.pipeline_bench                    # three MLP sizes, 10 rounds each
    python -m bench.pipeline_bench --rounds 3 --repeats 1

Per configuration it reports the bare time and the time of the flow's rounds loop (same rounds,
both including the first trace), the overhead, its per-round split: MLflow (the round's
tracking calls, timed on their own with the same payload) and Prefect (the rest: task runs,
artifacts, logging), the flow's fixed cost outside the loop (run start, params, dataset
record, TensorBoard upload), paid once per run, and the CPU the local API server used per
round (on this machine it competes with training for the same cores).

The totals include the first round's traces (~0.5-1 s, the same on both sides), which flatter
the overhead of short runs; the steady columns compare a round once traced: the median time
from one round's end to the next (bare: a training hook's ``end``; flow: the MLflow timestamps
of the round's evaluation metrics), first round left out, best of the repeats.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import estimator_core as est
from bench.common import REPO_ROOT, progress
from estimator_core.data import make_input_fn, write_dataset
from flows.embedded_api import tune_embedded_api
from flows.params import TrackingParams, TrainingParams, load_model_fn
from tasks import tracking
from tasks.training import run_config


class RoundEnds(est.SessionRunHook):
    """The time each ``train()`` call (one round in ``train_and_evaluate``) ends."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def end(self, session: Any) -> None:
        self.times.append(time.perf_counter())


def steady_round(ends: list[float]) -> float:
    """Median seconds between successive round ends, the first round (traces) left out."""
    return statistics.median(b - a for a, b in itertools.pairwise(ends))


def bare_rounds(params: TrainingParams) -> tuple[float, float]:
    """(seconds for est.train_and_evaluate over the same rounds, data, model and RunConfig,
    steady seconds per round)."""
    estimator = est.Estimator(
        load_model_fn(params.model.model_fn),
        config=run_config(params),
        params=dict(params.model.params),
    )
    train_input = make_input_fn(
        params.data_dir,
        params.train_split,
        params.batch_size,
        est.ModeKeys.TRAIN,
        seed=params.run_config.tf_random_seed,
    )
    eval_specs = [
        est.EvalSpec(
            make_input_fn(params.data_dir, e.split, e.batch_size, est.ModeKeys.EVAL),
            steps=e.steps,
            name=e.name,
            every_n_steps=params.round_steps,
        )
        for e in params.eval_sets
    ]
    ends = RoundEnds()
    began = time.perf_counter()
    est.train_and_evaluate(
        estimator, est.TrainSpec(train_input, params.max_steps, hooks=[ends]), eval_specs
    )
    return time.perf_counter() - began, steady_round(ends.times)


def server_cpu_seconds() -> float:
    """CPU time used so far by this process's children: the ephemeral Prefect API server, which
    shares the machine's cores with training here (a real deployment runs it elsewhere)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def flow_rounds(
    params: TrainingParams, settings: TrackingParams
) -> tuple[float, float, float, float, str]:
    """(seconds in the flow's rounds loop, steady seconds per round, seconds of the whole flow
    run, API server CPU seconds during the run, MLflow run id)."""
    from flows.train_and_evaluate import train_and_evaluate

    cpu = server_cpu_seconds()
    began = time.perf_counter()
    result = train_and_evaluate(params, settings)
    whole = time.perf_counter() - began
    run_id = result["mlflow_run_id"]
    history = tracking.client_for(settings).get_metric_history(
        run_id, f"{params.eval_sets[0].name}/loss"
    )
    ends = [m.timestamp / 1000 for m in sorted(history, key=lambda m: m.step)]
    return result["rounds_seconds"], steady_round(ends), whole, server_cpu_seconds() - cpu, run_id


def mlflow_round_cost(params: TrainingParams, settings: TrackingParams, run_id: str) -> float:
    """Seconds of one round's tracking calls (metrics batch + checkpoint files), alone."""
    records = [("loss", 0.1, s) for s in range(2)] + [("global_step/sec", 1.0, s) for s in range(2)]
    records += [(f"{e.name}/{k}", 0.5, 10**6) for e in params.eval_sets for k in ("loss", "acc")]
    times = []
    for _ in range(5):
        began = time.perf_counter()
        tracking.log_metrics(settings, run_id, records)
        tracking.log_checkpoint(settings, run_id, params.model_dir, params.max_steps)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--round-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default="", help="run the models whose label contains this")
    args = parser.parse_args(argv)
    configs = {
        "digits MLP (64 units, batch 32)": {"hidden_units": 64, "batch": 32},
        "wide MLP (1024 units, batch 256)": {"hidden_units": 1024, "batch": 256},
        "wider MLP (4096 units, batch 1024)": {"hidden_units": 4096, "batch": 1024},
    }
    from prefect import flow
    from sklearn.datasets import load_digits

    work = tempfile.mkdtemp(prefix="pipeline-bench-")
    digits = load_digits()
    data_dir = os.path.join(work, "data")
    write_dataset(
        {"pixels": (digits.data / 16).astype("float32"), "digit": digits.target},
        data_dir,
        label="digit",
        splits={"train": 0.8, "eval": 0.2},
    )
    tune_embedded_api()  # as `make run` does
    flow(lambda: None, name="warm-up")()  # the ephemeral API starts once, outside the timing
    settings = TrackingParams(tracking_uri=f"sqlite:///{work}/mlflow.db", experiment="bench")
    tracking.start_or_resume_run(settings, "warm-up")  # creates the database, outside the timing
    results: dict[str, Any] = {}
    for number, (label, config) in enumerate(configs.items()):
        if args.only not in label:
            continue
        slug = f"model{number}"
        bare, piped, whole, server_cpu, mlflow_cost = [], [], [], [], []
        bare_round, flow_round = [], []
        for repeat in range(args.repeats):
            params = {
                "data_dir": data_dir,
                "round_steps": args.round_steps,
                "max_steps": args.rounds * args.round_steps,
                "batch_size": config["batch"],
                "model": {"params": {"hidden_units": config["hidden_units"], "feature": "pixels"}},
                "eval_sets": [
                    {"name": "heldout", "split": "eval"},
                    {"name": "train", "split": "train", "steps": 4},
                ],
            }
            progress(f"{label}: bare train_and_evaluate ({repeat + 1}/{args.repeats})")
            bare_s, bare_round_s = bare_rounds(
                TrainingParams(**params, model_dir=f"{work}/bare-{slug}-{repeat}")
            )
            bare.append(bare_s)
            bare_round.append(bare_round_s)
            progress(f"{label}: train-and-evaluate flow ({repeat + 1}/{args.repeats})")
            flow_params = TrainingParams(**params, model_dir=f"{work}/flow-{slug}-{repeat}")
            rounds_s, round_s, whole_s, cpu_s, run_id = flow_rounds(flow_params, settings)
            piped.append(rounds_s)
            flow_round.append(round_s)
            whole.append(whole_s)
            server_cpu.append(cpu_s)
            mlflow_cost.append(mlflow_round_cost(flow_params, settings, run_id))
        bare_s, flow_s = min(bare), min(piped)
        per_round = (flow_s - bare_s) / args.rounds
        mlflow_s = statistics.median(mlflow_cost)
        steady_bare, steady_flow = min(bare_round), min(flow_round)
        results[label] = {
            "bare_s": bare_s,
            "flow_s": flow_s,
            "overhead": flow_s / bare_s - 1,
            "flow_fixed_s": min(whole) - flow_s,
            "per_round_s": per_round,
            "per_round_mlflow_s": mlflow_s,
            "per_round_prefect_s": per_round - mlflow_s,
            "round_s_bare": bare_s / args.rounds,
            "per_round_server_cpu_s": statistics.median(server_cpu) / args.rounds,
            "steady_round_bare_s": steady_bare,
            "steady_round_flow_s": steady_flow,
            "steady_overhead": steady_flow / steady_bare - 1,
            "repeats": {
                "bare_s": bare,
                "flow_s": piped,
                "steady_round_bare_s": bare_round,
                "steady_round_flow_s": flow_round,
            },
        }
    print(
        f"\n{args.rounds} rounds of {args.round_steps} steps + 2 evaluations (best of "
        f"{args.repeats}):"
    )
    print(
        f"{'model':36} {'bare s':>7} {'flow s':>7} {'overhead':>8} {'/round ms':>9} "
        f"{'MLflow ms':>9} {'Prefect ms':>10} {'fixed s':>7} {'server CPU ms':>13} | "
        f"{'steady round ms: bare':>21} {'flow':>6} {'overhead':>8}"
    )
    for label, r in results.items():
        print(
            f"{label:36} {r['bare_s']:7.2f} {r['flow_s']:7.2f} {100 * r['overhead']:7.1f}% "
            f"{1000 * r['per_round_s']:9.1f} {1000 * r['per_round_mlflow_s']:9.1f} "
            f"{1000 * r['per_round_prefect_s']:10.1f} {r['flow_fixed_s']:7.2f} "
            f"{1000 * r['per_round_server_cpu_s']:13.1f} | "
            f"{1000 * r['steady_round_bare_s']:21.1f} {1000 * r['steady_round_flow_s']:6.1f} "
            f"{100 * r['steady_overhead']:7.1f}%"
        )
    out = REPO_ROOT / "bench" / "results" / f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
