"""The premade estimators on small real data (scikit-learn's iris, digits and diabetes, and a CSV
of strings and numbers through estimator_core.data TFRecords): each one trains, evaluates
with tf.estimator's metric keys, predicts with its prediction keys, and exports a SavedModel
whose every signature serves what predict() gives."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_diabetes, load_digits, load_iris

import estimator_core as est
from estimator_core.canned.premade import premade_estimator
from estimator_core.data import (
    make_input_fn,
    make_serving_input_receiver_fn,
    split_files,
    write_dataset,
)

fc = tf.feature_column
tf.get_logger().setLevel("ERROR")

CLASSIFIER_KEYS = {
    "logits",
    "probabilities",
    "class_ids",
    "classes",
    "all_class_ids",
    "all_classes",
}
BINARY_KEYS = CLASSIFIER_KEYS | {"logistic"}
BINARY_METRICS = {
    "accuracy",
    "accuracy_baseline",
    "auc",
    "auc_precision_recall",
    "average_loss",
    "label/mean",
    "precision",
    "prediction/mean",
    "recall",
}
MULTI_CLASS_METRICS = {"accuracy", "average_loss"}
REGRESSION_METRICS = {"average_loss", "label/mean", "prediction/mean"}
CLASSIFIER_SIGNATURES = {"serving_default", "classification", "predict"}
REGRESSOR_SIGNATURES = {"serving_default", "regression", "predict"}


def config(**kwargs):
    return est.RunConfig(tf_random_seed=1, log_step_count_steps=None, **kwargs)


# -- data -----------------------------------------------------------------------------------


def arrays_input_fn(features, labels=None, train=False, batch_size=32):
    def input_fn():
        data = (features, labels) if labels is not None else features
        dataset = tf.data.Dataset.from_tensor_slices(data)
        if train:
            return dataset.shuffle(1000, seed=0).repeat().batch(batch_size)
        return dataset.batch(batch_size)

    return input_fn


def halves(n, seed=0):
    order = np.random.RandomState(seed).permutation(n)
    cut = int(n * 0.8)
    return order[:cut], order[cut:]


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    train, held_out = halves(len(y))
    return x.astype(np.float32), y.astype(np.int64), train, held_out


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    train, held_out = halves(len(y))
    return (x / 16.0).astype(np.float32), y.astype(np.int64), train, held_out


@pytest.fixture(scope="module")
def diabetes():
    x, y = load_diabetes(return_X_y=True)
    train, held_out = halves(len(y))
    return x.astype(np.float32), (y / 100.0).astype(np.float32), train, held_out


def example(features):
    """A serialized tf.Example of one row's float/int/string features."""
    feature = {}
    for name, value in features.items():
        values = np.atleast_1d(value)
        if values.dtype.kind == "f":
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        elif values.dtype.kind in "iu":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            encoded = [str(v).encode() for v in values]
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=encoded))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


# -- the shared check -----------------------------------------------------------------------


