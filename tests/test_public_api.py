"""tf.estimator's public names at their paths: __all__, add_metrics, parse specs, est.inputs."""

import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import estimator_core as est

# tf.estimator 2.15's public names this library has (canned estimators, heads, TPU and the
# Keras converter are not among them).
TF_ESTIMATOR_NAMES = [
    "BestExporter",
    "CheckpointSaverListener",
    "Estimator",
    "EstimatorSpec",
    "EvalSpec",
    "Exporter",
    "FinalExporter",
    "FinalOpsHook",
    "GlobalStepWaiterHook",
    "LatestExporter",
    "LoggingTensorHook",
    "ModeKeys",
    "NanLossDuringTrainingError",
    "NanTensorHook",
    "ProfilerHook",
    "RunConfig",
    "SessionRunArgs",
    "SessionRunContext",
    "SessionRunHook",
    "SessionRunValues",
    "StepCounterHook",
    "StopAtStepHook",
    "SummarySaverHook",
    "TrainSpec",
    "VocabInfo",
    "WarmStartSettings",
    "add_metrics",
    "classifier_parse_example_spec",
    "regressor_parse_example_spec",
    "train_and_evaluate",
    "experimental.InMemoryEvaluatorHook",
    "experimental.make_early_stopping_hook",
    "experimental.stop_if_higher_hook",
    "experimental.stop_if_lower_hook",
    "experimental.stop_if_no_decrease_hook",
    "experimental.stop_if_no_increase_hook",
    "export.ClassificationOutput",
    "export.EvalOutput",
    "export.ExportOutput",
    "export.PredictOutput",
    "export.RegressionOutput",
    "export.ServingInputReceiver",
    "export.TensorServingInputReceiver",
    "export.build_parsing_serving_input_receiver_fn",
    "export.build_raw_serving_input_receiver_fn",
    "inputs.numpy_input_fn",
    "inputs.pandas_input_fn",
]


