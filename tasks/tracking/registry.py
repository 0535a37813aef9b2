"""An exported SavedModel → an MLflow 3 LoggedModel and a new registered model version.

The LoggedModel is what MLflow 3's Models tab lists and compares: named after the registered
model, logged at the training's final global step as an output of the run, with the final
evaluations linked to it (``model_id``, and the dataset each eval set read), its model params,
a real input example (rows of the data set) and the SavedModel as a pyfunc that calls its
``serving_default`` signature (``tasks/serving_model.py``). The registered version points at
it (``models:/<model_id>``), carries a description, the Prefect flow run and the champion
gate's decision, and gets the candidate alias, and the champion alias when the gate says so.

Every step is idempotent, so a retried registration finishes what an earlier attempt started:
the LoggedModel is found by its export tag, the version by its LoggedModel.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import LoggedModelOutput, Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils import mlflow_tags

from tasks.logs import run_logger
from tasks.params import ExportParams, TrackingParams
from tasks.tracking.client import connect, tracking_uri
from tasks.tracking.gate import Champion, GateDecision, decide

EXPORT_TAG = "export.saved_model"  # the export's folder name (a timestamp), not its path
FLOW_RUN_TAG = "prefect.flow_run_id"


@dataclasses.dataclass(frozen=True)
class ModelEvaluation:
    """The final evaluation of one eval set: its metrics at ``global_step`` on a dataset."""

    eval_name: str
    global_step: int
    metrics: Mapping[str, float]
    dataset_name: str
    dataset_digest: str


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """What a registration knows about the model besides its SavedModel."""

    global_step: int
    evaluations: tuple[ModelEvaluation, ...]
    input_example: Mapping[str, np.ndarray] | None
    params: Mapping[str, str]
    flow_run_id: str
    description: str  # where it comes from (the Prefect flow run), in Markdown


@dataclasses.dataclass(frozen=True)
class Registration:
    """The LoggedModel, and (with a registered model name) the version, its aliases and the
    gate's decision."""

    model_uri: str
    model_id: str
    experiment_id: str
    name: str | None = None
    version: str | None = None
    aliases: tuple[str, ...] = ()
    gate: GateDecision | None = None


def gate_key(export: ExportParams) -> str:
    return f"{export.gate_eval}/{export.gate_metric}"


def register_saved_model(
    settings: TrackingParams,
    run_id: str,
    saved_model_dir: str,
    export: ExportParams,
    model: ModelRecord,
) -> Registration:
    """Log ``saved_model_dir`` as run ``run_id``'s LoggedModel and register it (see the module
    doc); returns what was done."""
    client = connect(settings)
    uri = tracking_uri(settings)
    # MLflow's fluent log_model, and a sqlite registry resolving models:/ sources, read the
    # process-wide URIs.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = client.get_run(run_id).info.experiment_id
    export_key = os.path.basename(os.path.normpath(saved_model_dir))
    model_id = _logged_model(client, experiment, run_id, saved_model_dir, export, model)
    model_uri = f"models:/{model_id}"
    name = export.registered_model_name
    if not name:
        return Registration(model_uri, model_id, experiment)
    champion = _champion(client, name, export)
    version = _version_of(client, name, run_id, model_id)
    candidate = next(
        (
            e.metrics.get(export.gate_metric)
            for e in model.evaluations
            if e.eval_name == export.gate_eval
        ),
        None,
    )
    gate = decide(gate_key(export), version, candidate, champion, export.higher_is_better)
    tags = {
        FLOW_RUN_TAG: model.flow_run_id,
        EXPORT_TAG: export_key,
        "global_step": str(model.global_step),
        "gate.metric": gate.metric,
        "gate.direction": "higher is better" if export.higher_is_better else "lower is better",
        "gate.decision": "promoted" if gate.promote else "not promoted",
        "gate.reason": gate.reason,
        "gate.champion_before": champion.version if champion else "none",
    }
    description = _description(model, export, gate)
    if version is None:
        _ensure_registered_model(client, name)
        version = str(
            client.create_model_version(
                name,
                model_uri,
                run_id=run_id,
                tags=tags,
                description=description,
                model_id=model_id,
            ).version
        )
    else:  # a retry: bring what an earlier attempt wrote up to date
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.update_model_version(name, version, description=description)
    _list_version_on_model(client, model_id, name, version)
    client.set_registered_model_alias(name, export.candidate_alias, version)
    aliases = [export.candidate_alias]
    if gate.promote:
        client.set_registered_model_alias(name, export.champion_alias, version)
        aliases.append(export.champion_alias)
    run_logger(__name__).info(
        "registered %s version %s (%s): %s", name, version, ", ".join(aliases), gate.reason
    )
    return Registration(model_uri, model_id, experiment, name, version, tuple(aliases), gate)


