"""BinaryClassHead: one label, two classes, sigmoid cross-entropy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.canned.prediction_keys import PredictionKeys
from estimator_core.export.outputs import PredictOutput, RegressionOutput
from estimator_core.head import base_head
from estimator_core.head.loss_fn import call_loss_fn, validate_loss_fn_args


class BinaryClassHead(base_head.Head):
    """A head for single-label binary classification, as ``tf.estimator.BinaryClassHead``.

    Logits ``[D0, ..., DN, 1]``; labels of the same shape (or without the last dimension):
    numbers in ``[0, 1]``, or strings of ``label_vocabulary`` (its first entry is class 0).
    The loss is the sigmoid cross-entropy of each example times its weight, reduced over the
    batch per ``loss_reduction`` (``SUM_OVER_BATCH_SIZE``: the mean over the batch).

    Predictions: ``logits``, ``logistic`` (sigmoid), ``probabilities`` (``[1 - p, p]``),
    ``class_ids`` (int64 ``[..., 1]``), ``classes`` (their names, string), ``all_class_ids``
    (int32 ``[..., 2]``), ``all_classes`` (string ``[..., 2]``). Metrics: ``accuracy``,
    ``accuracy_baseline``, ``auc``, ``auc_precision_recall``, ``average_loss``,
    ``label/mean``, ``precision``, ``prediction/mean``, ``recall``, and per threshold ``t`` of
    ``thresholds``: ``accuracy/positive_threshold_<t>``, ``precision/...``, ``recall/...``.
    Export signatures: ``serving_default`` and ``classification`` (scores and every class
    name), ``regression`` (the logistic), ``predict`` (every prediction).

    Args:
      weight_column: a feature name or a ``numeric_column``: each example's weight.
      thresholds: floats in (0, 1) for the per-threshold metrics.
      label_vocabulary: the two class names, when labels are strings.
      loss_reduction: a ``tf.losses.Reduction`` value (not NONE).
      loss_fn: ``loss_fn(labels, logits[, features])`` → ``[D0, ..., DN, 1]`` unweighted loss,
        given float labels (after the vocabulary).
      name: suffix of the metric keys (``accuracy/<name>``), and the head's name in a MultiHead.
    """

    def __init__(
        self,
        weight_column: Any = None,
        thresholds: Sequence[float] | None = None,
        label_vocabulary: Sequence[str] | None = None,
        loss_reduction: str = base_head.SUM_OVER_BATCH_SIZE,
        loss_fn: Callable[..., Any] | None = None,
        name: str | None = None,
    ) -> None:
        self._label_vocabulary = base_head.check_label_vocabulary(label_vocabulary, 2)
        self._thresholds = base_head.thresholds_of(thresholds)
        self._loss_reduction = base_head.reduction_of(loss_reduction)
        if loss_fn:
            validate_loss_fn_args(loss_fn)
        if weight_column is not None:
            base_head.weight_column_key(weight_column)
        self._weight_column = weight_column
        self._loss_fn = loss_fn
        self._name = name
        key = self._summary_key
        keys = MetricKeys
        self._loss_mean_key = key(keys.LOSS_MEAN)
        self._accuracy_key = key(keys.ACCURACY)
        self._precision_key = key(keys.PRECISION)
        self._recall_key = key(keys.RECALL)
        self._prediction_mean_key = key(keys.PREDICTION_MEAN)
        self._label_mean_key = key(keys.LABEL_MEAN)
        self._accuracy_baseline_key = key(keys.ACCURACY_BASELINE)
        self._auc_key = key(keys.AUC)
        self._auc_pr_key = key(keys.AUC_PR)
        self._loss_regularization_key = key(keys.LOSS_REGULARIZATION)
        self._threshold_keys = [
            (
                t,
                key(keys.ACCURACY_AT_THRESHOLD % t),
                key(keys.PRECISION_AT_THRESHOLD % t),
                key(keys.RECALL_AT_THRESHOLD % t),
            )
            for t in self._thresholds
        ]

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def logits_dimension(self) -> int:
        return 1

    @property
    def loss_reduction(self) -> str:
        return self._loss_reduction

    def _processed_labels(self, logits: tf.Tensor, labels: Any) -> tf.Tensor:
        labels = base_head.check_dense_labels_match_logits_and_reshape(labels, logits, 1)
        if self._label_vocabulary is not None:
            labels = base_head.label_ids_from_vocabulary(labels, self._label_vocabulary)
        elif labels.dtype == tf.string:
            raise ValueError(
                "Labels are strings but the head has no label_vocabulary; give "
                "label_vocabulary=[negative class, positive class]"
            )
        labels = tf.cast(labels, tf.float32)
        return base_head.check_label_range(labels, 2, "Labels must be in [0, 1]; got min/max:")

    def _unweighted_loss_and_weights(
        self, logits: tf.Tensor, labels: tf.Tensor, features: Mapping[str, Any] | None
    ) -> tuple[tf.Tensor, Any]:
        if self._loss_fn:
            unweighted = call_loss_fn(self._loss_fn, labels, logits, features, 1)
        else:
            unweighted = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        weights = base_head.get_weights_and_check_match_logits(
            features, self._weight_column, logits
        )
        return unweighted, weights

    def loss(
        self,
        labels: Any,
        logits: Any,
        features: Mapping[str, Any] | None = None,
        mode: str | None = None,
        regularization_losses: Sequence[Any] | None = None,
    ) -> tf.Tensor:
        del mode
        with tf.name_scope("losses"):
            logits = base_head.check_logits_final_dim(logits, 1)
            labels = self._processed_labels(logits, labels)
            unweighted, weights = self._unweighted_loss_and_weights(logits, labels, features)
            loss = base_head.compute_weighted_loss(unweighted, weights, self._loss_reduction)
            return base_head.add_regularization(loss, regularization_losses)

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        pred = PredictionKeys
        valid = [
            pred.LOGITS,
            pred.LOGISTIC,
            pred.PROBABILITIES,
            pred.CLASS_IDS,
            pred.CLASSES,
            pred.ALL_CLASS_IDS,
            pred.ALL_CLASSES,
        ]
        if keys:
            base_head.check_prediction_keys(keys, valid)
        keys = keys or valid
        logits = base_head.check_logits_final_dim(logits, 1)
        predictions: dict[str, Any] = {}
        with tf.name_scope("predictions"):
            if pred.LOGITS in keys:
                predictions[pred.LOGITS] = logits
            if pred.LOGISTIC in keys:
                predictions[pred.LOGISTIC] = tf.sigmoid(logits)
            two_class_logits = tf.concat([tf.zeros_like(logits), logits], axis=-1)
            if pred.PROBABILITIES in keys:
                predictions[pred.PROBABILITIES] = tf.nn.softmax(two_class_logits)
            if pred.CLASS_IDS in keys or pred.CLASSES in keys:
                class_ids = tf.argmax(two_class_logits, axis=-1)[..., None]
                if pred.CLASS_IDS in keys:
                    predictions[pred.CLASS_IDS] = class_ids
                if pred.CLASSES in keys:
                    predictions[pred.CLASSES] = base_head.class_names(
                        class_ids, self._label_vocabulary
                    )
            if pred.ALL_CLASS_IDS in keys:
                predictions[pred.ALL_CLASS_IDS] = base_head.all_class_ids(logits, 2)
            if pred.ALL_CLASSES in keys:
                predictions[pred.ALL_CLASSES] = base_head.all_classes(
                    logits, 2, self._label_vocabulary
                )
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        keys = MetricKeys
        metrics: dict[str, Any] = {
            self._loss_mean_key: keras.metrics.Mean(name=keys.LOSS_MEAN),
            self._accuracy_key: keras.metrics.Accuracy(name=keys.ACCURACY),
            self._precision_key: keras.metrics.Precision(name=keys.PRECISION),
            self._recall_key: keras.metrics.Recall(name=keys.RECALL),
            self._prediction_mean_key: keras.metrics.Mean(name=keys.PREDICTION_MEAN),
            self._label_mean_key: keras.metrics.Mean(name=keys.LABEL_MEAN),
            self._accuracy_baseline_key: AccuracyBaseline(name=keys.ACCURACY_BASELINE),
            self._auc_key: keras.metrics.AUC(name=keys.AUC),
            self._auc_pr_key: keras.metrics.AUC(curve="PR", name=keys.AUC_PR),
        }
        base_head.regularization_metric(
            metrics, self._loss_regularization_key, regularization_losses
        )
        for threshold, accuracy, precision, recall in self._threshold_keys:
            metrics[accuracy] = keras.metrics.BinaryAccuracy(name=accuracy, threshold=threshold)
            metrics[precision] = keras.metrics.Precision(name=precision, thresholds=threshold)
            metrics[recall] = keras.metrics.Recall(name=recall, thresholds=threshold)
        return metrics

    def update_metrics(
        self,
        eval_metrics: dict[str, Any],
        features: Mapping[str, Any],
        logits: Any,
        labels: Any,
        regularization_losses: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        logits = base_head.check_logits_final_dim(logits, 1)
        predictions = self.predictions(logits, [PredictionKeys.LOGISTIC, PredictionKeys.CLASS_IDS])
        class_ids = tf.cast(predictions[PredictionKeys.CLASS_IDS], tf.float32)
        logistic = predictions[PredictionKeys.LOGISTIC]
        labels = self._processed_labels(logits, labels)
        unweighted, weights = self._unweighted_loss_and_weights(logits, labels, features)
        weights = tf.broadcast_to(tf.convert_to_tensor(weights, tf.float32), tf.shape(labels))
        base_head.update_mean(eval_metrics[self._loss_mean_key], unweighted, weights)
        for key in (self._accuracy_key, self._precision_key, self._recall_key):
            eval_metrics[key].update_state(labels, class_ids, sample_weight=weights)
        base_head.update_mean(eval_metrics[self._prediction_mean_key], logistic, weights)
        base_head.update_mean(eval_metrics[self._label_mean_key], labels, weights)
        eval_metrics[self._accuracy_baseline_key].update_state(labels, sample_weight=weights)
        for key in (self._auc_key, self._auc_pr_key):
            eval_metrics[key].update_state(labels, logistic, sample_weight=weights)
        base_head.update_regularization(
            eval_metrics, self._loss_regularization_key, regularization_losses
        )
        for _, accuracy, precision, recall in self._threshold_keys:
            for key in (accuracy, precision, recall):
                eval_metrics[key].update_state(labels, logistic, sample_weight=weights)
        return eval_metrics

    def _export_outputs(self, predictions: dict[str, Any]) -> dict[str, Any]:
        classifier = base_head.classification_output(
            predictions[PredictionKeys.PROBABILITIES], 2, self._label_vocabulary
        )
        return {
            base_head.DEFAULT_SERVING_KEY: classifier,
            base_head.CLASSIFY_SERVING_KEY: classifier,
            base_head.REGRESS_SERVING_KEY: RegressionOutput(predictions[PredictionKeys.LOGISTIC]),
            base_head.PREDICT_SERVING_KEY: PredictOutput(predictions),
        }


class AccuracyBaseline(keras.metrics.Metric):
    """The accuracy of always predicting the more frequent class: ``max(m, 1 - m)`` for the
    weighted mean ``m`` of the 0/1 labels seen."""

    def __init__(self, name: str = MetricKeys.ACCURACY_BASELINE) -> None:
        super().__init__(name=name)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, labels: Any, sample_weight: Any = None) -> None:
        labels = tf.cast(labels, tf.float32)
        weights = tf.ones_like(labels) if sample_weight is None else sample_weight
        weights = tf.broadcast_to(tf.cast(weights, tf.float32), tf.shape(labels))
        self.total.assign_add(tf.reduce_sum(labels * weights))
        self.count.assign_add(tf.reduce_sum(weights))

    def result(self) -> tf.Tensor:
        mean = tf.math.divide_no_nan(self.total, self.count)
        return tf.maximum(mean, 1.0 - mean)
