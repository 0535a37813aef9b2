"""Warm start from tf.estimator 2.15's own checkpoints: the committed fixture
(tests/fixtures/legacy_premade, written by TF 2.15.1 + tensorflow-estimator 2.15.0 with
make_fixture.py) loads into the premade estimators by tf.estimator's variable names, and gives
tf.estimator's evaluation and predictions."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_iris

import estimator_core as est
from tests.fixtures.legacy_premade.make_fixture import iris_features, legacy_columns, split

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "legacy_premade")
with open(os.path.join(FIXTURE, "expected.json")) as f:
    EXPECTED = json.load(f)


def iris_input_fn(rows, repeat=False):
    x, y = load_iris(return_X_y=True)
    features = {k: v[rows] for k, v in iris_features(x).items()}

    def input_fn():
        dataset = tf.data.Dataset.from_tensor_slices((features, y[rows]))
        return dataset.repeat().batch(16) if repeat else dataset.batch(16)

    return input_fn


def frozen():  # learning rate 0: one training step applies the warm start and changes nothing
    return keras.optimizers.SGD(0.0)


@pytest.mark.parametrize("kind", ["dnn", "linear"])
def test_warm_start_from_a_tf_estimator_checkpoint_reproduces_its_results(tmp_path, kind):
    train, held_out = split(150)
    assert held_out.tolist() == EXPECTED["eval_rows"]
    dnn_columns, linear_columns = legacy_columns(tf.feature_column)
    source = os.path.join(FIXTURE, kind)  # a tf.estimator model_dir (its latest checkpoint)
    if kind == "dnn":
        estimator = est.DNNClassifier(
            [8, 6],
            dnn_columns,
            n_classes=3,
            model_dir=tmp_path,
            optimizer=frozen,
            warm_start_from=source,
        )
    else:
        estimator = est.LinearClassifier(
            linear_columns,
            n_classes=3,
            model_dir=tmp_path,
            optimizer=frozen,
            warm_start_from=source,
        )
    estimator.train(iris_input_fn(train, repeat=True), steps=1)
    expected = EXPECTED[kind]

    names = set(estimator.get_variable_names())
    assert set(expected["variables"]) <= names  # tf.estimator's names, every one of them
    metrics = estimator.evaluate(iris_input_fn(held_out))
    for key in ("accuracy", "average_loss", "loss"):
        assert metrics[key] == pytest.approx(expected["metrics"][key], abs=2e-6), key
    probabilities = [p["probabilities"] for p in estimator.predict(iris_input_fn(held_out))]
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=2e-6)
    reader = tf.train.load_checkpoint(source)
    for name in expected["variables"]:
        if name != "global_step":
            np.testing.assert_array_equal(
                estimator.get_variable_value(name), reader.get_tensor(name)
            )


def test_warm_start_settings_select_and_rename_legacy_variables(tmp_path):
    """vars_to_warm_start picks by tf.estimator name; var_name_to_prev_var_name renames."""
    dnn_columns, _ = legacy_columns(tf.feature_column)
    wider = [8, 6]
    settings = est.WarmStartSettings(
        os.path.join(FIXTURE, "dnn"),
        vars_to_warm_start="dnn/hiddenlayer_.*",
        var_name_to_prev_var_name=None,
    )
    estimator = est.DNNClassifier(
        wider,
        dnn_columns,
        n_classes=3,
        model_dir=tmp_path,
        optimizer=frozen,
        warm_start_from=settings,
    )
    train, _ = split(150)
    estimator.train(iris_input_fn(train, repeat=True), steps=1)
    reader = tf.train.load_checkpoint(os.path.join(FIXTURE, "dnn"))
    np.testing.assert_array_equal(
        estimator.get_variable_value("dnn/hiddenlayer_0/kernel"),
        reader.get_tensor("dnn/hiddenlayer_0/kernel"),
    )
    assert not np.array_equal(  # not selected: initialised anew
        estimator.get_variable_value("dnn/logits/kernel"), reader.get_tensor("dnn/logits/kernel")
    )
