"""The pipeline on real components: Prefect flow runs (test harness), a real MLflow sqlite
store, real TF training on scikit-learn's digits."""

import os

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def pipeline_params(root, **training):
    from tasks.params import PipelineParams

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
        tracking={
            "tracking_uri": f"sqlite:///{root.parent / 'mlflow.db'}",
            "experiment": "t",
            "outbox_dir": str(root.parent / "outbox"),
            "system_metrics_every_s": 1,
        },
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


def artifact_listing(client, run_id, path=""):
    for item in client.list_artifacts(run_id, path):
        yield from artifact_listing(client, run_id, item.path) if item.is_dir else [item.path]


def test_pipeline_records_params_metrics_per_eval_name_and_artifacts(first_run):
    params, result = first_run
    client = MlflowClient(params.tracking.tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.params.hidden_units"] == "64"
    assert run.data.params["rounds.round_steps"] == "20"
    assert run.data.params["run_config.iterations_per_loop"] == "10"
    assert run.data.params["shuffle_buffer"] == "10000"
    assert run.data.params["data.source"] == "sklearn:digits"
    assert len(run.data.params["data.fingerprint"]) == 64
    assert run.data.params["export.gate_metric"] == "heldout/accuracy"
    assert run.data.params["export.gate_direction"] == "higher is better"
    assert run.data.params["export.champion_alias"] == "champion"
    assert "None" not in run.data.params.values()  # unset values are left out
    for name in ("heldout", "train"):
        for metric in ("accuracy", "loss"):
            steps = [s for s, _ in metric_steps(client, run.info.run_id, f"{name}/{metric}")]
            assert steps == [20, 40, 60], (name, metric, steps)
    loss_steps = [s for s, _ in metric_steps(client, run.info.run_id, "training/minibatch_loss")]
    assert loss_steps == [10, 20, 30, 40, 50, 60]
    rate_steps = [s for s, _ in metric_steps(client, run.info.run_id, "training/steps_per_sec")]
    assert rate_steps == loss_steps
    assert run.data.metrics["heldout/accuracy"] > 0.8
    assert metric_steps(client, run.info.run_id, "system/cpu_utilization_percentage")
    assert metric_steps(client, run.info.run_id, "system/system_memory_usage_megabytes")

    artifacts = set(artifact_listing(client, run.info.run_id))
    for step in (20, 40, 60):
        assert f"checkpoints/model.ckpt-{step}.index" in artifacts
    assert "checkpoints/checkpoint" in artifacts
    assert {"data/schema.json", "data/stats.json", "data/manifest.json"} <= artifacts
    assert "saved_model/saved_model.pb" in artifacts
    assert any(
        a.startswith("tensorboard/model/eval_heldout/events.out.tfevents") for a in artifacts
    )
    for name in ("heldout", "train"):
        for report in ("confusion_matrix.png", "confusion_matrix.json", "per_class.json"):
            assert f"evaluation/{name}/{report}" in artifacts
        assert f"evaluation/{name}/eval_history.json" in artifacts
    assert "evaluation/learning_curves.png" in artifacts


def test_the_mlflow_run_says_where_it_comes_from(first_run):
    params, result = first_run
    run = MlflowClient(params.tracking.tracking_uri).get_run(result.mlflow_run_id)
    tags = run.data.tags
    flow_run_id = tags["prefect.flow_run_id"]
    assert f"/runs/flow-run/{flow_run_id}" in tags["mlflow.note.content"]  # the description
    assert tags["prefect.flow_run_url"].endswith(f"/runs/flow-run/{flow_run_id}")
    assert tags["mlflow.source.name"] == "flows/training_pipeline.py:training_pipeline"
    assert tags["mlflow.source.type"] == "JOB"
    assert tags["mlflow.user"]
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert run.info.run_name == tags["prefect.flow_run_name"]


def test_datasets_have_a_schema_a_profile_and_a_digest_per_split(first_run):
    import json

    params, result = first_run
    run = MlflowClient(params.tracking.tracking_uri).get_run(result.mlflow_run_id)
    datasets = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert {name: d.tags[0].value for name, d in datasets.items()} == {
        "data/train": "training",
        "data/eval": "evaluation",
    }
    train, held_out = datasets["data/train"].dataset, datasets["data/eval"].dataset
    assert train.digest != held_out.digest
    columns = json.loads(train.schema)["mlflow_colspec"]
    assert [(c["name"], c["type"]) for c in columns] == [("pixels", "array"), ("digit", "long")]
    assert json.loads(held_out.profile)["records"] + json.loads(train.profile)["records"] == 1797


def test_the_export_is_a_logged_model_with_its_evaluations(first_run, tmp_path):
    import json

    import mlflow.models

    params, result = first_run
    client = MlflowClient(params.tracking.tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    [model] = client.search_logged_models([run.info.experiment_id])
    assert model.name == "digits-classifier" and model.source_run_id == run.info.run_id
    assert [(o.model_id, o.step) for o in run.outputs.model_outputs] == [(model.model_id, 60)]
    linked = {(m.key, m.step, m.dataset_name) for m in model.metrics}
    assert ("heldout/accuracy", 60, "data/eval") in linked
    assert ("train/loss", 60, "data/train") in linked
    by_key = {m.key: m.value for m in model.metrics}
    assert by_key["heldout/accuracy"] == run.data.metrics["heldout/accuracy"]
    assert model.params["model.params.hidden_units"] == "64"
    registered = json.loads(model.tags["mlflow.modelVersions"])
    assert registered == [{"name": "digits-classifier", "version": "1"}]  # the Models tab's link

    local = mlflow.artifacts.download_artifacts(f"models:/{model.model_id}", dst_path=str(tmp_path))
    example = mlflow.models.Model.load(local).load_input_example(local)
    pixels = np.asarray(example["pixels"])
    assert pixels.shape == (5, 64) and pixels.any(), "the input example is rows of the data set"


def test_the_registered_version_records_the_gate_decision(first_run):
    params, result = first_run
    registration = result.export.registration
    client = MlflowClient(params.tracking.tracking_uri)
    version = client.get_model_version("digits-classifier", registration.version)
    assert "Champion gate: promoted to `champion` (no champion yet)" in version.description
    assert "/runs/flow-run/" in version.description
    assert version.tags["gate.decision"] == "promoted"
    assert version.tags["gate.champion_before"] == "none"
    assert version.tags["gate.metric"] == "heldout/accuracy"
    assert version.tags["prefect.flow_run_id"]
    assert not any(v.startswith("/") or os.sep + "tmp" in v for v in version.tags.values()), (
        "a machine-local path in the version's tags"
    )
    assert version.source == f"models:/{registration.model_id}"


def test_a_downloaded_checkpoints_folder_restores(first_run, tmp_path):
    import mlflow.artifacts
    import tensorflow as tf

    params, result = first_run
    mlflow.set_tracking_uri(params.tracking.tracking_uri)
    local = mlflow.artifacts.download_artifacts(
        run_id=result.mlflow_run_id, artifact_path="checkpoints", dst_path=str(tmp_path)
    )
    latest = tf.train.latest_checkpoint(local)  # the state file came along
    assert latest and latest.endswith("model.ckpt-60")
    assert tf.train.list_variables(latest)


def test_tensorboard_shows_the_same_rate_hparams_and_the_graph(first_run):
    import tensorflow as tf

    params, result = first_run
    model_dir = params.training.model_dir
    rates, plugins, graphs = {}, set(), 0
    for name in sorted(os.listdir(model_dir)):
        if "tfevents" not in name:
            continue
        for event in tf.compat.v1.train.summary_iterator(os.path.join(model_dir, name)):
            graphs += bool(event.graph_def)
            for value in event.summary.value:
                plugins.add(value.metadata.plugin_data.plugin_name)
                if value.tag == "global_step/sec":
                    rates[event.step] = float(tf.make_ndarray(value.tensor))
    client = MlflowClient(params.tracking.tracking_uri)
    logged = dict(metric_steps(client, result.mlflow_run_id, "training/steps_per_sec"))
    assert sorted(rates) == sorted(logged) == [10, 20, 30, 40, 50, 60]
    for step, rate in logged.items():
        assert rate == pytest.approx(rates[step], rel=1e-6), step  # computed once, recorded twice
    assert "hparams" in plugins
    assert graphs == 1


def test_prefect_shows_named_runs_and_the_pipelines_summary(first_run):
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    params, result = first_run
    run = MlflowClient(params.tracking.tracking_uri).get_run(result.mlflow_run_id)
    pipeline_id = run.data.tags["prefect.flow_run_id"]
    fingerprint = run.data.params["data.fingerprint"]
    with get_client(sync_client=True) as prefect:
        pipeline = prefect.read_flow_run(pipeline_id)
        [summary] = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[pipeline_id]))
        )
        subflows = {}
        for task_run in prefect.read_task_runs():
            if task_run.name.startswith(("train[", "evaluate[")):
                subflows.setdefault(task_run.flow_run_id, []).append(task_run.name)
        children = prefect.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[pipeline.id])
            )
        )
        names = {child.name: child.id for child in children}
        training = names[f"{pipeline.name}/train-and-evaluate"]
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[training]))
        )
    assert set(names) == {
        f"{pipeline.name}/{s}" for s in ("prepare-data", "train-and-evaluate", "export")
    }
    assert summary.type == "markdown" and summary.key.endswith("-pipeline-summary")
    for shown in ("| heldout | 60 |", "| train | 60 |", fingerprint[:16], result.mlflow_run_id):
        assert shown in summary.data, shown
    assert (
        "digits-classifier version 1](http://127.0.0.1:5000/#/models/digits-classifier/versions/1)"
        in summary.data
    )
    assert sorted(subflows[training]) == sorted(
        ["train[0→20]", "train[20→40]", "train[40→60]"]
        + [f"evaluate[{n}@{s}]" for n in ("heldout", "train") for s in (20, 40, 60)]
    )
    progress = next(a for a in artifacts if a.type == "progress")
    assert progress.data == 100.0 and "done at step 60: heldout accuracy" in progress.description
    assert all(a.key.startswith("model-") for a in artifacts), [a.key for a in artifacts]


