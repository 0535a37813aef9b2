"""A pipeline with no model code: the flow's ``model`` names a premade estimator; feature
columns come from the prepared data set. Real flow runs (Prefect test harness), a real MLflow
sqlite store, real TF training on a small CSV with numeric and string columns."""

import inspect
import os

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tasks.params import PREMADE_ARGUMENTS, TrainingParams

# What premade_estimator fills in itself; its column options are arguments of every estimator.
FILLED_IN = {"self", "feature_columns", "linear_feature_columns", "dnn_feature_columns"}
FILLED_IN |= {"model_dir", "config", "warm_start_from"}
COLUMN_OPTIONS = {"embedding_threshold", "normalize"}


def test_the_premade_arguments_are_the_constructors_arguments():
    from estimator_core.canned.premade import PREMADE_ESTIMATORS

    assert set(PREMADE_ARGUMENTS) == set(PREMADE_ESTIMATORS)
    for name, cls in PREMADE_ESTIMATORS.items():
        constructor = set(inspect.signature(cls.__init__).parameters) - FILLED_IN
        assert PREMADE_ARGUMENTS[name] == constructor | COLUMN_OPTIONS, name


def test_the_optimizer_names_and_loss_reductions_are_the_estimators():
    import estimator_core as est
    from estimator_core.canned.optimizers import optimizer_class
    from tasks.params import LOSS_REDUCTIONS, OPTIMIZER_NAMES

    with pytest.raises(ValueError) as error:
        optimizer_class("none")
    assert str(error.value).endswith(f"Supported names are: {tuple(sorted(OPTIMIZER_NAMES))}")
    for reduction in LOSS_REDUCTIONS:
        est.RegressionHead(loss_reduction=reduction)  # no ValueError


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"premade": "DNNClasifier"}, "unknown premade estimator 'DNNClasifier'; choose one of"),
        (
            {"premade": "LinearClassifier", "hidden_units": [8]},
            "LinearClassifier: unknown argument(s) ['hidden_units']; it takes ['embedding_thr",
        ),
        ({"premade": "DNNRegressor"}, "DNNRegressor needs ['hidden_units']"),
        ({"premade": "DNNClassifier", "hidden_units": [8, 0]}, "hidden_units = [8, 0]: Input"),
        ({"premade": "DNNClassifier", "hidden_units": [8], "optimizer": "Adamax"}, "'Adagrad'"),
        ({"premade": "BaselineClassifier", "loss_reduction": "none"}, "loss_reduction = 'none'"),
    ],
)
def test_a_premade_model_is_validated_naming_what_is_wrong(model, message):
    with pytest.raises(ValueError) as error:
        TrainingParams(model=model)
    assert message in str(error.value)


def test_a_premade_model_round_trips_as_json():
    model = {
        "premade": "DNNLinearCombinedClassifier",
        "dnn_hidden_units": [16],
        "dnn_optimizer": {"name": "Adam", "learning_rate": 0.01},
        "linear_optimizer": "Ftrl",
        "dnn_dropout": None,
    }
    params = TrainingParams(model=model)
    assert params.model.arguments == {k: v for k, v in model.items() if k != "premade"}
    lr_left_out = TrainingParams(model={**model, "dnn_optimizer": {"name": "Adam"}})
    assert lr_left_out.model.arguments["dnn_optimizer"] == {"name": "Adam"}  # Keras' default
    again = TrainingParams.model_validate_json(params.model_dump_json())
    assert again.model == params.model and again.model.title == "premade " + model["premade"]
    assert TrainingParams().model.title == "examples.digits:model_fn"


