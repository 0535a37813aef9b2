"""The tracking steps a flow runs as Prefect tasks (those that talk to the tracking server and
may be retried), and :func:`tracked_run`, the MLflow run of a flow run."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.runtime import deployment, flow_run

from tasks.params import TrackingParams
from tasks.tracking.recorder import RunRecorder, TrackingUndeliveredError
from tasks.tracking.registry import register_saved_model
from tasks.tracking.runs import RunOrigin, start_or_resume_run

start_tracking = task(name="start-tracking", retries=2, cache_policy=NO_CACHE)(start_or_resume_run)
register_model = task(name="register-model", retries=1, cache_policy=NO_CACHE)(register_saved_model)


@task(name="deliver-tracking", cache_policy=NO_CACHE)
def deliver_records(recorder: RunRecorder) -> None:
    """Wait until every record of the run is delivered; fails, naming the outbox and the
    command that delivers them later, when MLflow stayed away."""
    recorder.deliver()


@task(name="finish-tracking", cache_policy=NO_CACHE)
def finish_tracking(recorder: RunRecorder, status: str = "FINISHED") -> None:
    """End the MLflow run with ``status`` once everything before it is delivered."""
    recorder.finish(status)


def current_origin(about: str = "") -> RunOrigin:
    """The running flow run as an MLflow run's origin (its entrypoint relative to the git
    repository of the flow's code, or to that code's folder)."""
    flow_fn = FlowRunContext.get().flow.fn
    source = inspect.getsourcefile(flow_fn) or ""
    source_dir = os.path.dirname(source)
    root = source_dir
    while root != os.path.dirname(root) and not os.path.exists(os.path.join(root, ".git")):
        root = os.path.dirname(root)
    base = root if os.path.exists(os.path.join(root, ".git")) else source_dir
    return RunOrigin(
        flow_run_id=str(flow_run.id),
        flow_run_name=flow_run.name or "",
        flow_name=flow_run.flow_name or "",
        deployment=deployment.name,
        entrypoint=f"{os.path.relpath(source, base)}:{flow_fn.__name__}",
        source_dir=source_dir,
        about=about,
    )


@contextlib.contextmanager
def tracked_run(
    settings: TrackingParams, mlflow_run_id: str | None, about: str = ""
) -> Iterator[RunRecorder]:
    """The recorder of the MLflow run a flow records into: ``mlflow_run_id`` (a parent's run,
    which the parent ends), or this flow run's own run (found again or created by
    ``start-tracking``; ``about`` goes into its description), ended here: FINISHED, or FAILED
    when the body raises."""
    if mlflow_run_id:
        recorder = RunRecorder(settings, mlflow_run_id)
        try:
            yield recorder
        finally:
            recorder.close()
        return
    run = start_tracking(settings, current_origin(about))
    recorder = RunRecorder(settings, run.run_id)
    try:
        yield recorder
    except BaseException:
        # The body's error is the one to report; an undelivered FAILED mark stays queued.
        with contextlib.suppress(TrackingUndeliveredError):
            finish_tracking(recorder, "FAILED")
        raise
    finish_tracking(recorder)
