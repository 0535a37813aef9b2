"""The train-and-evaluate flow: rounds of training, each followed by every named evaluation.

The loop, in pseudo-code::

    run = the MLflow run of this flow run (or the pipeline's, when given)
    step = latest checkpoint's step               # a resumed run continues from there
    while step < max_steps and not stopped:
        step = train_round(target=next multiple of round_steps, at most max_steps)
        for eval_set in eval_sets: evaluate(eval_set)
        log loss, global_step/sec and <eval name>/<metric> at step=global_step (one batch)
        log the round's checkpoint; update the Prefect progress artifact (with the evaluations;
        at most every PROGRESS_EVERY_S seconds)
        stopped = the input ended, or early stopping says so

A retried task, or the whole flow run again, trains only the missing steps and never past
``max_steps``; an evaluation already recorded at a step is not run (or logged) twice.

Per round, Prefect sees the task runs ``train-round`` and one ``evaluate`` per eval set, no
more: each task run costs the flow ~2-3 ms and the API server three events (measured in
``bench/README.md``). The round's MLflow record is therefore a plain call from the flow, which
only keeps it on disk: the outbox's thread delivers it while the next round trains. The round
tasks get their parameters wrapped in ``quote``, which spares Prefect walking the pydantic
models for futures on every call, and their "Finished in state Completed()" log lines are
dropped (``tasks.training.QuietRoundCompletions``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import tensorflow as tf
from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import deployment, flow_run
from prefect.utilities.annotations import quote

from estimator_core.data import read_manifest
from estimator_core.eval_history import read_eval_history
from flows.params import EarlyStopping, TrackingParams, TrainingParams
from tasks import tracking
from tasks.model_dir_lock import model_dir_lock
from tasks.training import evaluate, latest_step, session, train_round

# A progress update is an API call; for short rounds, at most one every few seconds.
PROGRESS_EVERY_S = 5.0


def recorded_evaluations(params: TrainingParams, name: str) -> list[dict[str, Any]]:
    """The evaluation results recorded for eval set ``name``, oldest first."""
    return read_eval_history(session(params).estimator.eval_dir(name))


def should_stop_early(rule: EarlyStopping, history: list[dict[str, Any]]) -> bool:
    """True when ``rule.metric`` has not improved by ``min_delta`` over the best before the
    last ``patience`` evaluations."""
    values = [entry[rule.metric] for entry in history if rule.metric in entry]
    if len(values) <= rule.patience:
        return False
    before, recent = values[: -rule.patience], values[-rule.patience :]
    if rule.mode == "min":
        return min(recent) > min(before) - rule.min_delta
    return max(recent) < max(before) + rule.min_delta


@contextlib.contextmanager
def mlflow_run(tracking_params: TrackingParams, mlflow_run_id: str | None) -> Iterator[str]:
    """The MLflow run a flow records into: ``mlflow_run_id`` (a parent's run, which the parent
    ends), or this flow run's own run, ended here: FINISHED, or FAILED when the body raises."""
    if mlflow_run_id:
        yield mlflow_run_id
        return
    run_id = tracking.start_tracking(tracking_params, str(flow_run.id), run_tags())
    try:
        yield run_id
    except BaseException:
        # The body's error is the one to report; an undelivered FAILED mark stays queued.
        with contextlib.suppress(tracking.TrackingUndeliveredError):
            tracking.finish_tracking(tracking_params, run_id, "FAILED")
        raise
    tracking.finish_tracking(tracking_params, run_id)


def run_tags() -> dict[str, str]:
    """MLflow tags naming the Prefect flow run and deployment that produced the run."""
    tags = {
        "prefect.flow_run_name": flow_run.name or "",
        "prefect.deployment": deployment.name or "(none)",
    }
    if (flow_run.ui_url or "").startswith("http"):  # the ephemeral API has no UI
        tags["prefect.flow_run_url"] = flow_run.ui_url
    return tags


def _round_records(trained: dict[str, Any], evals: dict[str, dict[str, float]]):
    for record in trained["history"]:
        yield "loss", record["loss"], record["step"]
        yield "global_step/sec", record["global_step/sec"], record["step"]
    for name, metrics in evals.items():
        step = int(metrics["global_step"])
        for key, value in metrics.items():
            if key != "global_step":
                yield f"{name}/{key}", value, step


def _record_inputs(params: TrainingParams, tracking_params: TrackingParams, run_id: str) -> None:
    tracking.log_params_task(
        tracking_params,
        run_id,
        params.model_dump(include={"model", "run_config", "train_split", "batch_size"})
        | {
            "rounds": params.model_dump(include={"round_steps", "max_steps", "early_stopping"}),
            "eval_sets": {e.name: e.model_dump(exclude={"name"}) for e in params.eval_sets},
            "data": {
                "dir": params.data_dir,
                "fingerprint": read_manifest(params.data_dir)["fingerprint"],
            },
        },
    )
    contexts = {params.train_split: "training"} | {
        e.split: "evaluation" for e in params.eval_sets if e.split != params.train_split
    }
    tracking.log_dataset_task(tracking_params, run_id, params.data_dir, contexts)
    create_link_artifact(
        tracking.run_url(tracking_params, run_id),
        link_text=f"MLflow run {run_id}",
        key="mlflow-run",
        description=f"tracking URI {tracking.tracking_uri(tracking_params)}",
    )