def write_rows(path, rows=400, seed=0):
    """Rows with a float, a string and an integer column; ``label`` depends on the first two,
    ``target`` (a regression target) on all three."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows).round(3)
    color = rng.choice(["red", "green", "blue"], rows)
    count = rng.integers(0, 5, rows)
    frame = pd.DataFrame(
        {
            "x": x,
            "color": color,
            "count": count,
            "label": ((x > 0) ^ (color == "red")).astype(int),
            "target": (2 * x + (color == "green") + 0.1 * count).round(3),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def premade_params(root, source, label, model, gate_metric, higher_is_better):
    from tasks.params import PipelineParams

    return PipelineParams(
        data={
            "source": str(source),
            "output_dir": str(root / "data"),
            "label": label,
            "splits": {"train": 0.8, "eval": 0.2},
        },
        training={
            "data_dir": str(root / "data"),
            "model_dir": str(root / "model"),
            "model": model,
            "round_steps": 30,
            "max_steps": 60,
            "run_config": {"iterations_per_loop": 30, "log_step_count_steps": 30},
            "eval_sets": [{"name": "heldout", "split": "eval"}],
        },
        export={
            "registered_model_name": f"rows-{label}",
            "gate_eval": "heldout",
            "gate_metric": gate_metric,
            "higher_is_better": higher_is_better,
        },
        tracking={
            "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "experiment": "premade",
            "outbox_dir": str(root / "outbox"),
            "system_metrics": False,
        },
    )


def signature_methods(saved_model_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    return {
        k: (s.method_name, sorted(s.inputs)) for k, s in saved.meta_graphs[0].signature_def.items()
    }


def serialized_rows(frame):
    import tensorflow as tf

    def feature(value):
        if isinstance(value, str):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        if isinstance(value, int | np.integer):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))

    return [
        tf.train.Example(
            features=tf.train.Features(
                feature={k: feature(v) for k, v in row.items() if k not in ("label", "target")}
            )
        ).SerializeToString()
        for row in frame.to_dict("records")
    ]


@pytest.mark.slow
def test_the_pipeline_trains_exports_and_registers_a_premade_classifier(prefect_api, tmp_path):
    import tensorflow as tf

    from flows.training_pipeline import training_pipeline

    frame = write_rows(tmp_path / "rows.csv").drop(columns="target")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    model = {
        "premade": "DNNClassifier",
        "hidden_units": [16, 8],
        "optimizer": {"name": "Adam", "learning_rate": 0.05},
    }
    params = premade_params(tmp_path, tmp_path / "rows.csv", "label", model, "accuracy", True)
    result = training_pipeline(params)

    heldout = result.training.evaluations["heldout"]
    assert heldout.global_step == 60
    assert {"accuracy", "auc", "precision", "recall", "average_loss"} <= set(heldout.metrics)
    client = MlflowClient(params.tracking.tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["model.premade"] == "DNNClassifier"
    assert run.data.params["model.hidden_units"] == "[16, 8]"
    assert "Trains `premade DNNClassifier`" in run.data.tags["mlflow.note.content"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation/heldout")}
    assert "evaluation/heldout/confusion_matrix.json" in artifacts  # from its class_ids

    path = result.export.saved_model
    methods = signature_methods(path)
    assert methods["examples:serving_default"] == ("tensorflow/serving/classify", ["inputs"])
    assert methods["examples:classification"] == ("tensorflow/serving/classify", ["inputs"])
    assert methods["serving_default"] == (
        "tensorflow/serving/predict",
        ["color", "count", "x"],
    )
    loaded = tf.saved_model.load(path)
    rows = frame.head(20)
    classify = loaded.signatures["examples:classification"](
        inputs=tf.constant(serialized_rows(rows))
    )
    columns = {
        "x": rows["x"].to_numpy("float32"),
        "color": rows["color"].to_numpy().astype(bytes),
        "count": rows["count"].to_numpy("int64"),
    }
    raw = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in columns.items()})
    np.testing.assert_allclose(classify["scores"], raw["scores"], rtol=1e-6)

    registration = result.export.registration
    assert registration.version == "1" and registration.aliases == ("candidate", "champion")
    mlflow.set_tracking_uri(params.tracking.tracking_uri)
    served = mlflow.pyfunc.load_model("models:/rows-label@champion").predict(columns)
    np.testing.assert_allclose(served["scores"], raw["scores"].numpy(), rtol=1e-6)


@pytest.mark.slow
def test_a_regressors_export_has_regress_signatures_over_examples(tmp_path):
    """``make_serving_input_receiver_fn(with_examples=True)``, as the export task uses it."""
    import tensorflow as tf

    import estimator_core as est
    from estimator_core.canned.premade import premade_estimator
    from estimator_core.data import make_input_fn, make_serving_input_receiver_fn, write_dataset

    frame = write_rows(tmp_path / "rows.csv", rows=100).drop(columns="label")
    write_dataset(frame, tmp_path / "data", label="target", splits={"train": 1.0})
    data = str(tmp_path / "data")
    estimator = premade_estimator("LinearRegressor", data, model_dir=str(tmp_path / "model"))
    estimator.train(make_input_fn(data, "train", 20, est.ModeKeys.TRAIN), steps=5)
    path = os.fsdecode(
        estimator.export_saved_model(
            str(tmp_path / "export"), make_serving_input_receiver_fn(data, with_examples=True)
        )
    )
    methods = signature_methods(path)
    assert methods["examples:serving_default"] == ("tensorflow/serving/regress", ["inputs"])
    assert methods["examples:regression"] == ("tensorflow/serving/regress", ["inputs"])
    assert methods["examples:predict"] == ("tensorflow/serving/predict", ["examples"])
    assert methods["regression"] == ("tensorflow/serving/predict", ["color", "count", "x"])
    loaded = tf.saved_model.load(path)
    rows = frame.head(5)
    regress = loaded.signatures["examples:regression"](inputs=tf.constant(serialized_rows(rows)))
    raw = loaded.signatures["regression"](
        x=tf.constant(rows["x"].to_numpy("float32")),
        color=tf.constant(rows["color"].to_numpy().astype(bytes)),
        count=tf.constant(rows["count"].to_numpy("int64")),
    )
    assert regress["outputs"].shape == (5, 1)
    np.testing.assert_allclose(regress["outputs"], raw["outputs"], rtol=1e-6)


def test_prefect_accepts_either_model_in_a_deployment_runs_parameters():
    """Prefect checks a deployment run's parameters against the flow's JSON schema with
    ``required`` ignored: both forms of ``model`` must pass, a wrong type must not."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import ValidationError, validate

    from flows.training_pipeline import training_pipeline

    schema = parameter_schema(training_pipeline).model_dump_for_openapi()

    def check(model):
        parameters = {"params": {"training": {"model": model}}}
        validate(parameters, schema, raise_on_error=True, preprocess=True, ignore_required=True)

    check({"premade": "DNNClassifier", "hidden_units": [64, 32]})
    check({"model_fn": "examples.digits:model_fn", "params": {"hidden_units": 8}})
    with pytest.raises(ValidationError, match="premade"):
        check({"premade": 3})


def test_the_documented_deployment_run_is_valid_pipeline_parameters():
    import json
    import re
    import shlex

    from tasks.params import PipelineParams, PremadeSettings

    docs = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "pipeline.md")
    with open(docs) as f:
        [command] = re.findall(r"^prefect deployment run .*--param params=.*$", f.read(), re.M)
    value = next(a for a in shlex.split(command) if a.startswith("params="))
    params = PipelineParams(**json.loads(value.removeprefix("params=")))
    assert isinstance(params.training.model, PremadeSettings)
    assert params.training.model.premade == "DNNClassifier"
