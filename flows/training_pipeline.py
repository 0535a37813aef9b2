"""The training pipeline: data prep → train/evaluate rounds → export and registration.

    run = MLflow run of this flow run (a retried flow run continues it)
    prepare_data(params.data)                         # CPU pool
    train_and_evaluate(params.training, run)          # GPU pool
    export(params.training, params.export, run)       # CPU pool
    mark the MLflow run FINISHED (FAILED if a stage failed)

With ``stages="in-process"`` (the embedded default) the stages are subflows of this run; with
``stages="deployments"`` each stage is its deployment's flow run, started by
``run_deployment`` on the stage's work pool; the stages hand each other paths only.

``python -m flows.training_pipeline`` runs it with the defaults (the README's first command).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment

from flows.embedded_api import tune_embedded_api
from flows.export import export
from flows.params import PipelineParams
from flows.prepare_data import prepare_data
from flows.train_and_evaluate import mlflow_run, train_and_evaluate
from tasks import tracking

STAGE_DEPLOYMENTS = {
    "prepare_data": "prepare-data/prepare-data-cpu",
    "train_and_evaluate": "train-and-evaluate/train-gpu",
    "export": "export/export-cpu",
}


def _run_stage(stage: str, parameters: dict[str, Any]) -> None:
    run = run_deployment(
        STAGE_DEPLOYMENTS[stage], parameters=parameters, timeout=None, poll_interval=1
    )
    if not run.state or not run.state.is_completed():
        raise RuntimeError(
            f"stage {stage} ({STAGE_DEPLOYMENTS[stage]}) ended "
            f"{run.state.name if run.state else 'without a state'}: flow run {run.id}"
        )


@flow(name="training-pipeline")
def training_pipeline(params: PipelineParams | None = None) -> dict[str, Any]:
    """Run every stage for ``params``; returns the MLflow run id, the final evaluations and
    the registered model version."""
    params = params or PipelineParams()
    with mlflow_run(params.tracking, None) as run_id:
        tracking.log_params_task(params.tracking, run_id, {"data": params.data.model_dump()})
        if params.stages == "in-process":
            data = prepare_data(params.data)
            trained = train_and_evaluate(params.training, params.tracking, run_id)
            exported = export(params.training, params.export, params.tracking, run_id)
            result = {"data": data, "training": trained, "export": exported}
        else:
            # Every stage records into the MLflow store the parent resolved (its own default
            # could be another host's sqlite file); locations are absolute once validated.
            tracking_params = params.tracking.model_copy(
                update={"tracking_uri": tracking.tracking_uri(params.tracking)}
            )
            common = {"tracking_params": tracking_params.model_dump(), "mlflow_run_id": run_id}
            training = params.training.model_dump()
            # The stages' processes add to this run's outbox: hand it over emptied.
            tracking.deliver(params.tracking, run_id, required=False)
            _run_stage("prepare_data", {"params": params.data.model_dump()})
            _run_stage("train_and_evaluate", {"params": training, **common})
            _run_stage(
                "export",
                {"params": training, "export_params": params.export.model_dump(), **common},
            )
            result = {}
    get_run_logger().info("MLflow run %s: %s", run_id, tracking.run_url(params.tracking, run_id))
    return {"mlflow_run_id": run_id, **result}


def main() -> None:
    tune_embedded_api()
    params = PipelineParams()
    result = training_pipeline(params)
    exported = result["export"]
    uri = tracking.tracking_uri(params.tracking)
    print("\nDone.")
    for name, metrics in result["training"]["evaluations"].items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "global_step")
        print(f"  eval {name} at step {int(metrics['global_step'])}: {shown}")
    print(f"  TFRecords:   {result['data']['data_dir']}")
    print(f"  Checkpoints: {params.training.model_dir}")
    print(f"  SavedModel:  {exported['saved_model']}")
    if "version" in exported:
        print(
            f"  Registered:  {exported['name']} version {exported['version']} "
            f"({', '.join(exported['aliases'])})"
        )
    print("\nInspect it:")
    print(f"  MLflow UI:   .venv/bin/mlflow ui --backend-store-uri {uri}   → http://127.0.0.1:5000")
    print("  Prefect UI:  .venv/bin/prefect server start                   → http://127.0.0.1:4200")
    print(f"  TensorBoard: .venv/bin/tensorboard --logdir {params.training.model_dir}")
    print(f"  MLflow run:  {tracking.run_url(params.tracking, result['mlflow_run_id'])}")


if __name__ == "__main__":
    main()
