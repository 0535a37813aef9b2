"""MultiLabelHead: any subset of ``n_classes`` labels per example, sigmoid cross-entropy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.canned.prediction_keys import PredictionKeys
from estimator_core.head import base_head
from estimator_core.head.single_head import (
    LossParts,
    SingleHead,
    ThresholdMetrics,
    classifier_export_outputs,
    selected_keys,
)

_VALID_KEYS = (PredictionKeys.LOGITS, PredictionKeys.PROBABILITIES, PredictionKeys.CLASSES)


class MultiLabelHead(SingleHead):
    """A head for multi-label classification, as ``tf.estimator.MultiLabelHead``.

    Logits ``[D0, ..., DN, n_classes]``. Labels: a multi-hot tensor ``[D0, ..., DN,
    n_classes]`` of 0/1, or a ``tf.SparseTensor`` of class ids (integers in ``[0, n_classes)``,
    or strings of ``label_vocabulary``) per example. The loss is the sigmoid cross-entropy
    averaged over the classes, times the example's weight, reduced over the batch per
    ``loss_reduction``.

    Predictions: ``logits``, ``probabilities`` (sigmoid per class), ``classes`` (string
    ``[..., n_classes]``, every class name). Metrics: ``average_loss``, ``auc``,
    ``auc_precision_recall``; per threshold ``t``: ``accuracy/positive_threshold_<t>``,
    ``precision/...``, ``recall/...``; per class ``c`` of ``classes_for_class_based_metrics``
    (ids, or names with a vocabulary): ``probability_mean/class<c>``, ``auc/class<c>``,
    ``auc_precision_recall/class<c>`` (``.../<name>`` with a vocabulary). Export signatures:
    ``serving_default`` and ``classification``, ``predict``.
    """

    def __init__(
        self,
        n_classes: int,
        weight_column: Any = None,
        thresholds: Sequence[float] | None = None,
        label_vocabulary: Sequence[str] | None = None,
        loss_reduction: str = base_head.SUM_OVER_BATCH_SIZE,
        loss_fn: Callable[..., Any] | None = None,
        classes_for_class_based_metrics: Sequence[int | str] | None = None,
        name: str | None = None,
    ) -> None:
        if n_classes is None or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(
                f"n_classes must be > 1 for multi-label classification. Given: {n_classes}"
            )
        super().__init__(n_classes, weight_column, loss_reduction, loss_fn, name)
        self._label_vocabulary = base_head.check_label_vocabulary(label_vocabulary, n_classes)
        self._thresholds = ThresholdMetrics(thresholds, self._summary_key)
        key = self._summary_key
        self._auc_key = key(MetricKeys.AUC)
        self._auc_pr_key = key(MetricKeys.AUC_PR)
        self._class_keys = [
            (class_id, *(key(k) for k in self._class_metric_keys(class_id)))
            for class_id in self._class_ids_of(classes_for_class_based_metrics or ())
        ]

    def _class_ids_of(self, classes: Sequence[int | str]) -> tuple[int, ...]:
        ids = []
        for item in classes:
            if isinstance(item, str):
                if not self._label_vocabulary:
                    raise ValueError(
                        "label_vocabulary must be provided when classes_for_class_based_metrics "
                        "are strings."
                    )
                if item not in self._label_vocabulary:
                    raise ValueError(f"class {item!r} is not in label_vocabulary")
                ids.append(self._label_vocabulary.index(item))
            elif not 0 <= item < self._logits_dimension:
                raise ValueError(
                    "All classes_for_class_based_metrics must be in range "
                    f"[0, {self._logits_dimension - 1}]. Given: {item}"
                )
            else:
                ids.append(int(item))
        return tuple(ids)

    def _class_metric_keys(self, class_id: int) -> tuple[str, str, str]:
        keys = MetricKeys
        if self._label_vocabulary is None:
            return (
                keys.PROBABILITY_MEAN_AT_CLASS % class_id,
                keys.AUC_AT_CLASS % class_id,
                keys.AUC_PR_AT_CLASS % class_id,
            )
        name = self._label_vocabulary[class_id]
        return (
            keys.PROBABILITY_MEAN_AT_NAME % name,
            keys.AUC_AT_NAME % name,
            keys.AUC_PR_AT_NAME % name,
        )

    def _processed_labels(self, logits: tf.Tensor, labels: Any) -> tf.Tensor:
        """Multi-hot int64 ``[..., n_classes]``."""
        n_classes = self._logits_dimension
        if labels is None:
            base_head.check_dense_labels_match_logits_and_reshape(labels, logits, n_classes)
        if isinstance(labels, tf.compat.v1.SparseTensorValue):
            labels = tf.SparseTensor.from_value(labels)
        if isinstance(labels, tf.SparseTensor):
            values = labels.values
            if values.dtype == tf.string:
                if self._label_vocabulary is None:
                    raise ValueError("string SparseTensor labels need a label_vocabulary")
                values = base_head.label_ids_from_vocabulary(values, self._label_vocabulary)
            elif not values.dtype.is_integer:
                raise ValueError(
                    f"Labels dtype should be integer. Instead got {values.dtype.name}."
                )
            values = base_head.check_label_range(
                tf.cast(values, tf.int64),
                n_classes,
                f"labels must be an integer SparseTensor with values in [0, {n_classes})",
            )
            ids = tf.SparseTensor(labels.indices, values, labels.dense_shape)
            labels = tf.cast(tf.sparse.to_indicator(ids, n_classes), tf.int64)
        else:
            labels = tf.convert_to_tensor(labels)
            if labels.dtype == tf.string:
                raise ValueError(
                    "dense multi-label labels must be a multi-hot tensor of 0/1; for class "
                    "names pass a SparseTensor of them and label_vocabulary"
                )
            labels = base_head.check_label_range(
                labels, 2, "labels must be an integer indicator Tensor with values in [0, 1]"
            )
        return base_head.check_dense_labels_match_logits_and_reshape(labels, logits, n_classes)

    def _default_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        per_class = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.float32), logits=logits
        )
        return tf.reduce_mean(per_class, axis=-1, keepdims=True)

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        keys = selected_keys(keys, _VALID_KEYS)
        logits = base_head.check_logits_final_dim(logits, self._logits_dimension)
        predictions: dict[str, Any] = {}
        with tf.name_scope("predictions"):
            if PredictionKeys.LOGITS in keys:
                predictions[PredictionKeys.LOGITS] = logits
            if PredictionKeys.PROBABILITIES in keys:
                predictions[PredictionKeys.PROBABILITIES] = tf.sigmoid(logits)
            if PredictionKeys.CLASSES in keys:
                predictions[PredictionKeys.CLASSES] = base_head.all_classes(
                    logits, self._logits_dimension, self._label_vocabulary
                )
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        metrics = self._base_metrics(regularization_losses)
        metrics[self._auc_key] = keras.metrics.AUC(name=MetricKeys.AUC)
        metrics[self._auc_pr_key] = keras.metrics.AUC(curve="PR", name=MetricKeys.AUC_PR)
        self._thresholds.add_to(metrics)
        for _, prob_key, auc_key, auc_pr_key in self._class_keys:
            metrics[prob_key] = keras.metrics.Mean(name=prob_key)
            metrics[auc_key] = keras.metrics.AUC(name=auc_key)
            metrics[auc_pr_key] = keras.metrics.AUC(curve="PR", name=auc_pr_key)
        return metrics

    def _update_head_metrics(self, eval_metrics: dict[str, Any], parts: LossParts) -> None:
        labels, probabilities = parts.labels, tf.sigmoid(parts.logits)
        example_weights = tf.broadcast_to(
            tf.convert_to_tensor(parts.weights, tf.float32), tf.shape(parts.unweighted)
        )
        class_weights = tf.broadcast_to(example_weights, tf.shape(probabilities))
        for key in (self._auc_key, self._auc_pr_key):
            eval_metrics[key].update_state(labels, probabilities, sample_weight=class_weights)
        self._thresholds.update(eval_metrics, labels, probabilities, class_weights)
        for class_id, prob_key, auc_key, auc_pr_key in self._class_keys:
            class_labels = labels[..., class_id : class_id + 1]
            class_probabilities = probabilities[..., class_id : class_id + 1]
            base_head.update_mean(eval_metrics[prob_key], class_probabilities, example_weights)
            for key in (auc_key, auc_pr_key):
                eval_metrics[key].update_state(
                    class_labels, class_probabilities, sample_weight=example_weights
                )

    def _export_outputs(self, predictions: dict[str, Any]) -> dict[str, Any]:
        return classifier_export_outputs(
            predictions, self._logits_dimension, self._label_vocabulary
        )