def test_registered_model_serves_like_the_estimator(first_run):
    from estimator_core.data import make_input_fn
    from flows.export import model_record
    from tasks.params import ExportParams
    from tasks.tracking.registry import register_saved_model
    from tasks.training import session

    params, result = first_run
    registration = result.export.registration
    client = MlflowClient(params.tracking.tracking_uri)
    assert registration.version == "1" and registration.aliases == ("candidate", "champion")
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

    from prefect import flow

    @flow
    def register_again():  # a retried register-model task adds no model and no version
        return register_saved_model(
            params.tracking,
            result.mlflow_run_id,
            result.export.saved_model,
            ExportParams(),
            model_record(params.training, 60),
        )

    again = register_again()
    assert again.version == "1" and again.aliases == ("candidate", "champion")
    assert again.model_id == registration.model_id
    mine = f"name = 'digits-classifier' and run_id = '{result.mlflow_run_id}'"
    assert len(client.search_model_versions(mine)) == 1
    experiment = client.get_run(result.mlflow_run_id).info.experiment_id
    assert len(client.search_logged_models([experiment])) == 1


def test_a_worse_model_becomes_candidate_but_not_champion(first_run, tmp_path):
    from flows.training_pipeline import training_pipeline

    params, _ = first_run
    worse = pipeline_params(tmp_path / "worse", max_steps=1, round_steps=1)
    worse = worse.model_copy(update={"tracking": params.tracking})
    result = training_pipeline(worse)
    registration = result.export.registration
    assert registration.version == "2" and registration.aliases == ("candidate",)
    client = MlflowClient(params.tracking.tracking_uri)
    version = client.get_model_version("digits-classifier", "2")
    assert version.tags["gate.decision"] == "not promoted"
    assert version.tags["gate.champion_before"] == "1"
    assert version.tags["gate.reason"].startswith("heldout/accuracy 0.")
    assert (
        "<=" in version.tags["gate.reason"]
        and "of champion version 1" in version.tags["gate.reason"]
    )
    for alias, version in (("champion", "1"), ("candidate", "2")):
        assert str(client.get_model_version_by_alias("digits-classifier", alias).version) == version