def check_estimator(
    tmp_path,
    estimator,
    train_input_fn,
    eval_input_fn,
    predict_input_fn,
    *,
    steps,
    metric_keys,
    prediction_keys,
    signatures,
    receiver_fn,
    serialized,
):
    """Train, evaluate, predict, export and serve; returns (metrics, predictions, served)."""
    estimator.train(train_input_fn, steps=steps)
    metrics = estimator.evaluate(eval_input_fn)
    assert set(metrics) == set(metric_keys) | {"loss", "global_step"}
    assert metrics["global_step"] == steps
    predictions = list(estimator.predict(predict_input_fn))
    assert set(predictions[0]) == set(prediction_keys)
    path = estimator.export_saved_model(tmp_path / "export", receiver_fn)
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == set(signatures)
    served = {}
    for name, fn in loaded.signatures.items():
        (input_name,) = fn.structured_input_signature[1]
        served[name] = {
            k: v.numpy() for k, v in fn(**{input_name: tf.constant(serialized)}).items()
        }
    rows = len(serialized)
    by_key = {k: np.stack([p[k] for p in predictions[:rows]]) for k in predictions[0]}
    for key, value in served["predict"].items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(value, by_key[key], rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(value, by_key[key])
    if "classification" in served:
        np.testing.assert_allclose(
            served["classification"]["scores"], by_key["probabilities"], atol=1e-6
        )
        names = by_key["all_classes" if "all_classes" in by_key else "classes"]  # multi-label: all
        np.testing.assert_array_equal(served["classification"]["classes"], names)
    if "regression" in served:
        value = by_key["logistic" if "logistic" in by_key else "predictions"]
        np.testing.assert_allclose(served["regression"]["outputs"], value, rtol=1e-5, atol=1e-6)
    return metrics, predictions, served


def iris_check(tmp_path, estimator, iris, labels=None, steps=300, **kwargs):
    x, y, train, held_out = iris
    labels = y if labels is None else labels
    return check_estimator(
        tmp_path,
        estimator,
        arrays_input_fn({"x": x[train]}, labels[train], train=True),
        arrays_input_fn({"x": x[held_out]}, labels[held_out]),
        arrays_input_fn({"x": x[held_out]}),
        steps=steps,
        receiver_fn=est.export.build_parsing_serving_input_receiver_fn(
            {"x": tf.io.FixedLenFeature([4], tf.float32)}
        ),
        serialized=[example({"x": row}) for row in x[held_out][:5]],
        **kwargs,
    )


IRIS_X = [fc.numeric_column("x", shape=(4,))]


# -- classifiers ----------------------------------------------------------------------------


def test_dnn_classifier_iris_learns_with_the_default_optimizer(tmp_path, iris):
    """The default 'Adagrad' learns at tf.estimator 1.x's rate (0.05): tf.estimator 2.x's
    Keras default (0.001) left iris at 0.13-0.60 accuracy."""
    metrics, predictions, _ = iris_check(
        tmp_path,
        est.DNNClassifier([10, 10], IRIS_X, n_classes=3, model_dir=tmp_path, config=config()),
        iris,
        metric_keys=MULTI_CLASS_METRICS,
        prediction_keys=CLASSIFIER_KEYS,
        signatures=CLASSIFIER_SIGNATURES,
    )
    assert metrics["accuracy"] >= 0.9
    assert predictions[0]["class_ids"].dtype == np.int64
    assert predictions[0]["all_class_ids"].dtype == np.int32
    assert predictions[0]["classes"][0] == str(predictions[0]["class_ids"][0]).encode()


def test_linear_classifier_iris_with_label_vocabulary_and_crossed_columns(tmp_path, iris):
    names = np.array(["setosa", "versicolor", "virginica"])
    petal = fc.bucketized_column(fc.numeric_column("x", shape=(4,)), [1.0, 3.0, 5.0])
    estimator = est.LinearClassifier(
        [*IRIS_X, petal],
        n_classes=3,
        label_vocabulary=list(names),
        model_dir=tmp_path,
        config=config(),
    )
    metrics, predictions, served = iris_check(
        tmp_path,
        estimator,
        iris,
        labels=names[iris[1]],
        metric_keys=MULTI_CLASS_METRICS,
        prediction_keys=CLASSIFIER_KEYS,
        signatures=CLASSIFIER_SIGNATURES,
    )
    assert metrics["accuracy"] >= 0.9
    assert predictions[0]["classes"][0] in names.astype(bytes)
    assert served["classification"]["classes"][0].tolist() == list(names.astype(bytes))
    names_seen = estimator.get_variable_names()
    assert "linear/linear_model/x_bucketized/weights" in names_seen
    assert "linear/linear_model/bias_weights" in names_seen


def test_dnn_linear_combined_classifier_iris(tmp_path, iris):
    buckets = fc.bucketized_column(fc.numeric_column("x", shape=(4,)), [2.0, 4.0])
    estimator = est.DNNLinearCombinedClassifier(
        linear_feature_columns=[buckets],
        dnn_feature_columns=IRIS_X,
        dnn_hidden_units=[10],
        dnn_optimizer=keras.optimizers.Adagrad(0.05),
        linear_optimizer=lambda: keras.optimizers.Ftrl(0.1),
        n_classes=3,
        model_dir=tmp_path,
        config=config(),
    )
    metrics, _, _ = iris_check(
        tmp_path,
        estimator,
        iris,
        metric_keys=MULTI_CLASS_METRICS,
        prediction_keys=CLASSIFIER_KEYS,
        signatures=CLASSIFIER_SIGNATURES,
    )
    assert metrics["accuracy"] >= 0.85
    names = estimator.get_variable_names()
    assert {
        "dnn/hiddenlayer_0/kernel",
        "dnn/logits/bias",
        "linear/linear_model/x_bucketized/weights",
    } <= set(names)


def test_baseline_classifier_learns_the_class_distribution(tmp_path, iris):
    _, y, train, _ = iris
    _, predictions, _ = iris_check(
        tmp_path,
        est.BaselineClassifier(n_classes=3, model_dir=tmp_path, config=config()),
        iris,
        metric_keys=MULTI_CLASS_METRICS,
        prediction_keys=CLASSIFIER_KEYS,
        signatures=CLASSIFIER_SIGNATURES,
    )
    frequencies = np.bincount(y[train], minlength=3) / len(train)
    np.testing.assert_allclose(predictions[0]["probabilities"], frequencies, atol=0.03)
    assert all(
        np.array_equal(p["probabilities"], predictions[0]["probabilities"]) for p in predictions
    )


def test_binary_dnn_classifier_digits_with_weights_batch_norm_and_dropout(tmp_path, digits):
    x, y, train, held_out = digits
    big = (y >= 5).astype(np.int64)
    weights = np.where(big == 1, 2.0, 1.0).astype(np.float32)
    estimator = est.DNNClassifier(
        [32],
        [fc.numeric_column("pixels", shape=(64,))],
        weight_column="w",
        batch_norm=True,
        dropout=0.1,
        optimizer="Adam",
        model_dir=tmp_path,
        config=config(),
    )
    metrics, predictions, served = check_estimator(
        tmp_path,
        estimator,
        arrays_input_fn({"pixels": x[train], "w": weights[train]}, big[train], train=True),
        arrays_input_fn({"pixels": x[held_out], "w": weights[held_out]}, big[held_out]),
        arrays_input_fn({"pixels": x[held_out]}),
        steps=300,
        metric_keys=BINARY_METRICS,
        prediction_keys=BINARY_KEYS,
        signatures=CLASSIFIER_SIGNATURES | {"regression"},
        receiver_fn=est.export.build_parsing_serving_input_receiver_fn(
            {"pixels": tf.io.FixedLenFeature([64], tf.float32)}
        ),
        serialized=[example({"pixels": row}) for row in x[held_out][:5]],
    )
    assert metrics["accuracy"] >= 0.85 and metrics["auc"] >= 0.9
    # label/mean is weighted: the 2x-weighted positives count twice
    positive = big[held_out].mean()
    assert metrics["label/mean"] == pytest.approx(2 * positive / (1 + positive), abs=1e-5)
    assert metrics["accuracy_baseline"] == pytest.approx(
        max(metrics["label/mean"], 1 - metrics["label/mean"]), abs=1e-6
    )
    assert predictions[0]["logistic"].shape == (1,) and predictions[0]["probabilities"].shape == (
        2,
    )
    assert served["regression"]["outputs"].shape == (5, 1)
    names = estimator.get_variable_names()
    assert "dnn/hiddenlayer_0/batchnorm_0/moving_mean" in names


def test_dnn_linear_combined_estimator_with_binary_head_thresholds(tmp_path, digits):
    x, y, train, held_out = digits
    zero = (y == 0).astype(np.int64)
    head = est.BinaryClassHead(thresholds=[0.25, 0.75])
    estimator = est.DNNLinearCombinedEstimator(
        head,
        linear_feature_columns=[fc.numeric_column("pixels", shape=(64,))],
        dnn_feature_columns=[fc.numeric_column("pixels", shape=(64,))],
        dnn_hidden_units=[16],
        dnn_optimizer="Adam",
        linear_optimizer="SGD",
        model_dir=tmp_path,
        config=config(),
    )
    metrics, _, _ = check_estimator(
        tmp_path,
        estimator,
        arrays_input_fn({"pixels": x[train]}, zero[train], train=True),
        arrays_input_fn({"pixels": x[held_out]}, zero[held_out]),
        arrays_input_fn({"pixels": x[held_out]}),
        steps=200,
        metric_keys=BINARY_METRICS
        | {
            f"{metric}/positive_threshold_{t}"
            for metric in ("accuracy", "precision", "recall")
            for t in (0.25, 0.75)
        },
        prediction_keys=BINARY_KEYS,
        signatures=CLASSIFIER_SIGNATURES | {"regression"},
        receiver_fn=est.export.build_parsing_serving_input_receiver_fn(
            {"pixels": tf.io.FixedLenFeature([64], tf.float32)}
        ),
        serialized=[example({"pixels": row}) for row in x[held_out][:3]],
    )
    assert metrics["auc"] >= 0.9


def test_dnn_estimator_multi_label_head_digits(tmp_path, digits):
    x, y, train, held_out = digits
    labels = np.stack([y % 2 == 0, y >= 5, np.isin(y, [0, 6, 8, 9])], axis=1).astype(np.int64)
    head = est.MultiLabelHead(
        3,
        thresholds=[0.5],
        label_vocabulary=["even", "big", "loop"],
        classes_for_class_based_metrics=["loop"],
    )
    metrics, predictions, _ = check_estimator(
        tmp_path,
        est.DNNEstimator(
            head,
            [32],
            [fc.numeric_column("pixels", shape=(64,))],
            optimizer="Adam",
            model_dir=tmp_path,
            config=config(),
        ),
        arrays_input_fn({"pixels": x[train]}, labels[train], train=True),
        arrays_input_fn({"pixels": x[held_out]}, labels[held_out]),
        arrays_input_fn({"pixels": x[held_out]}),
        steps=300,
        metric_keys={
            "average_loss",
            "auc",
            "auc_precision_recall",
            "accuracy/positive_threshold_0.5",
            "precision/positive_threshold_0.5",
            "recall/positive_threshold_0.5",
            "probability_mean/loop",
            "auc/loop",
            "auc_precision_recall/loop",
        },
        prediction_keys={"logits", "probabilities", "classes"},
        signatures=CLASSIFIER_SIGNATURES,
        receiver_fn=est.export.build_parsing_serving_input_receiver_fn(
            {"pixels": tf.io.FixedLenFeature([64], tf.float32)}
        ),
        serialized=[example({"pixels": row}) for row in x[held_out][:4]],
    )
    assert metrics["auc"] >= 0.9
    assert predictions[0]["classes"].tolist() == [b"even", b"big", b"loop"]


def test_dnn_estimator_multi_head_iris(tmp_path, iris):
    x, y, train, held_out = iris
    head = est.MultiHead([est.MultiClassHead(3, name="species"), est.RegressionHead(name="petal")])
    estimator = est.DNNEstimator(head, [16], IRIS_X[:1], model_dir=tmp_path, config=config())

    def labelled(rows, train=False):
        return arrays_input_fn({"x": x[rows]}, {"species": y[rows], "petal": x[rows, 3]}, train)

    estimator.train(labelled(train, True), steps=300)
    metrics = estimator.evaluate(labelled(held_out))
    assert set(metrics) == {
        "loss",
        "global_step",
        "loss/species",
        "average_loss/species",
        "accuracy/species",
        "loss/petal",
        "average_loss/petal",
        "label/mean/petal",
        "prediction/mean/petal",
    }
    assert metrics["accuracy/species"] >= 0.9
    assert metrics["loss"] == pytest.approx(
        metrics["loss/species"] + metrics["loss/petal"], rel=1e-4
    )
    predictions = next(estimator.predict(arrays_input_fn({"x": x[held_out]})))
    assert ("species", "probabilities") in predictions and ("petal", "predictions") in predictions
    path = estimator.export_saved_model(
        tmp_path / "export",
        est.export.build_parsing_serving_input_receiver_fn(
            {"x": tf.io.FixedLenFeature([4], tf.float32)}
        ),
    )
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {
        "serving_default",
        "species",
        "species/classification",
        "species/predict",
        "petal",
        "petal/regression",
        "petal/predict",
        "predict",
    }
    examples = tf.constant([example({"x": row}) for row in x[held_out][:1]])
    merged = loaded.signatures["predict"](examples=examples)
    np.testing.assert_allclose(
        merged["species/probabilities"][0], predictions[("species", "probabilities")], atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.signatures["petal"](inputs=examples)["outputs"][0],
        predictions[("petal", "predictions")],
        atol=1e-6,
    )


# -- regressors -----------------------------------------------------------------------------


DIABETES_X = [fc.numeric_column("x", shape=(10,))]


def diabetes_check(tmp_path, estimator, diabetes, steps=300):
    x, y, train, held_out = diabetes
    return check_estimator(
        tmp_path,
        estimator,
        arrays_input_fn({"x": x[train]}, y[train], train=True),
        arrays_input_fn({"x": x[held_out]}, y[held_out]),
        arrays_input_fn({"x": x[held_out]}),
        steps=steps,
        metric_keys=REGRESSION_METRICS,
        prediction_keys={"predictions"},
        signatures=REGRESSOR_SIGNATURES,
        receiver_fn=est.export.build_parsing_serving_input_receiver_fn(
            {"x": tf.io.FixedLenFeature([10], tf.float32)}
        ),
        serialized=[example({"x": row}) for row in x[held_out][:5]],
    )


@pytest.mark.parametrize("kind", ["dnn", "linear", "combined"])
def test_regressors_diabetes_beat_the_mean(tmp_path, diabetes, kind):
    _, y, train, held_out = diabetes
    make = {
        "dnn": lambda: est.DNNRegressor(
            [16], DIABETES_X, optimizer="Adam", model_dir=tmp_path, config=config()
        ),
        "linear": lambda: est.LinearRegressor(
            DIABETES_X, optimizer="SGD", model_dir=tmp_path, config=config()
        ),
        "combined": lambda: est.DNNLinearCombinedRegressor(
            linear_feature_columns=DIABETES_X,
            linear_optimizer="SGD",
            dnn_feature_columns=DIABETES_X,
            dnn_hidden_units=[8],
            dnn_optimizer=lambda: keras.optimizers.Adam(0.01),
            model_dir=tmp_path,
            config=config(),
        ),
    }[kind]
    metrics, _, _ = diabetes_check(tmp_path, make(), diabetes, steps=400)
    variance = float(np.mean((y[held_out] - y[train].mean()) ** 2))
    assert metrics["average_loss"] < 0.8 * variance
    assert metrics["label/mean"] == pytest.approx(float(y[held_out].mean()), rel=1e-5)


def test_baseline_regressor_learns_the_mean(tmp_path, diabetes):
    _, y, train, _ = diabetes
    _, predictions, _ = diabetes_check(
        tmp_path,
        est.BaselineRegressor(
            optimizer=lambda: keras.optimizers.Adam(0.1), model_dir=tmp_path, config=config()
        ),
        diabetes,
        steps=400,
    )
    assert predictions[0]["predictions"][0] == pytest.approx(float(y[train].mean()), abs=0.1)


def test_linear_estimator_two_targets(tmp_path, diabetes):
    x, y, train, held_out = diabetes
    targets = np.stack([y, x[:, 2] * 10.0], axis=1).astype(np.float32)
    estimator = est.LinearEstimator(
        est.RegressionHead(label_dimension=2),
        DIABETES_X,
        optimizer="SGD",
        model_dir=tmp_path,
        config=config(),
    )
    estimator.train(arrays_input_fn({"x": x[train]}, targets[train], train=True), steps=300)
    metrics = estimator.evaluate(arrays_input_fn({"x": x[held_out]}, targets[held_out]))
    assert metrics["average_loss"] < float(
        np.mean((targets[held_out] - targets[train].mean(0)) ** 2)
    )
    prediction = next(estimator.predict(arrays_input_fn({"x": x[held_out]})))
    assert prediction["predictions"].shape == (2,)
    assert estimator.get_variable_value("linear/linear_model/x/weights").shape == (10, 2)


# -- no-code: a CSV of strings and numbers, prepared as TFRecords ---------------------------


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory):
    """600 rows: color (string), size (string), age (int), income (float); label yes/no."""
    rng = np.random.RandomState(0)
    root = tmp_path_factory.mktemp("premade_csv")
    path = root / "rows.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["color", "size", "age", "income", "label"])
        for _ in range(600):
            color, size = rng.choice(["red", "green", "blue"]), rng.choice(["S", "M", "L"])
            age, income = int(rng.randint(18, 80)), float(np.round(rng.lognormal(3, 0.5), 2))
            yes = (color == "red" and age > 40) or income > 30 or size == "L"
            writer.writerow([color, size, age, income, "yes" if yes else "no"])
    data_dir = root / "data"
    write_dataset(
        str(path), str(data_dir), label="label", splits={"train": 0.8, "eval": 0.2}, seed=0
    )
    return str(data_dir)