def _logged_model(
    client: MlflowClient,
    experiment: str,
    run_id: str,
    saved_model_dir: str,
    export: ExportParams,
    model: ModelRecord,
) -> str:
    """The id of the READY LoggedModel of this export, logged (with its metrics) if needed."""
    export_key = os.path.basename(os.path.normpath(saved_model_dir))
    found = client.search_logged_models(
        [experiment],
        filter_string=f"source_run_id = '{run_id}' AND tags.`{EXPORT_TAG}` = '{export_key}'",
    )
    ready = [m for m in found if str(m.status) == "READY"]
    for stale in found:  # an earlier attempt that failed while logging
        if stale not in ready:
            client.delete_logged_model(stale.model_id)
    if ready:
        model_id = ready[0].model_id
    else:
        created = client.create_logged_model(
            experiment,
            name=export.registered_model_name or export.export_name,
            source_run_id=run_id,
            tags={EXPORT_TAG: export_key, FLOW_RUN_TAG: model.flow_run_id},
            params=dict(model.params),
        )
        model_id = created.model_id
        _log_pyfunc(client, run_id, saved_model_dir, model_id, model.input_example)
        client.log_outputs(run_id, [LoggedModelOutput(model_id, step=model.global_step)])
    if not client.get_logged_model(model_id).metrics:
        _link_metrics(client, run_id, model_id, model.evaluations)
    return model_id


def _log_pyfunc(
    client: MlflowClient,
    run_id: str,
    saved_model_dir: str,
    model_id: str,
    input_example: Mapping[str, np.ndarray] | None,
) -> None:
    """The SavedModel under the run's ``saved_model/`` and as the pyfunc of LoggedModel
    ``model_id`` (no active run: MLflow would link the run's metrics itself, without their
    datasets)."""
    import tensorflow as tf

    from tasks import serving_model

    client.log_artifacts(run_id, saved_model_dir, serving_model.SAVED_MODEL_ARTIFACT)
    mlflow.pyfunc.log_model(
        python_model=serving_model.__file__,
        artifacts={serving_model.SAVED_MODEL_ARTIFACT: saved_model_dir},
        signature=serving_model.signature_of(saved_model_dir),
        input_example=dict(input_example) if input_example is not None else None,
        pip_requirements=[
            f"tensorflow=={tf.__version__}",
            f"mlflow=={mlflow.__version__}",
            "numpy",
            "pandas",
        ],
        model_id=model_id,
    )


def _link_metrics(
    client: MlflowClient, run_id: str, model_id: str, evaluations: Sequence[ModelEvaluation]
) -> None:
    """The final evaluations as the LoggedModel's metrics, each on its dataset. They are the
    run's metrics at that step: logged with the timestamps the run's history has for them,
    so the run's history does not count them twice."""
    metrics = []
    for evaluation in evaluations:
        for metric, value in evaluation.metrics.items():
            key = f"{evaluation.eval_name}/{metric}"
            logged = [
                m.timestamp
                for m in client.get_metric_history(run_id, key)
                if m.step == evaluation.global_step and m.value == value
            ]
            metrics.append(
                Metric(
                    key,
                    value,
                    logged[0] if logged else int(time.time() * 1000),
                    evaluation.global_step,
                    model_id=model_id,
                    dataset_name=evaluation.dataset_name,
                    dataset_digest=evaluation.dataset_digest,
                )
            )
    for start in range(0, len(metrics), 100):
        client.log_batch(run_id, metrics=metrics[start : start + 100])


def _list_version_on_model(client: MlflowClient, model_id: str, name: str, version: str) -> None:
    """Name the version on its LoggedModel (tag ``mlflow.modelVersions``), where the Models tab
    shows it: a tracking server does it itself, a local store does not."""
    key = mlflow_tags.MLFLOW_MODEL_VERSIONS
    listed = json.loads(client.get_logged_model(model_id).tags.get(key, "[]"))
    entry = {"name": name, "version": version}
    if entry not in listed:
        client.set_logged_model_tags(model_id, {key: json.dumps([*listed, entry])})


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if "already exists" not in str(err).lower():
            raise


def _version_of(client: MlflowClient, name: str, run_id: str, model_id: str) -> str | None:
    """The version of ``name`` that this run registered for LoggedModel ``model_id``, if any."""
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:  # no such registered model yet
        return None
    return next((str(v.version) for v in versions if _model_id_of(v) == model_id), None)


def _model_id_of(version: Any) -> str | None:
    """The LoggedModel a version points at (a sqlite registry keeps it only in the source
    URI, ``models:/<model_id>``)."""
    if version.model_id:
        return version.model_id
    source = version.source or ""
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def _champion(client: MlflowClient, name: str, export: ExportParams) -> Champion | None:
    """The champion version and its gate metric: the latest-step value of that metric linked
    to its LoggedModel (None when it has none)."""
    try:
        version = client.get_model_version_by_alias(name, export.champion_alias)
    except MlflowException:
        return None
    value = None
    model_id = _model_id_of(version)
    if model_id:
        linked = [m for m in client.get_logged_model(model_id).metrics if m.key == gate_key(export)]
        if linked:
            value = max(linked, key=lambda m: m.step).value
    return Champion(str(version.version), value)


def _description(model: ModelRecord, export: ExportParams, gate: GateDecision) -> str:
    lines = [model.description, "", f"Trained to global step {model.global_step}."]
    for evaluation in model.evaluations:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(evaluation.metrics.items()))
        lines.append(f"- `{evaluation.eval_name}` on {evaluation.dataset_name}: {shown}")
    verdict = f"promoted to `{export.champion_alias}`" if gate.promote else "not promoted"
    lines += ["", f"Champion gate: {verdict} ({gate.reason})."]
    return "\n".join(lines)
