"""BinaryClassHead: one label, two classes, sigmoid cross-entropy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.canned.prediction_keys import PredictionKeys
from estimator_core.export.outputs import RegressionOutput
from estimator_core.head import base_head
from estimator_core.head.single_head import (
    LossParts,
    SingleHead,
    ThresholdMetrics,
    add_class_predictions,
    classifier_export_outputs,
    selected_keys,
)

_VALID_KEYS = (
    PredictionKeys.LOGITS,
    PredictionKeys.LOGISTIC,
    PredictionKeys.PROBABILITIES,
    PredictionKeys.CLASS_IDS,
    PredictionKeys.CLASSES,
    PredictionKeys.ALL_CLASS_IDS,
    PredictionKeys.ALL_CLASSES,
)


class BinaryClassHead(SingleHead):
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
        super().__init__(1, weight_column, loss_reduction, loss_fn, name)
        self._label_vocabulary = base_head.check_label_vocabulary(label_vocabulary, 2)
        self._thresholds = ThresholdMetrics(thresholds, self._summary_key)
        key = self._summary_key
        keys = MetricKeys
        self._accuracy_key = key(keys.ACCURACY)
        self._precision_key = key(keys.PRECISION)
        self._recall_key = key(keys.RECALL)
        self._prediction_mean_key = key(keys.PREDICTION_MEAN)
        self._label_mean_key = key(keys.LABEL_MEAN)
        self._accuracy_baseline_key = key(keys.ACCURACY_BASELINE)
        self._auc_key = key(keys.AUC)
        self._auc_pr_key = key(keys.AUC_PR)

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

    def _default_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        keys = selected_keys(keys, _VALID_KEYS)
        logits = base_head.check_logits_final_dim(logits, 1)
        predictions: dict[str, Any] = {}
        with tf.name_scope("predictions"):
            if PredictionKeys.LOGITS in keys:
                predictions[PredictionKeys.LOGITS] = logits
            if PredictionKeys.LOGISTIC in keys:
                predictions[PredictionKeys.LOGISTIC] = tf.sigmoid(logits)
            two_class_logits = tf.concat([tf.zeros_like(logits), logits], axis=-1)
            if PredictionKeys.PROBABILITIES in keys:
                predictions[PredictionKeys.PROBABILITIES] = tf.nn.softmax(two_class_logits)
            add_class_predictions(predictions, keys, two_class_logits, 2, self._label_vocabulary)
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        keys = MetricKeys
        metrics = self._base_metrics(regularization_losses)
        metrics.update(
            {
                self._accuracy_key: keras.metrics.Accuracy(name=keys.ACCURACY),
                self._precision_key: keras.metrics.Precision(name=keys.PRECISION),
                self._recall_key: keras.metrics.Recall(name=keys.RECALL),
                self._prediction_mean_key: keras.metrics.Mean(name=keys.PREDICTION_MEAN),
                self._label_mean_key: keras.metrics.Mean(name=keys.LABEL_MEAN),
                self._accuracy_baseline_key: AccuracyBaseline(name=keys.ACCURACY_BASELINE),
                self._auc_key: keras.metrics.AUC(name=keys.AUC),
                self._auc_pr_key: keras.metrics.AUC(curve="PR", name=keys.AUC_PR),
            }
        )
        self._thresholds.add_to(metrics)
        return metrics

    def _update_head_metrics(self, eval_metrics: dict[str, Any], parts: LossParts) -> None:
        predictions = self.predictions(
            parts.logits, [PredictionKeys.LOGISTIC, PredictionKeys.CLASS_IDS]
        )
        class_ids = tf.cast(predictions[PredictionKeys.CLASS_IDS], tf.float32)
        logistic = predictions[PredictionKeys.LOGISTIC]
        labels = parts.labels
        weights = tf.broadcast_to(tf.convert_to_tensor(parts.weights, tf.float32), tf.shape(labels))
        for key in (self._accuracy_key, self._precision_key, self._recall_key):
            eval_metrics[key].update_state(labels, class_ids, sample_weight=weights)
        base_head.update_mean(eval_metrics[self._prediction_mean_key], logistic, weights)
        base_head.update_mean(eval_metrics[self._label_mean_key], labels, weights)
        eval_metrics[self._accuracy_baseline_key].update_state(labels, sample_weight=weights)
        for key in (self._auc_key, self._auc_pr_key):
            eval_metrics[key].update_state(labels, logistic, sample_weight=weights)
        self._thresholds.update(eval_metrics, labels, logistic, weights)

    def _export_outputs(self, predictions: dict[str, Any]) -> dict[str, Any]:
        regression = RegressionOutput(predictions[PredictionKeys.LOGISTIC])
        return classifier_export_outputs(
            predictions, 2, self._label_vocabulary, **{base_head.REGRESS_SERVING_KEY: regression}
        )


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
