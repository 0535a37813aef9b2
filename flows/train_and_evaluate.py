"""The train-and-evaluate flow: rounds of training, each followed by every named evaluation.

The loop, in pseudo-code::

    run = the MLflow run of this flow run (or the pipeline's, when given)
    schedule = round_schedule(params)             # EvalSchedule(round_steps, max_steps)
    rule = stopping_rule(early_stopping)          # NoImprovement(patience_evals, min_delta)
    step = latest checkpoint's step               # a resumed run continues from there
    while not schedule.finished(step) and not stopped:
        step = train_round(target=schedule.next_stop(step))
        for eval_set in eval_sets: evaluate(eval_set)
        log training/* and <eval name>/<metric> at step=global_step, and the round's
        checkpoint (one outbox record); update the Prefect progress artifact (with the
        evaluations; at most every PROGRESS_EVERY_S seconds)
        stopped = the input ended, or rule.should_stop(early_stopping's eval history)
    evaluation report (confusion matrices, learning curves), eval histories, TensorBoard
    events → MLflow; wait until MLflow has everything

A retried task, or the whole flow run again, trains only the missing steps and never past
``max_steps``; an evaluation already recorded at a step is not run (or logged) twice.

Per round, Prefect sees the task runs ``train[<from>→<to>]`` and one
``evaluate[<eval name>@<step>]`` per eval set, no more: each task run costs the flow ~2-3 ms
and the API server three events (measured in ``bench/README.md``). The round's MLflow record
is therefore a plain call from the flow, which only keeps it on disk: the outbox's thread
delivers it while the next round trains. The round tasks get their parameters wrapped in
``quote``, which spares Prefect walking the pydantic models for futures on every call, and
their "Finished in state Completed()" log lines are dropped
(``tasks.training.QuietRoundCompletions``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from estimator_core.data import read_manifest
from estimator_core.eval_history import HISTORY_FILE, eval_dir, read_eval_history
from flows.artifacts import artifact_key
from tasks import data_lineage
from tasks.model_dir_lock import model_dir_lock
from tasks.params import TrackingParams, TrainingParams
from tasks.reports import REPORTS_FOLDER, evaluation_report
from tasks.tracking.client import run_url, tracking_uri
from tasks.tracking.datasets import dataset_files, dataset_records
from tasks.tracking.prefect_tasks import deliver_records, tracked_run
from tasks.tracking.recorder import RunRecorder, directory_files, metric_row
from tasks.tracking.records import ArtifactFile, MetricRow
from tasks.tracking.system_metrics import sampling
from tasks.training import (
    Evaluation,
    TrainedRound,
    checkpoint_files,
    evaluate,
    kept_checkpoint_steps,
    latest_step,
    round_schedule,
    stopping_rule,
    train_round,
)

# A progress update is an API call; for short rounds, at most one every few seconds.
PROGRESS_EVERY_S = 5.0
# MLflow metric names of training (the UI groups metrics by the part before the "/").
MINIBATCH_LOSS = "training/minibatch_loss"
STEPS_PER_SEC = "training/steps_per_sec"


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """What a train-and-evaluate run ends with: the latest evaluation of every eval set."""

    mlflow_run_id: str
    model_dir: str
    global_step: int
    evaluations: dict[str, Evaluation]
    rounds_seconds: float  # time spent in the rounds loop


def recorded_evaluations(params: TrainingParams, name: str) -> list[dict[str, Any]]:
    """The evaluation results recorded for eval set ``name``, oldest first."""
    return read_eval_history(eval_dir(params.model_dir, name))


def round_rows(
    trained: TrainedRound | None, evaluations: Iterable[Evaluation]
) -> Iterator[MetricRow]:
    """A round's MLflow metrics: training's minibatch loss and steps per second at each log
    step, and ``<eval name>/<metric>`` at each evaluation's global step."""
    for log in trained.logs if trained else ():
        yield metric_row(MINIBATCH_LOSS, log.loss, log.step)
        if log.steps_per_sec is not None:
            yield metric_row(STEPS_PER_SEC, log.steps_per_sec, log.step)
    for evaluation in evaluations:
        for key, value in evaluation.metrics.items():
            yield metric_row(f"{evaluation.name}/{key}", value, evaluation.global_step)