@pytest.mark.parametrize(
    "name, params",
    [
        (
            "DNNClassifier",
            {"hidden_units": [16, 8], "optimizer": {"name": "Adam", "learning_rate": 0.01}},
        ),
        ("LinearClassifier", {"optimizer": "Ftrl"}),
        ("DNNLinearCombinedClassifier", {"dnn_hidden_units": [16], "dnn_optimizer": "Adam"}),
    ],
)
def test_premade_from_a_prepared_csv(tmp_path, csv_data, name, params):
    estimator = premade_estimator(name, csv_data, params, model_dir=tmp_path, config=config())
    records = [r.numpy() for r in tf.data.TFRecordDataset(split_files(csv_data, "eval")).take(6)]
    metrics, predictions, served = check_estimator(
        tmp_path,
        estimator,
        make_input_fn(csv_data, "train", 32, est.ModeKeys.TRAIN, seed=0),
        make_input_fn(csv_data, "eval", 64, est.ModeKeys.EVAL),
        make_input_fn(csv_data, "eval", 64, est.ModeKeys.PREDICT),
        steps=300,
        metric_keys=BINARY_METRICS,
        prediction_keys=BINARY_KEYS,
        signatures=CLASSIFIER_SIGNATURES | {"regression"},
        receiver_fn=make_serving_input_receiver_fn(csv_data, raw=False),
        serialized=records,  # the eval split's own tf.Examples (the label is ignored)
    )
    assert metrics["accuracy"] >= 0.8
    assert predictions[0]["classes"][0] in (b"no", b"yes")  # the label vocabulary, sorted
    assert served["classification"]["classes"][0].tolist() == [b"no", b"yes"]
    if name != "DNNClassifier":
        return
    # the raw receiver (one tensor per feature) serves the same scores
    raw = tf.saved_model.load(
        estimator.export_saved_model(tmp_path / "raw", make_serving_input_receiver_fn(csv_data))
    )
    parsed = tf.io.parse_example(
        records,
        {
            "color": tf.io.FixedLenFeature([], tf.string),
            "size": tf.io.FixedLenFeature([], tf.string),
            "age": tf.io.FixedLenFeature([], tf.int64),
            "income": tf.io.FixedLenFeature([], tf.float32),
        },
    )
    scores = raw.signatures["serving_default"](**parsed)["scores"].numpy()
    np.testing.assert_allclose(scores, served["classification"]["scores"], atol=1e-6)


