"""The training pipeline: data prep → train/evaluate rounds → export and registration.

    run = MLflow run of this flow run (a retried flow run continues it)
    prepare_data(params.data)                         # CPU pool
    train_and_evaluate(params.training, run)          # GPU pool
    export(params.training, params.export, run)       # CPU pool
    summary artifact: final evaluations, MLflow run and model version, data fingerprint
    mark the MLflow run FINISHED (FAILED if a stage failed)

With ``stages="in-process"`` (the embedded default) the stages are subflows of this run; with
``stages="deployments"`` each stage is its deployment's flow run, started by
``run_deployment`` on the stage's work pool; the stages hand each other paths only. Either
way a stage's flow run is named after this one: ``<pipeline run>/train-and-evaluate``.

``python -m flows.training_pipeline`` runs it with the defaults (the README's first command);
its options set any parameter (``--help`` lists them; ``flows/cli.py``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from estimator_core.data import read_manifest
from flows import cli
from flows.artifacts import artifact_key
from flows.embedded_api import embedded_api
from flows.export import ExportResult, export, registration_markdown
from flows.prepare_data import prepare_data
from flows.process_guard import guard_children
from flows.train_and_evaluate import TrainingResult, recorded_evaluations, train_and_evaluate
from tasks.data_prep import PreparedData
from tasks.params import PipelineParams
from tasks.tracking.client import run_url, tracking_uri, ui_url
from tasks.tracking.prefect_tasks import tracked_run
from tasks.tracking.recorder import RunRecorder
from tasks.tracking.runs import LOCAL_PREFECT_UI_URL

STAGE_DEPLOYMENTS = {
    "prepare_data": "prepare-data/prepare-data-cpu",
    "train_and_evaluate": "train-and-evaluate/train-gpu",
    "export": "export/export-cpu",
}


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    """The MLflow run, and (stages in-process) what each stage returned."""

    mlflow_run_id: str
    data: PreparedData | None = None
    training: TrainingResult | None = None
    export: ExportResult | None = None


def _run_stage(stage: str, parameters: dict[str, Any], run_name: str) -> None:
    run = run_deployment(
        STAGE_DEPLOYMENTS[stage],
        parameters=parameters,
        flow_run_name=run_name,
        timeout=None,
        poll_interval=1,
    )
    if not run.state or not run.state.is_completed():
        raise RuntimeError(
            f"stage {stage} ({STAGE_DEPLOYMENTS[stage]}) ended "
            f"{run.state.name if run.state else 'without a state'}: flow run {run.id}"
        )


def summary_markdown(params: PipelineParams, recorder: RunRecorder, result: PipelineResult) -> str:
    """The pipeline run in Markdown: the final evaluations (from the model_dir's histories),
    the data set, the MLflow run, and the exported model (in-process stages)."""
    training = params.training
    lines = [
        f"### Training pipeline `{flow_run.name}`",
        "",
        "| eval set | step | " + " | ".join(metrics := _metric_names(params)) + " |",
        "| --- | --- | " + " | ".join("---" for _ in metrics) + " |",
    ]
    for eval_set in training.eval_sets:
        history = recorded_evaluations(training, eval_set.name)
        if history:
            last = history[-1]
            cells = [f"{last[m]:.4g}" if m in last else "" for m in metrics]
            lines.append(f"| {eval_set.name} | {last['global_step']} | " + " | ".join(cells) + " |")
    fingerprint = read_manifest(training.data_dir)["fingerprint"]
    lines += [
        "",
        f"- Data: `{training.data_dir}` (fingerprint `{fingerprint[:16]}`)",
        f"- Model dir: `{training.model_dir}`",
        f"- MLflow run: [{recorder.run_id}]({run_url(recorder.settings, recorder.run_id)})",
    ]
    if result.export is not None:
        lines.append(registration_markdown(params.tracking, result.export).rstrip())
    return "\n".join(lines) + "\n"


def _metric_names(params: PipelineParams) -> list[str]:
    names = {
        key
        for eval_set in params.training.eval_sets
        for entry in recorded_evaluations(params.training, eval_set.name)[-1:]
        for key in entry
        if key != "global_step"
    }
    return sorted(names, key=lambda k: (k != "loss", k))


@flow(name="training-pipeline")
def training_pipeline(params: PipelineParams | None = None) -> PipelineResult:
    """Run every stage for ``params``; returns the MLflow run id and each stage's result."""
    params = params or PipelineParams()
    name = flow_run.name
    about = (
        f"Trains `{params.training.model.title}` on `{params.data.source}` "
        f"(prepared in `{params.data.output_dir}`) into `{params.training.model_dir}`."
    )
    with tracked_run(params.tracking, None, about) as recorder:
        recorder.log_params({"data": params.data.model_dump()})
        if params.stages == "in-process":
            data = prepare_data.with_options(flow_run_name=f"{name}/prepare-data")(params.data)
            trained = train_and_evaluate.with_options(flow_run_name=f"{name}/train-and-evaluate")(
                params.gated_training(), params.tracking, recorder.run_id
            )
            exported = export.with_options(flow_run_name=f"{name}/export")(
                params.training, params.export, params.tracking, recorder.run_id
            )
            result = PipelineResult(recorder.run_id, data, trained, exported)
        else:
            # Every stage records into the MLflow store the parent resolved (its own default
            # could be another host's sqlite file); locations are absolute once validated.
            tracking_params = params.tracking.model_copy(
                update={"tracking_uri": tracking_uri(params.tracking)}
            )
            common = {
                "tracking_params": tracking_params.model_dump(),
                "mlflow_run_id": recorder.run_id,
            }
            training = params.gated_training().model_dump()
            # The stages' processes add to this run's outbox: hand it over emptied.
            recorder.deliver(required=False)
            _run_stage("prepare_data", {"params": params.data.model_dump()}, f"{name}/prepare-data")
            _run_stage(
                "train_and_evaluate", {"params": training, **common}, f"{name}/train-and-evaluate"
            )
            _run_stage(
                "export",
                {"params": training, "export_params": params.export.model_dump(), **common},
                f"{name}/export",
            )
            result = PipelineResult(recorder.run_id)
        create_markdown_artifact(
            summary_markdown(params, recorder, result),
            key=artifact_key(params.training.model_dir, "pipeline-summary"),
            description="final evaluations, MLflow run and model version, data fingerprint",
        )
    get_run_logger().info(
        "MLflow run %s: %s", recorder.run_id, run_url(params.tracking, recorder.run_id)
    )
    return result


def main(argv: list[str] | None = None) -> None:
    params = cli.parse(PipelineParams, argv, "python -m flows.training_pipeline", __doc__)
    guard_children()  # a killed pipeline leaves no embedded Prefect server behind
    with embedded_api():
        result = training_pipeline(params)
    uri = tracking_uri(params.tracking)
    print("\nDone.")
    for name, evaluation in result.training.evaluations.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in evaluation.metrics.items())
        print(f"  eval {name} at step {evaluation.global_step}: {shown}")
    print(f"  TFRecords:   {result.data.data_dir}")
    print(f"  Checkpoints: {params.training.model_dir}")
    print(f"  SavedModel:  {result.export.saved_model}")
    registration = result.export.registration
    if registration.version is not None:
        print(
            f"  Registered:  {registration.name} version {registration.version} "
            f"({', '.join(registration.aliases)}): {registration.gate.reason}"
        )
    print("\nInspect it:")
    if uri.startswith("sqlite:"):
        print(
            f"  MLflow UI:   .venv/bin/mlflow ui --backend-store-uri {uri}   → {ui_url(params.tracking)}"
        )
    print(f"  Prefect UI:  .venv/bin/prefect server start   → {LOCAL_PREFECT_UI_URL}")
    models = os.path.dirname(params.training.model_dir.rstrip("/"))
    print(f"  TensorBoard: .venv/bin/tensorboard --logdir {models}   → http://localhost:6006")
    print(f"  MLflow run:  {run_url(params.tracking, result.mlflow_run_id)}")


if __name__ == "__main__":
    main()
