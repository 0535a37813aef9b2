"""MLflow tracking tasks: one run per pipeline run, found again by its Prefect flow run id.

Every call names its MLflow run by id (``MlflowClient``), never through MLflow's thread-local
"active run", so tasks are safe on any thread or worker and on retry. Metrics go in batches
(``log_batch``): one call per round, whatever the number of eval sets and metrics. Records go
through a durable outbox (``tasks/outbox.py``): kept on local disk first, then sent in order by
a background thread while training goes on; while the server is unreachable they wait there
and are delivered when it is back. :func:`deliver` waits for what is still on its way (the
flow calls it when its rounds end); ``python -m tasks.tracking deliver`` delivers what a
finished process left behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from estimator_core.data import read_manifest
from flows.params import ExportParams, TrackingParams
from tasks.outbox import Courier, Outbox, is_outage

# MLflow's client retries an unreachable server for minutes by default (7 retries, backoff
# factor 2, 120 s timeout); the outbox makes waiting pointless, so fail over quickly unless
# the environment says otherwise.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def _logger() -> Any:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tasks.tracking")


FLOW_RUN_TAG = "prefect.flow_run_id"
SAVED_MODEL_TAG = "saved_model_path"
MAX_PARAM_LENGTH = 6000


def tracking_uri(settings: TrackingParams) -> str:
    """The tracking URI: the setting, ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db`` (sqlite)."""
    return (
        settings.tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{os.path.abspath('mlflow.db')}"
    )


_LOADED_BLOCKS: set[str] = set()
_CREDENTIAL_VARIABLES = {
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
    "token": "MLFLOW_TRACKING_TOKEN",
}


def load_credentials(block_name: str) -> None:
    """Put the MLflow credentials kept in Prefect Secret block ``block_name`` (JSON with
    ``username`` and ``password``, or ``token``) into this process's environment, where MLflow's
    client reads them; they go nowhere else."""
    from prefect.blocks.system import Secret

    value = Secret.load(block_name).get()
    fields = value if isinstance(value, dict) else json.loads(value)
    unknown = set(fields) - set(_CREDENTIAL_VARIABLES)
    if unknown or not fields:
        raise ValueError(
            f"Secret block {block_name!r} must hold username and password, or token; "
            f"found keys {sorted(fields)}"
        )
    for key, variable in _CREDENTIAL_VARIABLES.items():
        if key in fields:
            os.environ[variable] = str(fields[key])


def client_for(settings: TrackingParams) -> MlflowClient:
    if settings.credentials_block and settings.credentials_block not in _LOADED_BLOCKS:
        load_credentials(settings.credentials_block)
        _LOADED_BLOCKS.add(settings.credentials_block)
    uri = tracking_uri(settings)
    # The fluent API (log_model) reads the global URI; keep it in step with the client.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, registry_uri=uri)


def _experiment_id(client: MlflowClient, settings: TrackingParams) -> str:
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = None
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        # Artifacts beside the database, at an absolute path: readable from any directory.
        database = os.path.abspath(uri.removeprefix("sqlite:///"))
        location = "file://" + os.path.join(os.path.dirname(database), "mlartifacts")
    try:
        return client.create_experiment(settings.experiment, artifact_location=location)
    except MlflowException:  # created meanwhile by a concurrent run
        return client.get_experiment_by_name(settings.experiment).experiment_id


def git_commit() -> str | None:
    """The commit of the code being run (the working directory's git HEAD), if any."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def start_or_resume_run(
    settings: TrackingParams, flow_run_id: str, tags: Mapping[str, str] | None = None
) -> str:
    """The id of the MLflow run tagged with ``flow_run_id``, created when there is none.

    A retried or resumed Prefect flow run keeps its id, so it continues the same MLflow run
    (set back to RUNNING) instead of starting a new one.
    """
    client = client_for(settings)
    experiment_id = _experiment_id(client, settings)
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{FLOW_RUN_TAG}` = '{flow_run_id}'", max_results=1
    )
    if found:
        run_id = found[0].info.run_id
        deliver(settings, run_id, required=False)  # what an earlier attempt left waiting
        if found[0].info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        return run_id
    all_tags = {FLOW_RUN_TAG: flow_run_id, **(tags or {})}
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    run_name = settings.run_name or all_tags.get("prefect.flow_run_name") or None
    run = client.create_run(experiment_id, tags=all_tags, run_name=run_name)
    return run.info.run_id


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists → ``{"a.b.0.c": "value"}`` with MLflow-safe keys and values."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, name + "."))
        else:
            flat[_safe_key(name)] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def _safe_key(key: str) -> str:
    # MLflow keys allow alphanumerics, _ - . space / and nothing else.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


_COURIERS: dict[tuple[str, str], Courier] = {}
_COURIERS_LOCK = threading.Lock()
_WARNED_OUTAGE: set[str] = set()


def _courier_key(settings: TrackingParams, run_id: str) -> tuple[str, str]:
    return os.path.abspath(settings.outbox_dir), run_id


def courier(settings: TrackingParams, run_id: str) -> Courier:
    """The process's courier for run ``run_id``'s outbox (started on first use; finish_run
    retires it)."""
    key = _courier_key(settings, run_id)
    with _COURIERS_LOCK:
        if key not in _COURIERS:
            _COURIERS[key] = Courier(Outbox(*key), lambda: client_for(settings))
        return _COURIERS[key]


def _send(settings: TrackingParams, run_id: str, record: dict[str, Any]) -> None:
    sender = courier(settings, run_id)
    sender.post(record)
    if sender.in_outage and sender.outbox.dir not in _WARNED_OUTAGE:
        _WARNED_OUTAGE.add(sender.outbox.dir)
        _logger().warning(
            "MLflow at %s is unreachable: records kept in %s, delivered when it is back",
            tracking_uri(settings),
            sender.outbox.dir,
        )


def log_params(settings: TrackingParams, run_id: str, params: Mapping[str, Any]) -> None:
    """Log ``params`` flattened; keys already logged (by an earlier attempt) are skipped."""
    _send(settings, run_id, {"op": "batch", "params": flatten(params)})


def _metric_rows(records: Iterable[tuple[str, float, int]]) -> list[tuple[str, float, int, int]]:
    now = int(time.time() * 1000)
    return [(key, float(value), now, int(step)) for key, value, step in records]


def log_metrics(
    settings: TrackingParams, run_id: str, records: Iterable[tuple[str, float, int]]
) -> int:
    """Log ``(key, value, step)`` records in one batch record; returns how many."""
    metrics = _metric_rows(records)
    _send(settings, run_id, {"op": "batch", "metrics": metrics})
    return len(metrics)


def _directory_files(directory: str, artifact_path: str, match: str | None) -> list[list[str]]:
    files = []
    for root, _dirs, names in os.walk(directory):
        relative = os.path.relpath(root, directory)
        target = artifact_path if relative == "." else f"{artifact_path}/{relative}"
        files += [
            [os.path.join(root, name), target]
            for name in sorted(names)
            if match is None or match in name
        ]
    return files


def log_directory(
    settings: TrackingParams,
    run_id: str,
    directory: str,
    artifact_path: str,
    match: str | None = None,
) -> int:
    """Log the files under ``directory`` (those whose name contains ``match``, if given) under
    ``artifact_path``, keeping their relative folders; returns how many."""
    files = _directory_files(directory, artifact_path, match)
    if files:
        _send(settings, run_id, {"op": "batch", "files": files})
    return len(files)


def _checkpoint_files(model_dir: str, step: int) -> list[list[str]]:
    prefix = f"model.ckpt-{step}."
    names = sorted(n for n in os.listdir(model_dir) if n.startswith(prefix))
    return [[os.path.join(model_dir, name), "checkpoints"] for name in names]


def log_checkpoint(settings: TrackingParams, run_id: str, model_dir: str, step: int) -> int:
    """Log the files of checkpoint ``model.ckpt-<step>`` under ``checkpoints/``."""
    files = _checkpoint_files(model_dir, step)
    _send(settings, run_id, {"op": "batch", "files": files})
    return len(files)


def log_round(
    settings: TrackingParams,
    run_id: str,
    records: Iterable[tuple[str, float, int]],
    model_dir: str,
    checkpoint_step: int | None,
) -> None:
    """A round's record: its metrics and, when ``checkpoint_step`` is given, that
    checkpoint's files, kept as one outbox record (one file written and synced per round)."""
    files = [] if checkpoint_step is None else _checkpoint_files(model_dir, checkpoint_step)
    _send(settings, run_id, {"op": "batch", "metrics": _metric_rows(records), "files": files})


def log_dataset(
    settings: TrackingParams, run_id: str, data_dir: str, contexts: Mapping[str, str]
) -> None:
    """Record the splits as run inputs (``contexts``: split → "training"/"evaluation"), with
    the manifest's fingerprint as digest, and log the schema, stats and manifest under ``data/``."""
    digest = read_manifest(data_dir)["fingerprint"][:32]
    datasets = [
        {
            "uri": os.path.join(data_dir, split),
            "name": f"{os.path.basename(data_dir.rstrip('/'))}/{split}",
            "digest": digest,
            "context": context,
        }
        for split, context in contexts.items()
    ]
    _send(settings, run_id, {"op": "inputs", "datasets": datasets})
    files = [
        [os.path.join(data_dir, name), "data"]
        for name in ("schema.json", "stats.json", "manifest.json")
        if os.path.exists(os.path.join(data_dir, name))
    ]
    _send(settings, run_id, {"op": "batch", "files": files})


class TrackingUndeliveredError(RuntimeError):
    """Records of a run are still waiting in the outbox: the tracking server stayed away."""


def deliver(settings: TrackingParams, run_id: str, required: bool = True) -> int:
    """Send the run's waiting records, in order, and wait until they are delivered; returns
    how many still wait. With ``required``, records still waiting raise
    :class:`TrackingUndeliveredError` naming the outbox and the command that delivers them
    later (nothing is lost: they stay on disk)."""
    sender = courier(settings, run_id)
    waiting = sender.flush()
    if not waiting:
        _WARNED_OUTAGE.discard(sender.outbox.dir)
    if waiting and required:
        raise TrackingUndeliveredError(
            f"MLflow at {tracking_uri(settings)} stayed unreachable: {waiting} record(s) of run "
            f"{run_id} are kept in {sender.outbox.dir}. Deliver them when it is back with: "
            f"python -m tasks.tracking deliver --tracking-uri {tracking_uri(settings)} "
            f"--outbox {settings.outbox_dir} --run-id {run_id}"
        )
    return waiting


def _registered_version(
    client: MlflowClient, name: str, run_id: str, saved_model_dir: str
) -> str | None:
    """The version of ``name`` this run already registered for ``saved_model_dir``, if any."""
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:  # no such registered model yet
        return None
    for found in versions:
        if found.tags.get(SAVED_MODEL_TAG) == saved_model_dir:
            return str(found.version)
    return None


def _log_pyfunc(client: MlflowClient, run_id: str, saved_model_dir: str, name: str | None):
    """Log the SavedModel under ``saved_model/`` and as a pyfunc model (registered as a new
    version of ``name`` when given); returns MLflow's ModelInfo."""
    with warnings.catch_warnings():  # MLflow's advice on predict's type hints: see the module
        warnings.filterwarnings("ignore", message=".*type hint", category=UserWarning)
        from tasks import serving_model
    import tensorflow as tf

    client.log_artifacts(run_id, saved_model_dir, serving_model.SAVED_MODEL_ARTIFACT)
    signature = serving_model.signature_of(saved_model_dir)
    example = {
        spec.name: np.zeros([1 if d == -1 else d for d in spec.shape], spec.type)
        for spec in signature.inputs.inputs
    }
    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        # The signature is given; MLflow's advice to declare it with type hints does not apply.
        warnings.filterwarnings("ignore", message=".*type hint", category=UserWarning)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=serving_model.__file__,
            artifacts={serving_model.SAVED_MODEL_ARTIFACT: saved_model_dir},
            signature=signature,
            input_example=example,
            pip_requirements=[
                f"tensorflow=={tf.__version__}",
                f"mlflow=={mlflow.__version__}",
                "numpy",
                "pandas",
            ],
            registered_model_name=name,
        )


def register_saved_model(
    settings: TrackingParams,
    run_id: str,
    saved_model_dir: str,
    export: ExportParams,
    gate_value: float | None,
) -> dict[str, Any]:
    """Log the SavedModel (under ``saved_model/``, and as a pyfunc model that serves it),
    register it as a new version of ``export.registered_model_name``, alias it
    ``candidate_alias``, and promote it to ``champion_alias`` when ``gate_value`` beats the
    champion's (or there is no champion). Idempotent: a retry finds the version this run
    registered for ``saved_model_dir`` (tag ``saved_model_path``) instead of adding another.
    Returns what was done."""
    client = client_for(settings)
    name = export.registered_model_name
    version = _registered_version(client, name, run_id, saved_model_dir) if name else None
    if version is None:  # not registered yet (a retry finds what the first attempt did)
        info = _log_pyfunc(client, run_id, saved_model_dir, name)
        model_uri = info.model_uri
        if name:
            version = str(info.registered_model_version)
            client.set_model_version_tag(name, version, SAVED_MODEL_TAG, saved_model_dir)
    else:
        model_uri = f"models:/{name}/{version}"
    result: dict[str, Any] = {"model_uri": model_uri}
    if not name:
        return result
    gate_key = f"{export.gate_eval}/{export.gate_metric}"
    client.set_registered_model_alias(name, export.candidate_alias, version)
    if gate_value is not None:
        client.set_model_version_tag(name, version, gate_key, str(gate_value))
    champion_version, champion = _champion(client, name, export.champion_alias, gate_key)
    promote = (
        champion_version == version  # a retry of the run that promoted it
        or champion is None
        or (
            gate_value is not None
            and (gate_value > champion if export.higher_is_better else gate_value < champion)
        )
    )
    if promote:
        client.set_registered_model_alias(name, export.champion_alias, version)
    result.update(
        name=name,
        version=version,
        aliases=[export.candidate_alias] + ([export.champion_alias] if promote else []),
        champion_value=champion,
        gate_key=gate_key,
        gate_value=gate_value,
    )
    _logger().info(
        "registered %s version %s (%s); %s %s, champion had %s",
        name,
        version,
        ", ".join(result["aliases"]),
        gate_key,
        gate_value,
        champion,
    )
    return result


def _champion(client: MlflowClient, name: str, alias: str, key: str):
    """(version, gate value) of the current champion; (None, None) when there is none."""
    try:
        champion = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None, None
    value = champion.tags.get(key)
    return str(champion.version), (float(value) if value is not None else None)


def finish_run(settings: TrackingParams, run_id: str, status: str = "FINISHED") -> None:
    """End the run with ``status``; raises :class:`TrackingUndeliveredError` when records
    (this one included) could not be delivered."""
    _send(settings, run_id, {"op": "terminate", "status": status})
    deliver(settings, run_id)
    with _COURIERS_LOCK:  # all delivered: the run's courier thread ends
        retired = _COURIERS.pop(_courier_key(settings, run_id))
    retired.close()


def run_url(settings: TrackingParams, run_id: str) -> str:
    """Where to see the run: the tracking server's UI page, or the command that opens one."""
    uri = tracking_uri(settings)
    try:
        experiment_id = client_for(settings).get_run(run_id).info.experiment_id
    except MlflowException as err:
        if not is_outage(err):
            raise
        return f"{uri} (run {run_id})"
    page = f"#/experiments/{experiment_id}/runs/{run_id}"
    if uri.startswith("http"):
        return f"{uri.rstrip('/')}/{page}"
    return f"http://127.0.0.1:5000/{page}"


# Thin Prefect tasks over the functions above (the functions stay callable without a flow).
start_tracking = task(name="start-tracking", retries=2, cache_policy=NO_CACHE)(start_or_resume_run)
log_params_task = task(name="log-params", retries=2, cache_policy=NO_CACHE)(log_params)
log_checkpoint_task = task(name="log-checkpoint", retries=2, cache_policy=NO_CACHE)(log_checkpoint)
log_directory_task = task(name="log-artifacts", retries=2, cache_policy=NO_CACHE)(log_directory)
log_dataset_task = task(name="log-dataset", retries=2, cache_policy=NO_CACHE)(log_dataset)
finish_tracking = task(name="finish-tracking", cache_policy=NO_CACHE)(finish_run)
deliver_task = task(name="deliver-tracking", cache_policy=NO_CACHE)(deliver)
register_model = task(name="register-model", retries=1, cache_policy=NO_CACHE)(register_saved_model)


def main(argv: list[str] | None = None) -> None:
    """``python -m tasks.tracking deliver``: send what an outbox holds."""
    parser = argparse.ArgumentParser(description="Deliver the MLflow records an outbox holds.")
    parser.add_argument("command", choices=["deliver"])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--outbox", required=True, help="the outbox root (tracking.outbox_dir)")
    parser.add_argument("--run-id", help="one run (default: every run in the outbox)")
    args = parser.parse_args(argv)
    settings = TrackingParams(tracking_uri=args.tracking_uri, outbox_dir=args.outbox)
    runs = [args.run_id] if args.run_id else sorted(os.listdir(args.outbox))
    for run_id in runs:
        waiting = deliver(settings, run_id, required=False)
        print(
            f"run {run_id}: " + (f"{waiting} record(s) still waiting" if waiting else "delivered")
        )
    if any(Outbox(args.outbox, run_id).pending() for run_id in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
