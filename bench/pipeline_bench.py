"""Orchestration overhead: the same rounds through the train-and-evaluate flow (Prefect tasks,
MLflow tracking) versus bare ``est.train_and_evaluate``, in one process, alternating.

    python -m bench.pipeline_bench                    # three MLP sizes, 10 rounds each
    python -m bench.pipeline_bench --rounds 3 --repeats 1

Per configuration it reports the bare time and the time of the flow's rounds loop (same rounds,
both including the first trace) and the overhead. The steady columns compare a round once
traced: the median time from one round's end to the next (bare: a training hook's ``end``;
flow: the start of one ``train-round`` call to the next), first rounds left out, best of the
repeats. The flow's steady round is split, per round, into

- *Prefect*: the task runs' engine time, i.e. each task call's wall time minus its body's
  (``train_to`` / ``evaluate_set``);
- *MLflow, flow thread*: the round's tracking call (the record kept on disk);
- *flow, other*: the flow's own bookkeeping between the calls (log line, progress);
- *training slowed*: the task bodies' time minus the bare round, i.e. training and evaluation
  sharing the cores with what runs beside them;

and it reports CPU that runs beside training: the MLflow delivery thread's CPU time and the
local API server process's CPU, per round (on this machine both compete with training for the
same cores; a real deployment runs the servers elsewhere). The flow's fixed cost outside the
loop (run start, params, dataset record, TensorBoard upload) is paid once per run.

Last, against a local ``mlflow server`` (HTTP), it times what a round's MLflow record costs the
flow's thread sent synchronously (as before the outbox's background delivery) and posted to
the outbox (``--no-tracking-server`` skips it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import threading
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import estimator_core as est
from bench.common import REPO_ROOT, progress
from estimator_core.data import make_input_fn, write_dataset
from flows.embedded_api import embedded_api
from tasks.params import TrackingParams, TrainingParams
from tasks.tracking.recorder import RunRecorder
from tasks.tracking.runs import RunOrigin, start_or_resume_run
from tasks.training import build_estimator

CONFIGS = {
    "digits MLP (64 units, batch 32)": {"hidden_units": 64, "batch": 32},
    "wide MLP (1024 units, batch 256)": {"hidden_units": 1024, "batch": 256},
    "wider MLP (4096 units, batch 1024)": {"hidden_units": 4096, "batch": 1024},
}


class RoundEnds(est.SessionRunHook):
    """The time training reaches each multiple of ``round_steps`` (a round's end in
    ``train_and_evaluate``, which evaluates at those checkpoints inside one ``train()`` call):
    successive marks are a round of training and its evaluations apart."""

    def __init__(self, round_steps: int) -> None:
        self.round_steps = round_steps
        self.times: list[float] = []

    def before_run(self, run_context: est.SessionRunContext) -> est.SessionRunArgs:
        return est.SessionRunArgs("global_step")

    def after_run(self, run_context: est.SessionRunContext, run_values: est.SessionRunValues):
        if int(run_values.results) % self.round_steps == 0:
            self.times.append(time.perf_counter())

    def next_trigger_step(self, global_step: int) -> int:
        return (global_step // self.round_steps + 1) * self.round_steps


def steady_round(ends: list[float]) -> float:
    """Median seconds between successive round ends, the first round (traces) left out."""
    return statistics.median(b - a for a, b in itertools.pairwise(ends))


def bare_rounds(params: TrainingParams) -> tuple[float, float]:
    """(seconds for est.train_and_evaluate over the same rounds, data, model and RunConfig,
    steady seconds per round)."""
    estimator = build_estimator(params)
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
    ends = RoundEnds(params.round_steps)
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


class RoundClock:
    """Times, while active, every task call of the flow against its body and the flow's
    tracking call, by wrapping those module functions (restored on exit)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float, float]] = []  # (what, began, ended)
        self.courier: Any = None  # the MLflow run's recorder (its courier's CPU time)
        self._restore: list[tuple[Any, str, Any]] = []

    def _timed(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        flow_thread = threading.current_thread()

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not flow_thread:  # the system metrics sampler
                return original(*args, **kwargs)
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.marks.append((label, began, time.perf_counter()))
                if label == "mlflow":  # the run's recorder, while it is live
                    self.courier = args[0]

        self._restore.append((owner, name, original))
        setattr(owner, name, timed)

    def __enter__(self) -> RoundClock:
        import flows.train_and_evaluate as flow_module
        import tasks.training as training_module

        self._timed(training_module, "train_to", "train body")
        self._timed(training_module, "evaluate_set", "eval body")
        self._timed(flow_module, "train_round", "train call")
        self._timed(flow_module, "evaluate", "eval call")
        self._timed(RunRecorder, "log_metrics", "mlflow")
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()

    def steady_split(self) -> dict[str, float]:
        """Median seconds per round (first two rounds left out) of the round and its parts."""
        starts = [began for label, began, _ in self.marks if label == "train call"]
        parts: dict[str, list[float]] = {
            k: [] for k in ("round", "bodies", "prefect", "mlflow", "flow_other")
        }
        for began, ended in list(itertools.pairwise(starts))[2:]:
            spent: dict[str, float] = {}
            for label, a, b in self.marks:
                if began <= a < ended:
                    spent[label] = spent.get(label, 0.0) + b - a
            bodies = spent["train body"] + spent.get("eval body", 0.0)
            calls = spent["train call"] + spent.get("eval call", 0.0)
            parts["round"].append(ended - began)
            parts["bodies"].append(bodies)
            parts["prefect"].append(calls - bodies)
            parts["mlflow"].append(spent.get("mlflow", 0.0))
            parts["flow_other"].append(ended - began - calls - spent.get("mlflow", 0.0))
        return {k: statistics.median(v) for k, v in parts.items()}


def flow_rounds(params: TrainingParams, settings: TrackingParams) -> dict[str, Any]:
    """The flow over the rounds of ``params``: seconds in its rounds loop and of the whole run,
    the steady round's split (:class:`RoundClock`), and per round the MLflow delivery thread's
    CPU seconds and the API server's CPU seconds."""
    from flows.train_and_evaluate import train_and_evaluate

    cpu = server_cpu_seconds()
    began = time.perf_counter()
    with RoundClock() as clock:
        result = train_and_evaluate(params, settings)
    whole = time.perf_counter() - began
    rounds = params.max_steps // params.round_steps
    delivery = clock.courier.delivery_cpu_seconds
    return {
        "rounds_s": result.rounds_seconds,
        "whole_s": whole,
        "steady": clock.steady_split(),
        "mlflow_background_s": delivery / rounds,
        "server_cpu_s": (server_cpu_seconds() - cpu) / rounds,
    }


def round_record_cost(work: str, round_records: int = 30) -> dict[str, float]:
    """Median seconds a round's MLflow record (5 metrics, a checkpoint's 2 files) costs the
    flow's thread against a local ``mlflow server`` (1 worker, sqlite): sent synchronously,
    as before the outbox's courier, and posted to the outbox."""
    from mlflow.tracking import MlflowClient

    from ops.local_mlflow import LocalMlflowServer
    from tasks.tracking.outbox import Courier, Outbox, apply
    from tasks.tracking.records import ArtifactFile, Batch, MetricRow

    root = os.path.join(work, "mlflow-server")
    os.makedirs(root)
    server = LocalMlflowServer(root)
    server.start()
    try:
        client = MlflowClient(server.uri)
        run_id = client.create_run(client.create_experiment("bench")).info.run_id
        files = []
        for name in ("model.ckpt-1.index", "model.ckpt-1.data-00000-of-00001"):
            with open(os.path.join(root, name), "wb") as f:
                f.write(os.urandom(30_000))  # the digits MLP's checkpoint is ~20 kB
            files.append(ArtifactFile(os.path.join(root, name), "checkpoints"))

        def record(step: int) -> Batch:
            keys = (
                "training/minibatch_loss",
                "training/steps_per_sec",
                "heldout/loss",
                "heldout/accuracy",
                "train/loss",
            )
            metrics = tuple(MetricRow(key, 0.5, 1000 + step, step) for key in keys)
            return Batch(metrics=metrics, files=tuple(files))

        def timed(send: Any, steps: range) -> float:
            times = []
            for step in steps:
                began = time.perf_counter()
                send(record(step))
                times.append(time.perf_counter() - began)
                time.sleep(0.08)  # a round of training between records
            return statistics.median(times[3:])

        synchronous = timed(lambda r: apply(client, run_id, r), range(round_records))
        courier = Courier(Outbox(os.path.join(root, "outbox"), run_id), lambda: client)
        posted = timed(courier.post, range(round_records, 2 * round_records))
        courier.flush()
        return {"synchronous_s": synchronous, "posted_s": posted}
    finally:
        server.stop()


def measure_flows(args: argparse.Namespace, work: str, data_dir: str) -> dict[str, Any]:
    """Bare and flow rounds of every configuration (see the module doc), by label."""
    from prefect import flow

    flow(lambda: None, name="warm-up")()  # the ephemeral API starts once, outside the timing
    settings = TrackingParams(
        tracking_uri=f"sqlite:///{work}/mlflow.db",
        experiment="bench",
        outbox_dir=os.path.join(work, "outbox"),
    )
    warm_up = RunOrigin("warm-up", "warm-up", "bench", None, "bench/pipeline_bench.py", work)
    start_or_resume_run(settings, warm_up)  # creates the database, outside the timing
    results: dict[str, Any] = {}
    for number, (label, config) in enumerate(CONFIGS.items()):
        if args.only not in label:
            continue
        slug = f"model{number}"
        bare, bare_round, flows = [], [], []
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
            flows.append(flow_rounds(flow_params, settings))
        best = min(flows, key=lambda f: f["steady"]["round"])
        steady_bare, split = min(bare_round), best["steady"]
        flow_s = min(f["rounds_s"] for f in flows)
        results[label] = {
            "bare_s": min(bare),
            "flow_s": flow_s,
            "overhead": flow_s / min(bare) - 1,
            "flow_fixed_s": min(f["whole_s"] - f["rounds_s"] for f in flows),
            "steady_round_bare_s": steady_bare,
            "steady_round_flow_s": split["round"],
            "steady_overhead": split["round"] / steady_bare - 1,
            "per_round_prefect_s": split["prefect"],
            "per_round_mlflow_s": split["mlflow"],
            "per_round_flow_other_s": split["flow_other"],
            "per_round_training_slowed_s": split["bodies"] - steady_bare,
            "per_round_mlflow_background_s": best["mlflow_background_s"],
            "per_round_server_cpu_s": best["server_cpu_s"],
            "repeats": {"bare_s": bare, "steady_round_bare_s": bare_round, "flows": flows},
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--round-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default="", help="run the models whose label contains this")
    parser.add_argument(
        "--no-tracking-server",
        action="store_true",
        help="skip the round record's cost against a local `mlflow server`",
    )
    args = parser.parse_args(argv)
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
    with embedded_api():  # as `make run` does
        results = measure_flows(args, work, data_dir)
    print(
        f"\n{args.rounds} rounds of {args.round_steps} steps + 2 evaluations (best of "
        f"{args.repeats}); the steady round's parts and what runs beside it, in ms per round:"
    )
    print(
        f"{'model':36} {'bare s':>6} {'flow s':>6} {'ovh':>6} | {'steady bare':>11} "
        f"{'flow':>6} {'ovh':>6} | {'Prefect':>7} {'MLflow':>6} {'other':>5} {'slowed':>6} | "
        f"{'MLflow thread':>13} {'API server':>10}"
    )
    for label, r in results.items():
        ms = {k: 1000 * v for k, v in r.items() if k.endswith("_s")}
        print(
            f"{label:36} {r['bare_s']:6.2f} {r['flow_s']:6.2f} {100 * r['overhead']:5.1f}% | "
            f"{ms['steady_round_bare_s']:11.1f} {ms['steady_round_flow_s']:6.1f} "
            f"{100 * r['steady_overhead']:5.1f}% | {ms['per_round_prefect_s']:7.1f} "
            f"{ms['per_round_mlflow_s']:6.1f} {ms['per_round_flow_other_s']:5.1f} "
            f"{ms['per_round_training_slowed_s']:6.1f} | "
            f"{ms['per_round_mlflow_background_s']:13.1f} {ms['per_round_server_cpu_s']:10.1f}"
        )
    if not args.no_tracking_server:
        progress("a round's MLflow record against a local mlflow server")
        remote = round_record_cost(work)
        results["tracking_server_round_record"] = remote
        print(
            f"\nA round's MLflow record against a local `mlflow server` (HTTP, 1 worker, sqlite): "
            f"{1000 * remote['synchronous_s']:.1f} ms sent synchronously, "
            f"{1000 * remote['posted_s']:.1f} ms posted to the outbox (median of 27 rounds)"
        )
    out = REPO_ROOT / "bench" / "results" / f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