@pytest.mark.fault
def test_a_failed_train_round_is_retried_from_the_latest_checkpoint(prefect_api, tmp_path):
    from flows.prepare_data import prepare_data
    from flows.train_and_evaluate import train_and_evaluate
    from tasks.params import DataPrepParams, TrackingParams, TrainingParams

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
    tracking = TrackingParams(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", outbox_dir=str(tmp_path / "outbox")
    )
    result = train_and_evaluate(params, tracking)
    assert marker.exists(), "the injected failure did not happen"
    assert result.global_step == 60
    client = MlflowClient(tracking.tracking_uri)
    loss_steps = [
        s for s, _ in metric_steps(client, result.mlflow_run_id, "training/minibatch_loss")
    ]
    # The failed attempt logged nothing; its retry restarted from step 20's checkpoint.
    assert loss_steps == list(range(5, 65, 5))
    assert [s for s, _ in metric_steps(client, result.mlflow_run_id, "heldout/loss")] == [
        20,
        40,
        60,
    ]

    again = train_and_evaluate(params, tracking, result.mlflow_run_id)
    assert again.global_step == 60
    assert len(metric_steps(client, result.mlflow_run_id, "heldout/loss")) == 3


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
    run = client.get_run(result.mlflow_run_id)
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

    from tasks.tracking.credentials import load_credentials

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
    from flows.train_and_evaluate import train_and_evaluate
    from tasks.params import TrackingParams, TrainingParams
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
    tracking = TrackingParams(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", outbox_dir=str(tmp_path / "outbox")
    )
    assert train_and_evaluate(params, tracking).global_step == 40
