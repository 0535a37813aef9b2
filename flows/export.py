"""The export flow: the latest checkpoint → SavedModel → MLflow LoggedModel and registry.

refuse when the model_dir's evaluations are of other data than data_dir holds, or (a
registered model) when the gate's evaluation at the latest step lacks the gate metric
path = export_model(model_dir → model_dir/export/<name>/<timestamp>)
the evaluations recorded at the exported step, on their datasets; rows of the data set
log the SavedModel as a LoggedModel (those evaluations linked) and register a new
version; alias it candidate; promote it to champion when its gate metric beats the
champion's
"""

from __future__ import annotations

import dataclasses

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from estimator_core.data import read_manifest
from flows.artifacts import artifact_key
from flows.train_and_evaluate import recorded_evaluations
from tasks import data_lineage
from tasks.export import export_model, serving_example
from tasks.params import ExportParams, TrackingParams, TrainingParams
from tasks.tracking.client import logged_model_url, model_version_url
from tasks.tracking.datasets import dataset_name, split_digest
from tasks.tracking.prefect_tasks import register_model, tracked_run
from tasks.tracking.recorder import flatten
from tasks.tracking.registry import ModelEvaluation, ModelRecord, Registration, gate_key
from tasks.tracking.runs import prefect_flow_run_url
from tasks.training import latest_step


@dataclasses.dataclass(frozen=True)
class ExportResult:
    saved_model: str
    registration: Registration


def export_settings(export: ExportParams) -> dict[str, object]:
    """The export's MLflow params: the gate (metric, direction, aliases) and names."""
    return {
        "export": {
            "name": export.export_name,
            "registered_model_name": export.registered_model_name,
            "gate_metric": gate_key(export),
            "gate_direction": "higher is better" if export.higher_is_better else "lower is better",
            "candidate_alias": export.candidate_alias,
            "champion_alias": export.champion_alias,
        }
    }


def model_record(params: TrainingParams, step: int) -> ModelRecord:
    """What the registry records with the model exported at global step ``step``: the
    evaluations recorded at that very step (an older one is not this model's), each on its
    split, a few rows of the first eval set's split, the model's params, where it comes from."""
    manifest = read_manifest(params.data_dir)
    evaluations = []
    for eval_set in params.eval_sets:
        history = recorded_evaluations(params, eval_set.name)
        if history and history[-1]["global_step"] == step:
            metrics = {k: float(v) for k, v in history[-1].items() if k != "global_step"}
            evaluations.append(
                ModelEvaluation(
                    eval_set.name,
                    step,
                    metrics,
                    dataset_name(params.data_dir, eval_set.split),
                    split_digest(manifest, eval_set.split),
                )
            )
    flow_run_id = str(flow_run.id)
    return ModelRecord(
        global_step=step,
        evaluations=tuple(evaluations),
        input_example=serving_example(params.data_dir, params.eval_sets[0].split),
        params=flatten(
            {"model": params.model.model_dump(), "run_config": params.run_config.model_dump()}
        ),
        flow_run_id=flow_run_id,
        description=f"`{params.model.title}` exported by Prefect flow run "
        f"[{flow_run.name}]({prefect_flow_run_url(flow_run_id)}).",
    )


def check_gate_evaluation(params: TrainingParams, export_params: ExportParams, step: int) -> None:
    """ValueError, before anything is exported, when the champion gate would have nothing to
    read: no evaluation of ``gate_eval`` at the step being exported, or one without
    ``gate_metric`` (a misspelt metric, "accuracy" of a regressor)."""
    history = recorded_evaluations(params, export_params.gate_eval)
    at_step = [entry for entry in history if entry["global_step"] == step]
    if not at_step:
        raise ValueError(
            f"no evaluation of {export_params.gate_eval!r} at step {step}, the step being "
            "exported: run train-and-evaluate on this model_dir first (the champion gate "
            "compares that evaluation)"
        )
    metrics = sorted(k for k in at_step[-1] if k != "global_step")
    if export_params.gate_metric not in metrics:
        raise ValueError(
            f"export.gate_metric {export_params.gate_metric!r}: eval set "
            f"{export_params.gate_eval!r} produces no such metric (it has {metrics}); give "
            "one of these"
        )


def registration_markdown(settings: TrackingParams, result: ExportResult) -> str:
    """The export as Markdown: the SavedModel, the LoggedModel and version, with links."""
    registration = result.registration
    lines = [
        f"- SavedModel: `{result.saved_model}`",
        f"- LoggedModel: [{registration.model_id}]"
        f"({logged_model_url(settings, registration.experiment_id, registration.model_id)})",
    ]
    if registration.version is not None:
        url = model_version_url(settings, registration.name, registration.version)
        lines.append(
            f"- Registered: [{registration.name} version {registration.version}]({url}) "
            f"({', '.join(registration.aliases)})"
        )
        lines.append(f"- Champion gate: {registration.gate.reason}")
    else:
        lines.append("- Not registered (no registered_model_name)")
    return "\n".join(lines) + "\n"


@flow(name="export")
def export(
    params: TrainingParams | None = None,
    export_params: ExportParams | None = None,
    tracking_params: TrackingParams | None = None,
    mlflow_run_id: str | None = None,
) -> ExportResult:
    """Export the model of ``params`` and register it; the champion gate reads the evaluation
    of ``export_params.gate_eval`` recorded at the exported step."""
    params = params or TrainingParams()
    export_params = export_params or ExportParams()
    tracking_params = tracking_params or TrackingParams()
    about = f"Exports `{params.model_dir}` as `{export_params.registered_model_name}`."
    with tracked_run(tracking_params, mlflow_run_id, about) as recorder:
        recorder.log_params(export_settings(export_params))
        data_lineage.check_current(
            params.model_dir, read_manifest(params.data_dir)["fingerprint"], params.data_dir
        )
        step = latest_step(params.model_dir)
        if export_params.registered_model_name:
            check_gate_evaluation(params, export_params, step)
        path = export_model(params, export_params.export_name)
        record = model_record(params, step)
        registration = register_model(tracking_params, recorder.run_id, path, export_params, record)
    result = ExportResult(path, registration)
    create_markdown_artifact(
        "### Exported model\n\n" + registration_markdown(tracking_params, result),
        key=artifact_key(params.model_dir, "exported-model"),
    )
    return result
