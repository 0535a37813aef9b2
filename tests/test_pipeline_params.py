"""Flow parameters: bad values are refused with a message naming the field."""

import pytest
from pydantic import ValidationError

from flows.params import PipelineParams, TrainingParams
from flows.train_and_evaluate import should_stop_early
from tasks.tracking import flatten


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model": {"model_fn": "examples.digits"}}, "package.module:function"),
        ({"model": {"model_fn": "no_such_module:fn"}}, "cannot import 'no_such_module'"),
        ({"model": {"model_fn": "examples.digits:nothing"}}, "no callable 'nothing'"),
        ({"round_steps": 0}, "round_steps"),
        ({"eval_sets": []}, "eval_sets"),
        ({"eval_sets": [{"name": "a", "split": "eval"}] * 2}, "names must be distinct"),
        ({"eval_sets": [{"name": "a b", "split": "eval"}]}, "eval_sets.0.name"),
        ({"early_stopping": {"eval_name": "nope"}}, "not one of the eval_sets"),
        ({"run_config": {"mixed_precision": "fp8"}}, "run_config.mixed_precision"),
        ({"batch_sise": 3}, "batch_sise"),
    ],
)
def test_bad_training_parameters_are_named(settings, message):
    with pytest.raises(ValidationError, match=message):
        TrainingParams(**settings)


def test_pipeline_parameters_must_connect_the_stages(tmp_path):
    with pytest.raises(ValidationError, match="must be data.output_dir"):
        PipelineParams(
            data={"output_dir": str(tmp_path / "a")}, training={"data_dir": str(tmp_path / "b")}
        )
    with pytest.raises(ValidationError, match="split 'test' is not one of data.splits"):
        PipelineParams(training={"eval_sets": [{"name": "t", "split": "test"}]})
    with pytest.raises(ValidationError, match="gate_eval 'nope'"):
        PipelineParams(export={"gate_eval": "nope"})


def test_locations_are_made_absolute_but_uris_are_kept():
    params = TrainingParams(data_dir="rel/data", model_dir="gs://bucket/model")
    assert params.data_dir.startswith("/") and params.data_dir.endswith("rel/data")
    assert params.model_dir == "gs://bucket/model"


def test_params_flatten_to_mlflow_keys():
    flat = flatten({"model": {"params": {"units": [64, 32], "lr@x": 0.1}}, "sets": [{"a": 1}]})
    assert flat == {"model.params.units": "[64, 32]", "model.params.lr_x": "0.1", "sets.0.a": "1"}


@pytest.mark.parametrize(
    ("mode", "values", "stop"),
    [
        ("min", [1.0, 0.5, 0.6, 0.7], True),
        ("min", [1.0, 0.5, 0.6, 0.4], False),
        ("min", [1.0, 0.5], False),
        ("max", [0.1, 0.5, 0.4, 0.45], True),
        ("max", [0.1, 0.5, 0.4, 0.55], False),
    ],
)
def test_early_stopping_rule(mode, values, stop):
    from flows.params import EarlyStopping

    rule = EarlyStopping(eval_name="e", metric="m", mode=mode, patience=2)
    assert should_stop_early(rule, [{"m": v} for v in values]) is stop


def test_a_flow_run_id_finds_its_mlflow_run_again(tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.params import TrackingParams
    from tasks.tracking import finish_run, start_or_resume_run

    settings = TrackingParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="e")
    first = start_or_resume_run(settings, "flow-run-1", {"prefect.flow_run_name": "a"})
    finish_run(settings, first, "FAILED")
    again = start_or_resume_run(settings, "flow-run-1")
    other = start_or_resume_run(settings, "flow-run-2")
    assert again == first and other != first
    run = MlflowClient(settings.tracking_uri).get_run(first)
    assert run.info.status == "RUNNING" and run.info.run_name == "a"
    assert run.info.artifact_uri.startswith(f"file://{tmp_path}/mlartifacts/")


def test_locations_stay_inside_the_configured_root(tmp_path, monkeypatch):
    from flows.locations import ROOT_ENV
    from flows.prepare_data import DataPrepParams

    with pytest.raises(ValidationError, match=r"'\.\.' is not allowed"):
        TrainingParams(model_dir="runs/../../etc")
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    params = TrainingParams(data_dir="data/digits", model_dir=str(tmp_path / "models" / "a"))
    assert params.data_dir == str(tmp_path / "data" / "digits")
    assert params.model_dir == str(tmp_path / "models" / "a")
    with pytest.raises(ValidationError, match="(?s)model_dir.*outside ESTIMATOR_PIPELINES_ROOT"):
        TrainingParams(model_dir="/etc/models")
    with pytest.raises(ValidationError, match="(?s)output_dir.*outside"):
        DataPrepParams(output_dir=str(tmp_path) + "-sibling/data")
    with pytest.raises(ValidationError, match="(?s)source.*outside"):
        DataPrepParams(source="/etc/passwd.csv")


def test_model_modules_outside_the_allowlist_are_refused_before_import(monkeypatch):
    import sys

    from flows.locations import MODEL_MODULES_ENV

    monkeypatch.setenv(MODEL_MODULES_ENV, "examples, tests.pipeline_models")
    TrainingParams(model={"model_fn": "examples.digits:model_fn"})
    sys.modules.pop("tests.helpers", None)
    with pytest.raises(ValidationError, match="module 'tests.helpers' is not allowed here"):
        TrainingParams(model={"model_fn": "tests.helpers:array_input_fn"})
    assert "tests.helpers" not in sys.modules, "a refused module was imported"
    with pytest.raises(ValidationError, match="not allowed"):
        TrainingParams(model={"model_fn": "examplesevil:model_fn"})


def test_credentials_are_refused_in_the_tracking_uri():
    from flows.params import TrackingParams

    with pytest.raises(ValidationError, match="MLFLOW_TRACKING_PASSWORD"):
        TrackingParams(tracking_uri="https://alice:s3cret@mlflow.example.com")
    assert TrackingParams(tracking_uri="https://mlflow.example.com:5000").tracking_uri