def test_premade_parameters_are_checked(csv_data):
    with pytest.raises(ValueError, match="unknown parameter.*'hiden_units'"):
        premade_estimator("DNNClassifier", csv_data, {"hiden_units": [8]})
    with pytest.raises(ValueError, match="unknown premade estimator"):
        premade_estimator("DNNClasifier", csv_data, {})
    with pytest.raises(ValueError, match="is a string; use a classifier"):
        premade_estimator("DNNRegressor", csv_data, {"hidden_units": [8]})
    with pytest.raises(ValueError, match="Unsupported optimizer name"):
        premade_estimator("LinearClassifier", csv_data, {"optimizer": {"name": "Adamax"}})
    with pytest.raises(ValueError, match="unknown activation"):
        premade_estimator(
            "DNNClassifier", csv_data, {"hidden_units": [8], "activation_fn": "relux"}
        )
    estimator = premade_estimator("LinearClassifier", csv_data, {"sparse_combiner": "mean"})
    assert isinstance(estimator, est.LinearClassifier)


# -- arguments --------------------------------------------------------------------------------


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="hidden_units must be positive ints"):
        est.DNNClassifier([10, 0], IRIS_X)
    with pytest.raises(ValueError, match="n_classes must be > 2"):
        est.DNNClassifier([10], IRIS_X, n_classes=1)
    with pytest.raises(ValueError, match="sparse_combiner must be one of"):
        est.LinearClassifier(IRIS_X, sparse_combiner="max")
    with pytest.raises(ValueError, match="Either linear_feature_columns or dnn_feature_columns"):
        est.DNNLinearCombinedClassifier()
    with pytest.raises(ValueError, match="dnn_hidden_units must be defined"):
        est.DNNLinearCombinedClassifier(dnn_feature_columns=IRIS_X)
    with pytest.raises(ValueError, match="dropout must be in"):
        est.DNNRegressor([4], IRIS_X, dropout=1.5)


