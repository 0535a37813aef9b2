"""The heads on their own (eager, no Estimator): tf.estimator's documented numbers, keys,
reductions, weights, label checks and export outputs."""

import numpy as np
import pytest
import tensorflow as tf

import estimator_core as est
from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.canned.prediction_keys import PredictionKeys
from estimator_core.export.outputs import (
    ClassificationOutput,
    PredictOutput,
    RegressionOutput,
)

FEATURES = {"x": np.array([[42.0], [43.0]], np.float32)}


def results(head, logits, labels, features=FEATURES):
    metrics = head.update_metrics(head.metrics(), features, logits, labels)
    return {k: round(float(m.result()), 2) for k, m in metrics.items()}


# -- tf.estimator's own docstring examples, number for number -------------------------------


def test_binary_class_head_docstring_numbers():
    head = est.BinaryClassHead()
    logits = np.array([[45.0], [-41.0]], np.float32)
    labels = np.array([[1], [1]], np.int32)
    assert float(head.loss(labels, logits, features=FEATURES)) == pytest.approx(20.5)
    assert results(head, logits, labels) == {
        "accuracy": 0.5,
        "accuracy_baseline": 1.0,
        "auc": 0.0,
        "auc_precision_recall": 1.0,
        "average_loss": 20.5,
        "label/mean": 1.0,
        "precision": 1.0,
        "prediction/mean": 0.5,
        "recall": 0.5,
    }
    predictions = head.predictions(logits)
    assert sorted(predictions) == sorted(
        [
            "logits",
            "logistic",
            "probabilities",
            "class_ids",
            "classes",
            "all_class_ids",
            "all_classes",
        ]
    )
    assert predictions["class_ids"].numpy().tolist() == [[1], [0]]
    assert predictions["classes"].numpy().tolist() == [[b"1"], [b"0"]]
    assert predictions["all_class_ids"].dtype == tf.int32
    np.testing.assert_allclose(predictions["probabilities"].numpy()[1], [1.0, 0.0], atol=1e-6)


def test_multi_class_head_docstring_numbers():
    head = est.MultiClassHead(3)
    logits = np.array([[10, 0, 0], [0, 10, 0]], np.float32)
    labels = np.array([[1], [1]], np.int64)
    assert float(head.loss(labels, logits, features=FEATURES)) == pytest.approx(5.0, abs=1e-3)
    assert results(head, logits, labels) == {"accuracy": 0.5, "average_loss": 5.0}
    predictions = head.predictions(logits)
    assert sorted(predictions) == sorted(
        ["logits", "probabilities", "class_ids", "classes", "all_class_ids", "all_classes"]
    )
    assert predictions["all_classes"].numpy().tolist()[0] == [b"0", b"1", b"2"]


def test_regression_head_docstring_numbers():
    head = est.RegressionHead()
    logits = np.array([[45], [41]], np.float32)
    labels = np.array([[43], [44]], np.int32)
    assert float(head.loss(labels, logits, features=FEATURES)) == pytest.approx(6.5)
    assert results(head, logits, labels) == {
        "average_loss": 6.5,
        "label/mean": 43.5,
        "prediction/mean": 43.0,
    }
    assert sorted(head.predictions(logits)) == ["predictions"]


def test_multi_label_head_docstring_numbers():
    head = est.MultiLabelHead(2)
    logits = np.array([[-1.0, 1.0], [-1.5, 1.5]], np.float32)
    labels = np.array([[1, 0], [1, 1]], np.int64)
    assert float(head.loss(labels, logits, features=FEATURES)) == pytest.approx(1.13, abs=5e-3)
    assert results(head, logits, labels) == {
        "auc": 0.33,
        "auc_precision_recall": 0.77,
        "average_loss": 1.13,
    }
    # the same labels as a SparseTensor of class ids, and as class names
    sparse = tf.SparseTensor([[0, 0], [1, 0], [1, 1]], tf.constant([0, 0, 1], tf.int64), [2, 2])
    assert float(head.loss(sparse, logits)) == pytest.approx(1.13, abs=5e-3)
    named = est.MultiLabelHead(2, label_vocabulary=["cat", "dog"])
    words = tf.SparseTensor([[0, 0], [1, 0], [1, 1]], ["cat", "cat", "dog"], [2, 2])
    assert float(named.loss(words, logits)) == pytest.approx(1.13, abs=5e-3)