def summarize(evaluations: Iterable[Evaluation]) -> str:
    """``heldout accuracy 0.9915, loss 0.05; train_sample ...``: a log line, a progress note."""
    return "; ".join(
        f"{e.name} " + ", ".join(f"{k} {v:.4g}" for k, v in e.metrics.items()) for e in evaluations
    )


def check_metrics(params: TrainingParams, evaluations: Iterable[Evaluation]) -> None:
    """ValueError when an evaluation lacks a metric the run needs (``required_metrics``, the
    early-stopping metric): a gate or a stopping rule would otherwise read nothing."""
    produced = {e.name: e.metrics for e in evaluations}
    for key in params.checked_metrics():
        eval_name, _, metric = key.partition("/")
        if eval_name in produced and metric not in produced[eval_name]:
            raise ValueError(
                f"eval set {eval_name!r} produces no metric {metric!r} (it has "
                f"{sorted(produced[eval_name])}), but {key} is needed (the champion gate's "
                "export.gate_metric, early_stopping.metric, or training.required_metrics)"
            )


def _adopt_data(params: TrainingParams, recorder: RunRecorder) -> None:
    """Refuse a model_dir trained on other data, or (``continue_on_new_data``, or a model_dir
    with no record of its data) evaluate every eval set on the current data at the current
    step before training on it (``tasks/data_lineage.py``)."""
    step = latest_step(params.model_dir)
    fingerprint = read_manifest(params.data_dir)["fingerprint"]
    if not data_lineage.needs_adoption(
        params.model_dir, fingerprint, params.data_dir, step, params.continue_on_new_data
    ):
        return
    get_run_logger().warning(
        "%s: evaluating the checkpoint of step %d on data set %s (%s) before training on it",
        params.model_dir,
        step,
        fingerprint[:16],
        params.data_dir,
    )
    evaluations = [evaluate(quote(params), quote(e)) for e in params.eval_sets]
    check_metrics(params, evaluations)
    recorder.log_metrics(round_rows(None, evaluations))
    data_lineage.adopt(params.model_dir, fingerprint, params.data_dir, step)


def _checkpoint_artifacts(model_dir: str, step: int) -> list[ArtifactFile]:
    return [ArtifactFile(path, "checkpoints") for path in checkpoint_files(model_dir, step)]