def test_a_tf1_optimizer_is_refused_with_its_keras_replacement(tmp_path, iris):
    x, y, train, _ = iris
    estimator = est.DNNClassifier(
        [4],
        IRIS_X,
        n_classes=3,
        model_dir=tmp_path,
        optimizer=tf.compat.v1.train.AdagradOptimizer(0.05),
    )
    with pytest.raises(ValueError, match="not a Keras 3 optimizer.*keras.optimizers.Adagrad"):
        estimator.train(arrays_input_fn({"x": x[train]}, y[train], train=True), steps=1)


# -- eager and distributed -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["eager", "strategy"])
def test_dnn_classifier_eagerly_and_under_a_strategy(tmp_path, iris, how):
    """The same variables (tf.estimator's names) in eager mode and under a one-replica
    MirroredStrategy (the distributed code path on this process's one CPU)."""
    x, y, train, held_out = iris
    if how == "eager":
        run_config = config(run_eagerly=True)
    else:
        run_config = config(train_distribute=tf.distribute.MirroredStrategy(["/cpu:0"]))
    estimator = est.DNNClassifier(
        [8], IRIS_X, n_classes=3, batch_norm=True, model_dir=tmp_path, config=run_config
    )
    estimator.train(arrays_input_fn({"x": x[train]}, y[train], train=True), steps=30)
    metrics = estimator.evaluate(arrays_input_fn({"x": x[held_out]}, y[held_out]))
    assert set(metrics) == MULTI_CLASS_METRICS | {"loss", "global_step"}
    names = {n for n in estimator.get_variable_names() if n.startswith("dnn/")}
    assert names == {
        "dnn/hiddenlayer_0/kernel",
        "dnn/hiddenlayer_0/bias",
        "dnn/hiddenlayer_0/batchnorm_0/gamma",
        "dnn/hiddenlayer_0/batchnorm_0/beta",
        "dnn/hiddenlayer_0/batchnorm_0/moving_mean",
        "dnn/hiddenlayer_0/batchnorm_0/moving_variance",
        "dnn/logits/kernel",
        "dnn/logits/bias",
    }