def test_multi_head_docstring_numbers():
    head = est.MultiHead([est.MultiLabelHead(2, name="head1"), est.MultiLabelHead(3, name="head2")])
    logits = {
        "head1": np.array([[-10.0, 10.0], [-15.0, 10.0]], np.float32),
        "head2": np.array([[20.0, -20.0, 20.0], [-30.0, 20.0, -20.0]], np.float32),
    }
    labels = {
        "head1": np.array([[1, 0], [1, 1]], np.int64),
        "head2": np.array([[0, 1, 0], [1, 1, 0]], np.int64),
    }
    assert float(head.loss(labels, logits, features=FEATURES)) == pytest.approx(23.75, abs=1e-3)
    assert results(head, logits, labels) == {
        "auc/head1": 0.17,
        "auc/head2": 0.33,
        "auc_precision_recall/head1": 0.6,
        "auc_precision_recall/head2": 0.4,
        "average_loss/head1": 8.75,
        "average_loss/head2": 15.0,
        "loss/head1": 8.75,
        "loss/head2": 15.0,
    }
    # one logits tensor is split among the heads in order
    joined = np.concatenate([logits["head1"], logits["head2"]], axis=1)
    assert float(head.loss(labels, joined)) == pytest.approx(23.75, abs=1e-3)
    predictions = head.predictions(joined)
    np.testing.assert_array_equal(predictions[("head1", "logits")], logits["head1"])
    assert head.logits_dimension == 5 and head.name == "head1_head2"


# -- reductions, weights, thresholds, vocabularies -------------------------------------------


@pytest.mark.parametrize(
    "reduction, expected",
    [
        (tf.losses.Reduction.SUM, 1 * 1.0 + 9 * 3.0),
        (tf.losses.Reduction.SUM_OVER_BATCH_SIZE, (1 * 1.0 + 9 * 3.0) / 2),
        (tf.compat.v1.losses.Reduction.SUM, 1 * 1.0 + 9 * 3.0),
        (tf.compat.v1.losses.Reduction.MEAN, (1 * 1.0 + 9 * 3.0) / 4),
        (tf.compat.v1.losses.Reduction.SUM_BY_NONZERO_WEIGHTS, (1 * 1.0 + 9 * 3.0) / 2),
    ],
)
def test_loss_reductions_and_weight_column(reduction, expected):
    head = est.RegressionHead(weight_column="w", loss_reduction=reduction)
    features = {"w": np.array([1.0, 3.0], np.float32)}
    loss = head.loss(np.array([1.0, 3.0]), np.array([[0.0], [0.0]], np.float32), features)
    assert float(loss) == pytest.approx(expected)
    metrics = results(head, np.array([[0.0], [0.0]], np.float32), np.array([1.0, 3.0]), features)
    assert metrics["average_loss"] == pytest.approx((1 * 1.0 + 9 * 3.0) / 4)  # weighted mean
    assert metrics["label/mean"] == pytest.approx((1 * 1.0 + 3 * 3.0) / 4)


def test_numeric_weight_column_is_normalized_and_none_reduction_refused():
    column = tf.feature_column.numeric_column("w", normalizer_fn=lambda w: w * 2.0)
    head = est.BinaryClassHead(weight_column=column, loss_reduction="sum")
    logits = np.zeros([2, 1], np.float32)
    loss = head.loss(np.array([0, 1]), logits, {"w": np.array([1.0, 0.0], np.float32)})
    assert float(loss) == pytest.approx(2.0 * np.log(2.0), rel=1e-5)
    with pytest.raises(ValueError, match="Invalid loss_reduction"):
        est.BinaryClassHead(loss_reduction=tf.losses.Reduction.NONE)
    with pytest.raises(ValueError, match="weight_column 'w' is not in features"):
        head.loss(np.array([0, 1]), logits, {"x": np.zeros([2], np.float32)})


def test_binary_thresholds_and_label_vocabulary():
    head = est.BinaryClassHead(thresholds=[0.3, 0.7], label_vocabulary=["no", "yes"])
    logits = np.array([[-1.0], [0.5], [2.0], [0.0]], np.float32)  # logistic .27 .62 .88 .5
    labels = np.array([["no"], ["yes"], ["no"], ["yes"]])
    metrics = results(head, logits, labels, features={})
    assert metrics["accuracy/positive_threshold_0.3"] == 0.75
    assert metrics["accuracy/positive_threshold_0.7"] == 0.25
    assert metrics["precision/positive_threshold_0.7"] == 0.0
    assert metrics["recall/positive_threshold_0.3"] == 1.0
    assert metrics["accuracy_baseline"] == 0.5
    classes = head.predictions(logits)[PredictionKeys.CLASSES].numpy()[:, 0].tolist()
    assert classes == [b"no", b"yes", b"yes", b"no"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="label_vocabulary"):
        head.loss(np.array([["maybe"]]), logits[:1])
    with pytest.raises(ValueError, match="label_vocabulary"):
        est.BinaryClassHead().loss(np.array([["no"]]), logits[:1])


