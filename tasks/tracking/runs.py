"""One MLflow run per pipeline run, found again by its Prefect flow run id, and what it says
about where it comes from: the Prefect flow run (a link in its description), the code (the
``mlflow.source.*`` tags MLflow's UI shows as Source), the user."""

from __future__ import annotations

import dataclasses
import getpass
import os
import socket
import subprocess

from mlflow.tracking import MlflowClient
from prefect.settings import get_current_settings

from tasks.logs import run_logger
from tasks.params import TrackingParams
from tasks.processes import process_is_gone, process_start_time
from tasks.tracking.client import connect, experiment_id
from tasks.tracking.outbox import Outbox

FLOW_RUN_TAG = "prefect.flow_run_id"
# The process recording into a run: a RUNNING run whose process is gone was killed.
PROCESS_TAGS = ("process.host", "process.pid", "process.started")
# The ephemeral API has no UI; `prefect server start` on the same database serves it here.
LOCAL_PREFECT_UI_URL = "http://127.0.0.1:4200"


@dataclasses.dataclass(frozen=True)
class RunOrigin:
    """The Prefect flow run that records into an MLflow run, and the code it runs."""

    flow_run_id: str
    flow_run_name: str
    flow_name: str
    deployment: str | None
    entrypoint: str  # path:function of the flow, relative to its repository
    source_dir: str  # where the flow's code is (its git repository, if any)
    about: str = ""  # what the run does, one Markdown line


@dataclasses.dataclass(frozen=True)
class TrackedRun:
    run_id: str
    experiment_id: str


def prefect_flow_run_url(flow_run_id: str) -> str:
    """The flow run's page: under ``PREFECT_UI_URL`` (derived from the API URL), else under
    :data:`LOCAL_PREFECT_UI_URL`."""
    base = get_current_settings().ui_url or LOCAL_PREFECT_UI_URL
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"


def _git(source_dir: str, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=source_dir, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_tags(origin: RunOrigin) -> dict[str, str]:
    """The tags a new MLflow run gets: the Prefect flow run (id, name, deployment, link), the
    source (``mlflow.source.*``: the flow's entrypoint and git commit, branch, remote), the
    user, and a description (``mlflow.note.content``) linking the flow run."""
    url = prefect_flow_run_url(origin.flow_run_id)
    tags = {
        FLOW_RUN_TAG: origin.flow_run_id,
        "prefect.flow_run_name": origin.flow_run_name,
        "prefect.flow": origin.flow_name,
        "prefect.deployment": origin.deployment or "(none)",
        "prefect.flow_run_url": url,
        "mlflow.source.type": "JOB",
        "mlflow.source.name": origin.entrypoint,
        "mlflow.user": getpass.getuser(),
    }
    git = {
        "mlflow.source.git.commit": _git(origin.source_dir, "rev-parse", "HEAD"),
        "mlflow.source.git.branch": _git(origin.source_dir, "rev-parse", "--abbrev-ref", "HEAD"),
        "mlflow.source.git.repoURL": _git(
            origin.source_dir, "config", "--get", "remote.origin.url"
        ),
    }
    tags |= {key: value for key, value in git.items() if value}
    deployment = f", deployment `{origin.deployment}`" if origin.deployment else ""
    commit = git["mlflow.source.git.commit"]
    tags["mlflow.note.content"] = "\n\n".join(
        line
        for line in (
            f"Prefect flow run [{origin.flow_run_name}]({url}) of flow `{origin.flow_name}`"
            f"{deployment}.",
            origin.about,
            f"Code: `{origin.entrypoint}`" + (f" at commit `{commit[:12]}`." if commit else "."),
        )
        if line
    )
    return tags


def process_tags() -> dict[str, str]:
    """:data:`PROCESS_TAGS` of this process."""
    return dict(
        zip(
            PROCESS_TAGS,
            (socket.gethostname(), str(os.getpid()), repr(process_start_time(os.getpid()))),
            strict=True,
        )
    )


def finish_killed_runs(
    client: MlflowClient, experiment: str, settings: TrackingParams
) -> list[str]:
    """End the experiment's RUNNING runs whose process, on this host, is gone (a SIGKILLed
    ``make run``: nobody ended its run): the records it left in the outbox are delivered
    first, then the run is marked KILLED. Returns their ids."""
    host = socket.gethostname()
    found = client.search_runs(
        [experiment],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{PROCESS_TAGS[0]}` = '{host}'",
    )
    killed = []
    for run in found:
        tags = run.data.tags
        try:
            pid, started = int(tags[PROCESS_TAGS[1]]), float(tags[PROCESS_TAGS[2]])
        except (KeyError, ValueError):
            continue
        if not process_is_gone(host, pid, started):
            continue
        Outbox(os.path.abspath(settings.outbox_dir), run.info.run_id).deliver(client)
        client.set_terminated(run.info.run_id, status="KILLED")
        killed.append(run.info.run_id)
        run_logger(__name__).warning(
            "MLflow run %s (flow run %s) was left RUNNING by process %d, which is gone: "
            "delivered what its outbox held and marked it KILLED",
            run.info.run_id,
            tags.get(FLOW_RUN_TAG),
            pid,
        )
    return killed


def start_or_resume_run(settings: TrackingParams, origin: RunOrigin) -> TrackedRun:
    """The MLflow run tagged with ``origin.flow_run_id``, created (with :func:`run_tags`, named
    ``settings.run_name`` or after the flow run) when there is none.

    A retried or resumed Prefect flow run keeps its id, so it continues the same MLflow run
    (set back to RUNNING, after the records an earlier attempt left in the outbox are
    delivered: its FAILED mark among them) instead of starting a new one. Runs of this
    experiment left RUNNING by a killed process of this host are ended first
    (:func:`finish_killed_runs`). The run is tagged with the process recording into it.
    """
    client = connect(settings)
    experiment = experiment_id(client, settings)
    finish_killed_runs(client, experiment, settings)
    found = client.search_runs(
        [experiment],
        filter_string=f"tags.`{FLOW_RUN_TAG}` = '{origin.flow_run_id}'",
        max_results=1,
    )
    if found:
        run_id = found[0].info.run_id
        Outbox(os.path.abspath(settings.outbox_dir), run_id).deliver(client)
        if found[0].info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        for key, value in process_tags().items():
            client.set_tag(run_id, key, value)
        return TrackedRun(run_id, experiment)
    run = client.create_run(
        experiment,
        tags=run_tags(origin) | process_tags(),
        run_name=settings.run_name or origin.flow_run_name,
    )
    return TrackedRun(run.info.run_id, experiment)


def run_start_seconds(settings: TrackingParams, run_id: str, default: float) -> float:
    """When MLflow run ``run_id`` started (seconds since the epoch); ``default`` when the
    tracking server cannot say."""
    try:
        return connect(settings).get_run(run_id).info.start_time / 1000
    except Exception:  # unreachable: training does not wait for it
        return default