@pytest.mark.slow  # a fresh interpreter: names loaded as a side effect of other tests' imports
def test_every_public_name_resolves_after_a_plain_import():
    check = (
        "import estimator_core as est\n"
        "for module in (est, est.export, est.experimental):\n"
        "    for name in module.__all__:\n"
        "        getattr(module, name)\n"
        f"for path in {TF_ESTIMATOR_NAMES!r}:\n"
        "    target = est\n"
        "    for part in path.split('.'):\n"
        "        target = getattr(target, part)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def _model_fn(features, labels, mode):
    prediction = tf.squeeze(keras.layers.Dense(1, name="d")(features["x"]), axis=1)
    if mode == est.ModeKeys.PREDICT:
        return est.EstimatorSpec(mode, predictions={"y": prediction})
    loss = tf.reduce_mean(tf.square(prediction - labels))
    return est.EstimatorSpec(
        mode,
        predictions={"y": prediction},
        loss=loss,
        train_op=keras.optimizers.SGD(0.01),
        eval_metric_ops={"mae": est.metrics.mean_absolute_error(labels, prediction)},
    )


def test_add_metrics_adds_to_the_estimators_own(tmp_path):
    x = np.linspace(0, 1, 16, dtype=np.float32).reshape(8, 2)
    y = x.sum(axis=1)
    estimator = est.Estimator(_model_fn, model_dir=tmp_path)
    estimator.train(est.inputs.numpy_input_fn({"x": x}, y, batch_size=4, shuffle=False), steps=2)

    def rmse_and_count(labels, predictions, features):
        count = keras.metrics.Sum(name="examples")
        count.update_state(tf.ones_like(features["x"][:, 0]))
        return {"rmse": est.metrics.root_mean_squared_error(labels, predictions["y"]), "n": count}

    extended = est.add_metrics(estimator, rmse_and_count)
    assert extended.model_dir == estimator.model_dir and type(extended.config) is est.RunConfig
    results = extended.evaluate(est.inputs.numpy_input_fn({"x": x}, y, shuffle=False))
    assert set(results) == {"mae", "rmse", "n", "loss", "global_step"}
    assert results["n"] == 8 and results["global_step"] == 2
    np.testing.assert_allclose(results["rmse"] ** 2, results["loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="has following not expected args: \\['weights'\\]"):
        est.add_metrics(estimator, lambda labels, weights: {})


def test_parse_example_specs():
    columns = [tf.feature_column.numeric_column("age"), tf.feature_column.numeric_column("h", (2,))]
    spec = est.classifier_parse_example_spec(columns, "label", weight_column="w")
    assert spec == {
        "age": tf.io.FixedLenFeature((1,), tf.float32),
        "h": tf.io.FixedLenFeature((2,), tf.float32),
        "label": tf.io.FixedLenFeature((1,), tf.int64),
        "w": tf.io.FixedLenFeature((1,), tf.float32),
    }
    regression = est.regressor_parse_example_spec(columns, "price", label_dimension=3)
    assert regression["price"] == tf.io.FixedLenFeature((3,), tf.float32)
    with pytest.raises(ValueError, match="label should not be used as feature"):
        est.classifier_parse_example_spec(columns, "age")
    with pytest.raises(ValueError, match="weight_column should be an instance of"):
        est.classifier_parse_example_spec(columns, "label", weight_column=3)


def _elements(input_fn):
    return [tf.nest.map_structure(lambda t: t.numpy().tolist(), e) for e in input_fn()]


def test_numpy_input_fn_batches_epochs_and_checks():
    x = {"b": np.arange(5), "a": np.arange(5) * 10}
    batches = _elements(est.inputs.numpy_input_fn(x, np.arange(5) + 100, 2, 2, shuffle=False))
    assert [len(f["a"]) for f, _ in batches] == [2, 2, 2, 2, 2]  # 10 rows over two epochs
    assert batches[0] == ({"a": [0, 10], "b": [0, 1]}, [100, 101])
    forever = est.inputs.numpy_input_fn(np.arange(5), batch_size=2, num_epochs=None, shuffle=True)
    assert all(len(b) == 2 for b in forever().take(7))  # full batches only, as dequeue_many
    targets = _elements(est.inputs.numpy_input_fn(x, {"t": np.arange(5)}, 5, shuffle=False))
    assert targets == [({"a": [0, 10, 20, 30, 40], "b": [0, 1, 2, 3, 4]}, {"t": [0, 1, 2, 3, 4]})]
    shuffled = _elements(est.inputs.numpy_input_fn(np.arange(100), batch_size=100, shuffle=True))
    assert sorted(shuffled[0]) == list(range(100)) and shuffled[0] != list(range(100))
    with pytest.raises(ValueError, match="shuffle must be provided and explicitly set as boolean"):
        est.inputs.numpy_input_fn(x)
    with pytest.raises(ValueError, match="Length of tensors in x and y is mismatched"):
        est.inputs.numpy_input_fn(x, np.arange(4), shuffle=False)()
    with pytest.raises(ValueError, match="1 duplicate keys are found in both x and y"):
        est.inputs.numpy_input_fn(x, {"a": np.arange(5)}, shuffle=False)()
    with pytest.raises(TypeError, match="x must be a dict or array; got list"):
        est.inputs.numpy_input_fn([1, 2], shuffle=False)()


def test_pandas_input_fn_series_and_frame_targets():
    x = pd.DataFrame({"a": [1, 2, 3], "s": ["p", "q", "r"]}, index=[7, 8, 9])
    y = pd.Series([0.5, 1.5, 2.5], index=[7, 8, 9])
    (features, target), *_ = est.inputs.pandas_input_fn(x, y, batch_size=3, shuffle=False)()
    assert features["a"].numpy().tolist() == [1, 2, 3] and set(features) == {"a", "s"}
    assert features["s"].dtype == tf.string and target.numpy().tolist() == [0.5, 1.5, 2.5]
    frame = pd.DataFrame({"a": [0, 1, 0], "b": [1, 1, 0]}, index=x.index)  # "a" also in x
    (_, targets), *_ = est.inputs.pandas_input_fn(x, frame, batch_size=3, shuffle=False)()
    assert targets["a"].numpy().tolist() == [0, 1, 0] and set(targets) == {"a", "b"}
    with pytest.raises(ValueError, match="Index for x and y are mismatched"):
        est.inputs.pandas_input_fn(x, y.reset_index(drop=True), shuffle=False)
    with pytest.raises(ValueError, match="Cannot use name a for target column"):
        est.inputs.pandas_input_fn(x, y, shuffle=False, target_column="a")
    with pytest.raises(TypeError, match="target_column must be a string type"):
        est.inputs.pandas_input_fn(x, y, shuffle=False, target_column=1)