def test_label_checks():
    head = est.MultiClassHead(3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Labels must be in"):
        head.loss(np.array([[3]]), np.zeros([1, 3], np.float32))
    with pytest.raises(ValueError, match="Labels dtype should be integer"):
        head.loss(np.array([[1.0]]), np.zeros([1, 3], np.float32))
    with pytest.raises(ValueError, match="logits shape"):
        head.loss(np.array([[1]]), np.zeros([1, 4], np.float32))
    with pytest.raises(ValueError, match="You must provide a labels Tensor"):
        head.loss(None, np.zeros([1, 3], np.float32))
    with pytest.raises(ValueError, match="n_classes must be > 2"):
        est.MultiClassHead(2)
    with pytest.raises(ValueError, match='does not have "n_classes" items'):
        est.MultiClassHead(3, label_vocabulary=["a", "b"])


def test_regularization_losses_join_the_loss_and_metrics():
    head = est.MultiClassHead(3)
    logits, labels = np.zeros([2, 3], np.float32), np.array([0, 1])
    plain = float(head.loss(labels, logits))
    assert float(head.loss(labels, logits, regularization_losses=[0.5])) == pytest.approx(
        plain + 0.5
    )
    metrics = head.update_metrics(head.metrics([0.5]), {}, logits, labels, [0.5])
    assert float(metrics[MetricKeys.LOSS_REGULARIZATION].result()) == 0.5


def test_custom_loss_fn_and_glm_heads():
    def loss_fn(labels, logits, features):
        return tf.abs(labels - logits) * features["scale"]

    head = est.RegressionHead(loss_fn=loss_fn)
    loss = head.loss(
        np.array([1.0, 2.0]), np.array([[0.0], [0.0]], np.float32), {"scale": np.ones([2, 1])}
    )
    assert float(loss) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="loss_fn has unexpected args"):
        est.RegressionHead(loss_fn=lambda labels, logits, mode: labels)
    poisson = est.PoissonRegressionHead()
    predictions = poisson.predictions(np.array([[0.0], [np.log(3.0)]], np.float32))
    np.testing.assert_allclose(predictions["predictions"].numpy()[:, 0], [1.0, 3.0], rtol=1e-6)
    assert sorted(predictions) == ["logits", "predictions"]
    logistic = est.LogisticRegressionHead()
    assert float(logistic.loss(np.array([1.0]), np.array([[0.0]], np.float32))) == pytest.approx(
        np.log(2.0)
    )


def test_export_outputs_per_head():
    def outputs(head, logits):
        spec = head.create_estimator_spec({}, est.ModeKeys.PREDICT, logits)
        return {k: type(v) for k, v in spec.export_outputs.items()}

    assert outputs(est.BinaryClassHead(), np.zeros([2, 1], np.float32)) == {
        "serving_default": ClassificationOutput,
        "classification": ClassificationOutput,
        "regression": RegressionOutput,
        "predict": PredictOutput,
    }
    for head, width in ((est.MultiClassHead(3), 3), (est.MultiLabelHead(3), 3)):
        assert outputs(head, np.zeros([2, width], np.float32)) == {
            "serving_default": ClassificationOutput,
            "classification": ClassificationOutput,
            "predict": PredictOutput,
        }
    assert outputs(est.RegressionHead(), np.zeros([2, 1], np.float32)) == {
        "serving_default": RegressionOutput,
        "regression": RegressionOutput,
        "predict": PredictOutput,
    }
    multi = est.MultiHead([est.MultiClassHead(3, name="a"), est.RegressionHead(name="b")])
    assert outputs(multi, np.zeros([2, 4], np.float32)) == {
        "serving_default": ClassificationOutput,
        "a": ClassificationOutput,
        "a/classification": ClassificationOutput,
        "a/predict": PredictOutput,
        "b": RegressionOutput,
        "b/regression": RegressionOutput,
        "b/predict": PredictOutput,
        "predict": PredictOutput,
    }


def test_train_spec_needs_exactly_one_of_optimizer_and_train_op_fn():
    import keras

    head = est.RegressionHead()
    args = ({}, est.ModeKeys.TRAIN, np.zeros([1, 1], np.float32), np.zeros([1]))
    with pytest.raises(ValueError, match="cannot both be None"):
        head.create_estimator_spec(*args)
    with pytest.raises(ValueError, match="cannot both be set"):
        head.create_estimator_spec(
            *args, optimizer=keras.optimizers.SGD(), train_op_fn=lambda loss: None
        )
    with pytest.raises(ValueError, match="not a Keras 3 optimizer"):
        head.create_estimator_spec(
            *args, optimizer=tf.compat.v1.train.GradientDescentOptimizer(0.1)
        )
    optimizer = keras.optimizers.SGD()
    assert head.create_estimator_spec(*args, optimizer=optimizer).train_op is optimizer
