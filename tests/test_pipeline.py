"""The pipeline on real components: Prefect flow runs (test harness), a real MLflow sqlite
store, real TF training on scikit-learn's digits."""

import os

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def pipeline_params(root, **training):
    from flows.params import PipelineParams

    settings = {
        "data_dir": str(root / "data"),
        "model_dir": str(root / "model"),
        "round_steps": 20,
        "max_steps": 60,
        "run_config": {"iterations_per_loop": 10, "log_step_count_steps": 10},
        "eval_sets": [
            {"name": "heldout", "split": "eval"},
            {"name": "train", "split": "train", "steps": 2},
        ],
    }
    settings.update(training)
    return PipelineParams(
        data={"output_dir": str(root / "data"), "num_shards": 2},
        training=settings,
        tracking={"tracking_uri": f"sqlite:///{root.parent / 'mlflow.db'}", "experiment": "t"},
    )


SECRET = "pw-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def first_run(prefect_api, tmp_path_factory):
    from flows.training_pipeline import training_pipeline

    root = tmp_path_factory.mktemp("pipeline") / "first"
    params = pipeline_params(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)  # credentials live in the environment only
    try:
        return params, training_pipeline(params)
    finally:
        mp.undo()


def metric_steps(client, run_id, key):
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_pipeline_records_params_metrics_per_eval_name_and_artifacts(first_run):
    params, result = first_run
    client = MlflowClient(params.tracking.tracking_uri)
    run = client.get_run(result["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["prefect.flow_run_id"]
    assert run.data.params["model.params.hidden_units"] == "64"
    assert run.data.params["rounds.round_steps"] == "20"
    assert run.data.params["run_config.iterations_per_loop"] == "10"
    assert run.data.params["data.source"] == "sklearn:digits"
    assert len(run.data.params["data.fingerprint"]) == 64
    for name in ("heldout", "train"):
        for metric in ("accuracy", "loss"):
            steps = [s for s, _ in metric_steps(client, run.info.run_id, f"{name}/{metric}")]
            assert steps == [20, 40, 60], (name, metric, steps)
    loss_steps = [s for s, _ in metric_steps(client, run.info.run_id, "loss")]
    assert loss_steps == [10, 20, 30, 40, 50, 60]
    assert [s for s, _ in metric_steps(client, run.info.run_id, "global_step/sec")] == loss_steps
    assert run.data.metrics["heldout/accuracy"] > 0.8

    def listing(path=""):
        for item in client.list_artifacts(run.info.run_id, path):
            yield from listing(item.path) if item.is_dir else [item.path]

    artifacts = set(listing())
    for step in (20, 40, 60):
        assert f"checkpoints/model.ckpt-{step}.index" in artifacts
    assert {"data/schema.json", "data/stats.json", "data/manifest.json"} <= artifacts
    assert "saved_model/saved_model.pb" in artifacts
    assert any(a.startswith("tensorboard/eval_heldout/events.out.tfevents") for a in artifacts)
    contexts = {
        d.dataset.name: d.tags[0].value
        for d in client.get_run(run.info.run_id).inputs.dataset_inputs
    }
    assert contexts == {"data/train": "training", "data/eval": "evaluation"}


def test_registered_model_serves_like_the_estimator(first_run):
    from estimator_core.data import make_input_fn
    from tasks.training import session

    params, result = first_run
    exported = result["export"]
    client = MlflowClient(params.tracking.tracking_uri)
    assert exported["version"] == "1" and exported["aliases"] == ["candidate", "champion"]
    assert str(client.get_model_version_by_alias("digits-classifier", "champion").version) == "1"

    estimator = session(params.training).estimator
    input_fn = make_input_fn(params.training.data_dir, "eval", 128, "infer")
    expected = np.array([p["classes"] for p in estimator.predict(input_fn)])
    pixels = np.concatenate([batch["pixels"].numpy() for batch in input_fn()])
    mlflow.set_tracking_uri(params.tracking.tracking_uri)
    served = mlflow.pyfunc.load_model("models:/digits-classifier@candidate").predict(
        {"pixels": pixels}
    )
    assert np.array_equal(served["classes"], expected)

    from flows.params import ExportParams
    from tasks.tracking import register_saved_model

    again = register_saved_model(  # a retried register-model task adds no version
        params.tracking,
        result["mlflow_run_id"],
        exported["saved_model"],
        ExportParams(),
        exported["gate_value"],
    )
    assert again["version"] == "1" and again["aliases"] == ["candidate", "champion"]
    mine = f"name = 'digits-classifier' and run_id = '{result['mlflow_run_id']}'"
    assert len(client.search_model_versions(mine)) == 1


def test_a_worse_model_becomes_candidate_but_not_champion(first_run, tmp_path):
    from flows.training_pipeline import training_pipeline

    params, _ = first_run
    worse = pipeline_params(tmp_path / "worse", max_steps=1, round_steps=1)
    worse = worse.model_copy(update={"tracking": params.tracking})
    result = training_pipeline(worse)
    assert result["export"]["version"] == "2"
    assert result["export"]["aliases"] == ["candidate"]
    client = MlflowClient(params.tracking.tracking_uri)
    for alias, version in (("champion", "1"), ("candidate", "2")):
        assert str(client.get_model_version_by_alias("digits-classifier", alias).version) == version


@pytest.mark.fault
def test_a_failed_train_round_is_retried_from_the_latest_checkpoint(prefect_api, tmp_path):
    from flows.params import TrackingParams, TrainingParams
    from flows.prepare_data import DataPrepParams, prepare_data
    from flows.train_and_evaluate import train_and_evaluate

    prepare_data(DataPrepParams(output_dir=str(tmp_path / "data")))
    marker = tmp_path / "failed-once"
    params = TrainingParams(
        data_dir=str(tmp_path / "data"),
        model_dir=str(tmp_path / "model"),
        model={
            "model_fn": "tests.pipeline_models:fails_once_model_fn",
            "params": {"feature": "pixels", "fail_at_step": 30, "marker": str(marker)},
        },
        round_steps=20,
        max_steps=60,
        run_config={"iterations_per_loop": 5, "log_step_count_steps": 5},
        eval_sets=[{"name": "heldout", "split": "eval"}],
    )
    tracking = TrackingParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = train_and_evaluate(params, tracking)
    assert marker.exists(), "the injected failure did not happen"
    assert result["global_step"] == 60
    client = MlflowClient(tracking.tracking_uri)
    loss_steps = [s for s, _ in metric_steps(client, result["mlflow_run_id"], "loss")]
    # The failed attempt logged nothing; its retry restarted from step 20's checkpoint.
    assert loss_steps == list(range(5, 65, 5))
    assert [s for s, _ in metric_steps(client, result["mlflow_run_id"], "heldout/loss")] == [
        20,
        40,
        60,
    ]

    again = train_and_evaluate(params, tracking, result["mlflow_run_id"])
    assert again["global_step"] == 60
    assert len(metric_steps(client, result["mlflow_run_id"], "heldout/loss")) == 3


def test_a_bad_flow_parameter_is_refused_before_any_work(prefect_api, tmp_path):
    from prefect.exceptions import ParameterTypeError

    from flows.training_pipeline import training_pipeline

    with pytest.raises(ParameterTypeError, match="round_steps"):
        training_pipeline(
            params={
                "data": {"output_dir": str(tmp_path / "data")},
                "training": {"data_dir": str(tmp_path / "data"), "round_steps": 0},
            }
        )
    assert not os.path.exists(tmp_path / "data")


@pytest.mark.fault
def test_one_writer_per_model_dir(prefect_api, tmp_path):
    import json

    from prefect import flow, get_client
    from prefect.states import Running

    from tasks.model_dir_lock import LOCK_FILE, ModelDirLockedError, model_dir_lock

    @flow(name="holder")
    def holder():
        pass

    with get_client(sync_client=True) as client:
        running = str(client.create_flow_run(holder, state=Running()).id)
    model_dir = str(tmp_path / "model")
    lock = tmp_path / "model" / LOCK_FILE
    with model_dir_lock(model_dir, running):
        assert json.loads(lock.read_text())["owner"] == running
        with (
            pytest.raises(ModelDirLockedError, match=f"flow run {running}"),
            model_dir_lock(model_dir, "another-run"),
        ):
            pass
    assert not lock.exists()
    lock.write_text(json.dumps({"owner": running}))  # left by a crash of that run
    with model_dir_lock(model_dir, running):  # which, retried, keeps its id: it re-enters
        pass
    lock.write_text(json.dumps({"owner": "00000000-0000-0000-0000-000000000000"}))
    with model_dir_lock(model_dir, "next-run"):  # the holder is unknown: taken over
        assert json.loads(lock.read_text())["owner"] == "next-run"


def test_credentials_appear_in_no_record(first_run):
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    params, result = first_run
    client = MlflowClient(params.tracking.tracking_uri)
    run = client.get_run(result["mlflow_run_id"])
    assert SECRET not in repr(run.data.params) + repr(run.data.tags)
    store = os.path.dirname(params.tracking.tracking_uri.removeprefix("sqlite:///"))
    for root, _dirs, files in os.walk(store):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert SECRET.encode() not in f.read(), os.path.join(root, name)
    flow_run_id = run.data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as prefect:
        logs = prefect.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
    assert logs and not any(SECRET in log.message for log in logs)


def test_credentials_come_from_a_prefect_secret_block(prefect_api, monkeypatch):
    from prefect.blocks.system import Secret

    from tasks.tracking import load_credentials

    for variable in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(variable, "")  # restored after the test, whatever load sets
    Secret(value={"username": "pipeline", "password": SECRET}).save("mlflow-creds", overwrite=True)
    load_credentials("mlflow-creds")
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "pipeline"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == SECRET
    Secret(value={"user": "x"}).save("bad-creds", overwrite=True)
    with pytest.raises(ValueError, match="must hold username and password, or token"):
        load_credentials("bad-creds")


def test_early_stopping_ends_the_rounds(prefect_api, tmp_path):
    from flows.params import TrackingParams, TrainingParams
    from flows.train_and_evaluate import train_and_evaluate
    from tests.helpers import write_digits_tfrecords

    write_digits_tfrecords(tmp_path / "data")
    params = TrainingParams(
        data_dir=str(tmp_path / "data"),
        model_dir=str(tmp_path / "model"),
        round_steps=20,
        max_steps=200,
        run_config={"iterations_per_loop": 10},
        eval_sets=[{"name": "heldout", "split": "eval"}],
        # No round can improve the loss by 10: stop once `patience` rounds have not.
        early_stopping={"eval_name": "heldout", "metric": "loss", "patience": 1, "min_delta": 10},
    )
    tracking = TrackingParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert train_and_evaluate(params, tracking)["global_step"] == 40
