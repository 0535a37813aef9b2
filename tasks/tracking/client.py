"""The MLflow store a run records into: its URI, a client, the experiment, and UI links."""

from __future__ import annotations

import fcntl
import os
import threading
import urllib.parse

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.params import TrackingParams
from tasks.tracking.credentials import load_credentials

# `mlflow ui` / `mlflow server` serve here by default: where a local store's pages are.
LOCAL_UI_URL = "http://127.0.0.1:5000"
# MLflow's client retries an unreachable server for minutes by default (7 retries, backoff
# factor 2, 120 s timeout); the outbox makes waiting pointless, so fail over quickly unless
# the environment says otherwise.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def tracking_uri(settings: TrackingParams) -> str:
    """The tracking URI: the setting, ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db`` (sqlite)."""
    return (
        settings.tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{os.path.abspath('mlflow.db')}"
    )


def connect(settings: TrackingParams) -> MlflowClient:
    """A client of the tracking store and registry of ``settings``. Loads the credentials of
    ``settings.credentials_block`` into the environment first, when set, and shortens MLflow's
    HTTP retries (:data:`HTTP_SETTINGS`) unless the environment sets them. A sqlite store is
    opened (its schema created or migrated) one process at a time
    (:func:`open_sqlite_store`)."""
    if settings.credentials_block:
        load_credentials(settings.credentials_block)
    for name, value in HTTP_SETTINGS.items():
        os.environ.setdefault(name, value)
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        open_sqlite_store(uri)
    return MlflowClient(uri, registry_uri=uri)


_opened: set[str] = set()
_opening = threading.Lock()


def open_sqlite_store(uri: str) -> None:
    """Have MLflow create or migrate the sqlite store of ``uri`` (tracking and registry
    tables) while holding a file lock beside the database (``<db>.lock``): two processes
    doing it at once can leave the store broken for good ("table
    _alembic_tmp_latest_metrics already exists"). Once per process: MLflow keeps the opened
    store for the URI."""
    with _opening:
        if uri in _opened:
            return
        database = os.path.abspath(uri.removeprefix("sqlite:///"))
        os.makedirs(os.path.dirname(database), exist_ok=True)
        with open(f"{database}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            client = MlflowClient(uri, registry_uri=uri)  # opens the tracking store
            client.search_registered_models(max_results=1)  # and the registry's
        _opened.add(uri)


def experiment_id(client: MlflowClient, settings: TrackingParams) -> str:
    """The id of ``settings.experiment``, created (or restored) when needed. A sqlite store's
    experiment keeps its artifacts in ``mlartifacts/`` beside the database, at an absolute
    path: readable from any directory. An experiment without a kind is marked as model
    training (:data:`EXPERIMENT_KIND`), so MLflow's UI opens it with a Models tab, not as a
    GenAI experiment."""
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        if EXPERIMENT_KIND[0] not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
        return experiment.experiment_id
    location = None
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        database = os.path.abspath(uri.removeprefix("sqlite:///"))
        location = "file://" + os.path.join(os.path.dirname(database), "mlartifacts")
    try:
        return client.create_experiment(
            settings.experiment, artifact_location=location, tags=dict([EXPERIMENT_KIND])
        )
    except MlflowException:  # created meanwhile by a concurrent run
        return client.get_experiment_by_name(settings.experiment).experiment_id


def ui_url(settings: TrackingParams) -> str:
    """The MLflow UI that links point at: ``settings.ui_url``, else the tracking URI when it
    is an http(s) server, else :data:`LOCAL_UI_URL` (``mlflow ui`` on a local store)."""
    uri = tracking_uri(settings)
    if settings.ui_url:
        return settings.ui_url.rstrip("/")
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else LOCAL_UI_URL


def run_url(settings: TrackingParams, run_id: str) -> str:
    """The run's page (MLflow's UI finds its experiment)."""
    return f"{ui_url(settings)}/#/runs/{run_id}"


def model_version_url(settings: TrackingParams, name: str, version: str) -> str:
    return f"{ui_url(settings)}/#/models/{urllib.parse.quote(name)}/versions/{version}"


def logged_model_url(settings: TrackingParams, experiment: str, model_id: str) -> str:
    return f"{ui_url(settings)}/#/experiments/{experiment}/models/{model_id}"
