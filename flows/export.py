"""The export flow: the latest checkpoint → SavedModel → MLflow model registry.

path = export_model(model_dir → model_dir/export/<name>/<timestamp>)
log it under saved_model/ and as a pyfunc model; register a new version; alias it
candidate; promote it to champion when its gate metric beats the champion's
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.params import ExportParams, TrackingParams, TrainingParams
from flows.train_and_evaluate import mlflow_run, recorded_evaluations
from tasks import tracking
from tasks.export import export_model


@flow(name="export")
def export(
    params: TrainingParams | None = None,
    export_params: ExportParams | None = None,
    tracking_params: TrackingParams | None = None,
    mlflow_run_id: str | None = None,
) -> dict[str, Any]:
    """Export the model of ``params`` and register it; the champion gate reads the latest
    recorded evaluation of ``export_params.gate_eval``. Returns the SavedModel path and the
    registration (name, version, aliases)."""
    params = params or TrainingParams()
    export_params = export_params or ExportParams()
    tracking_params = tracking_params or TrackingParams()
    with mlflow_run(tracking_params, mlflow_run_id) as run_id:
        path = export_model(params, export_params.export_name)
        history = recorded_evaluations(params, export_params.gate_eval)
        gate_value = history[-1].get(export_params.gate_metric) if history else None
        registration = tracking.register_model(
            tracking_params, run_id, path, export_params, gate_value
        )
    create_markdown_artifact(
        f"### Exported model\n\n- SavedModel: `{path}`\n"
        + (
            f"- Registered: `{registration['name']}` version {registration['version']} "
            f"({', '.join(registration['aliases'])})\n"
            f"- {registration['gate_key']}: {registration['gate_value']} "
            f"(champion before: {registration['champion_value']})\n"
            if "version" in registration
            else "- Not registered (no registered_model_name)\n"
        ),
        key="exported-model",
    )
    return {"saved_model": path, **registration}