def _record_inputs(params: TrainingParams, recorder: RunRecorder) -> None:
    recorder.log_params(
        params.model_dump(
            include={"model", "run_config", "train_split", "batch_size", "shuffle_buffer"}
        )
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
    recorder.log_datasets(dataset_records(params.data_dir, contexts))
    recorder.log_files(dataset_files(params.data_dir))
    create_link_artifact(
        run_url(recorder.settings, recorder.run_id),
        link_text=f"MLflow run {recorder.run_id}",
        key=artifact_key(params.model_dir, "mlflow-run"),
        description=f"tracking URI {tracking_uri(recorder.settings)}",
    )


def _rounds(params: TrainingParams, recorder: RunRecorder) -> int:
    """The rounds loop (see the module doc); returns the final global step."""
    logger = get_run_logger()
    progress = create_progress_artifact(
        0.0, key=artifact_key(params.model_dir, "training-progress")
    )
    progress_updated = time.monotonic()
    checkpoints_each_round = recorder.settings.checkpoints_to_log is None
    step = latest_step(params.model_dir)
    if step:  # resumed: evaluate what a killed run trained but did not evaluate
        missing = [
            e
            for e in params.eval_sets
            if not any(r["global_step"] == step for r in recorded_evaluations(params, e.name))
        ]
        if missing:
            caught_up = [evaluate(quote(params), quote(e)) for e in missing]
            check_metrics(params, caught_up)
            recorder.log_metrics(round_rows(None, caught_up))
    table: list[dict[str, Any]] = []
    evaluations: list[Evaluation] = []
    schedule = round_schedule(params)
    early_stopping = params.early_stopping
    rule = stopping_rule(early_stopping) if early_stopping else None
    stopped = False
    while not schedule.finished(step) and not stopped:
        trained = train_round(quote(params), schedule.next_stop(step))
        step = trained.global_step
        evaluations = [evaluate(quote(params), quote(e)) for e in params.eval_sets]
        check_metrics(params, evaluations)
        recorder.log_metrics(
            round_rows(trained, evaluations),
            _checkpoint_artifacts(params.model_dir, step) if checkpoints_each_round else (),
        )
        table += [{"step": step, "eval": e.name, **e.metrics} for e in evaluations]
        summary = summarize(evaluations)
        if time.monotonic() - progress_updated >= PROGRESS_EVERY_S:
            update_progress_artifact(
                progress, 100.0 * step / params.max_steps, description=f"step {step}: {summary}"
            )
            progress_updated = time.monotonic()
        logger.info(
            "round to step %d/%d (trained in %.2f s): %s",
            step,
            params.max_steps,
            trained.seconds,
            summary,
        )
        stopped = trained.stopped_early or (
            rule is not None
            and rule.should_stop(recorded_evaluations(params, early_stopping.eval_name))
        )
    final = summarize(evaluations) if evaluations else "nothing left to train"
    update_progress_artifact(
        progress, 100.0 * step / params.max_steps, description=f"done at step {step}: {final}"
    )
    if table:  # one table per run: a table per round would cost an API call each
        create_table_artifact(
            table,
            key=artifact_key(params.model_dir, "eval-results"),
            description="evaluations per round",
        )
    return step


def _record_outputs(params: TrainingParams, recorder: RunRecorder) -> None:
    """What the run leaves besides its rounds: kept checkpoints (``checkpoints_to_log``), the
    evaluation report, each eval set's history, the TensorBoard events; then waits for MLflow
    to have everything (fails clearly if it stayed away)."""
    keep = recorder.settings.checkpoints_to_log
    if keep:
        for kept_step in kept_checkpoint_steps(params.model_dir)[-keep:]:
            recorder.log_files(_checkpoint_artifacts(params.model_dir, kept_step))
    histories = {e.name: recorded_evaluations(params, e.name) for e in params.eval_sets}
    files = [
        ArtifactFile(path, os.path.dirname(os.path.relpath(path, params.model_dir)))
        for path in evaluation_report(quote(params), histories)
    ]
    files += [
        ArtifactFile(
            os.path.join(eval_dir(params.model_dir, e.name), HISTORY_FILE),
            f"{REPORTS_FOLDER}/{e.name}",
        )
        for e in params.eval_sets
        if histories[e.name]
    ]
    recorder.log_files(files)
    # Under tensorboard/<model folder>/ so that `tensorboard --logdir` on a download names
    # the runs as on the model_dir's parent: <model>, <model>/eval_<name>.
    model_folder = os.path.basename(params.model_dir.rstrip("/"))
    recorder.log_files(
        directory_files(params.model_dir, f"tensorboard/{model_folder}", match="tfevents")
    )
    deliver_records(recorder)


@flow(name="train-and-evaluate")
def train_and_evaluate(
    params: TrainingParams | None = None,
    tracking_params: TrackingParams | None = None,
    mlflow_run_id: str | None = None,
) -> TrainingResult:
    """Train ``params.model`` in rounds to ``params.max_steps``, evaluating every eval set after
    each round, with everything recorded in MLflow (``mlflow_run_id``, or this flow run's own
    run). Holds the model_dir's writer lock (``tasks/model_dir_lock.py``) while it trains."""
    params = params or TrainingParams()
    tracking_params = tracking_params or TrackingParams()
    about = f"Trains `{params.model.title}` on `{params.data_dir}` into `{params.model_dir}`."
    with tracked_run(tracking_params, mlflow_run_id, about) as recorder:
        _record_inputs(params, recorder)
        with model_dir_lock(params.model_dir, str(flow_run.id)):
            _adopt_data(params, recorder)
            with sampling(recorder):
                began = time.perf_counter()
                step = _rounds(params, recorder)
                rounds_seconds = time.perf_counter() - began
            _record_outputs(params, recorder)
    latest = {}
    for e in params.eval_sets:
        entry = dict(recorded_evaluations(params, e.name)[-1])
        latest[e.name] = Evaluation(e.name, int(entry.pop("global_step")), entry)
    return TrainingResult(
        recorder.run_id, os.fspath(params.model_dir), step, latest, rounds_seconds
    )