def _rounds(params: TrainingParams, tracking_params: TrackingParams, run_id: str) -> int:
    """The rounds loop (see the module doc); returns the final global step."""
    logger = get_run_logger()
    progress = create_progress_artifact(0.0, key="training-progress")
    progress_updated = time.monotonic()
    step = latest_step(params.model_dir)
    if step:  # resumed: evaluate what a killed run trained but did not evaluate
        missing = [
            e
            for e in params.eval_sets
            if not any(r["global_step"] == step for r in recorded_evaluations(params, e.name))
        ]
        evaluations = {e.name: evaluate(quote(params), quote(e)) for e in missing}
        records = list(_round_records({"history": []}, evaluations))
        tracking.log_round(tracking_params, run_id, records, params.model_dir, None)
    table: list[dict[str, Any]] = []
    stopped = False
    while step < params.max_steps and not stopped:
        target = min((step // params.round_steps + 1) * params.round_steps, params.max_steps)
        trained = train_round(quote(params), target)
        step = trained["global_step"]
        evaluations = {e.name: evaluate(quote(params), quote(e)) for e in params.eval_sets}
        tracking.log_round(
            tracking_params,
            run_id,
            list(_round_records(trained, evaluations)),
            params.model_dir,
            step if tracking_params.checkpoints_to_log is None else None,
        )
        table += [{"step": step, "eval": name, **m} for name, m in evaluations.items()]
        summary = "; ".join(
            f"{name} " + ", ".join(f"{k} {v:.4g}" for k, v in m.items() if k != "global_step")
            for name, m in evaluations.items()
        )
        if time.monotonic() - progress_updated >= PROGRESS_EVERY_S:
            update_progress_artifact(
                progress, 100.0 * step / params.max_steps, description=f"step {step}: {summary}"
            )
            progress_updated = time.monotonic()
        logger.info(
            "round to step %d/%d (trained in %.2f s): %s",
            step,
            params.max_steps,
            trained["seconds"],
            summary,
        )
        stopped = trained["stopped_early"] or (
            params.early_stopping is not None
            and should_stop_early(
                params.early_stopping,
                recorded_evaluations(params, params.early_stopping.eval_name),
            )
        )
    update_progress_artifact(progress, 100.0, description=f"done at step {step}")
    if table:  # one table per run: a table per round would cost an API call each
        create_table_artifact(table, key="eval-results", description="evaluations per round")
    return step


def _record_outputs(params: TrainingParams, tracking_params: TrackingParams, run_id: str) -> None:
    if tracking_params.checkpoints_to_log:
        state = tf.train.get_checkpoint_state(params.model_dir)
        steps = sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths)
        for kept_step in steps[-tracking_params.checkpoints_to_log :]:
            tracking.log_checkpoint_task(tracking_params, run_id, params.model_dir, kept_step)
    tracking.log_directory_task(
        tracking_params, run_id, params.model_dir, "tensorboard", match="tfevents"
    )
    tracking.deliver_task(tracking_params, run_id)  # fails clearly if MLflow stayed away


@flow(name="train-and-evaluate")
def train_and_evaluate(
    params: TrainingParams | None = None,
    tracking_params: TrackingParams | None = None,
    mlflow_run_id: str | None = None,
) -> dict[str, Any]:
    """Train ``params.model`` in rounds to ``params.max_steps``, evaluating every eval set after
    each round, with everything recorded in MLflow (``mlflow_run_id``, or this flow run's own
    run). Holds the model_dir's writer lock (``tasks/model_dir_lock.py``) while it trains.
    Returns ``{"mlflow_run_id", "model_dir", "global_step", "evaluations": {name: latest
    metrics}, "rounds_seconds": time spent in the rounds loop}``."""
    params = params or TrainingParams()
    tracking_params = tracking_params or TrackingParams()
    with mlflow_run(tracking_params, mlflow_run_id) as run_id:
        _record_inputs(params, tracking_params, run_id)
        with model_dir_lock(params.model_dir, str(flow_run.id)):
            began = time.perf_counter()
            step = _rounds(params, tracking_params, run_id)
            rounds_seconds = time.perf_counter() - began
            _record_outputs(params, tracking_params, run_id)
    return {
        "mlflow_run_id": run_id,
        "model_dir": os.fspath(params.model_dir),
        "global_step": step,
        "evaluations": {e.name: recorded_evaluations(params, e.name)[-1] for e in params.eval_sets},
        "rounds_seconds": rounds_seconds,
    }
