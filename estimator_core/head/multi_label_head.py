"""MultiLabelHead: any subset of ``n_classes`` labels per example, sigmoid cross-entropy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.canned.prediction_keys import PredictionKeys
from estimator_core.export.outputs import PredictOutput
from estimator_core.head import base_head
from estimator_core.head.loss_fn import call_loss_fn, validate_loss_fn_args


class MultiLabelHead(base_head.Head):
    """A head for multi-label classification, as ``tf.estimator.MultiLabelHead``.

    Logits ``[D0, ..., DN, n_classes]``. Labels: a multi-hot integer tensor ``[D0, ..., DN,
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
        self._n_classes = n_classes
        self._thresholds = base_head.thresholds_of(thresholds)
        self._label_vocabulary = base_head.check_label_vocabulary(label_vocabulary, n_classes)
        self._loss_reduction = base_head.reduction_of(loss_reduction)
        if loss_fn:
            validate_loss_fn_args(loss_fn)
        if weight_column is not None:
            base_head.weight_column_key(weight_column)
        self._weight_column = weight_column
        self._loss_fn = loss_fn
        self._name = name
        self._class_ids = self._class_ids_of(classes_for_class_based_metrics or ())
        key = self._summary_key
        keys = MetricKeys
        self._loss_mean_key = key(keys.LOSS_MEAN)
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
        self._class_keys = []
        for class_id in self._class_ids:
            if self._label_vocabulary is None:
                names = (
                    keys.PROBABILITY_MEAN_AT_CLASS % class_id,
                    keys.AUC_AT_CLASS % class_id,
                    keys.AUC_PR_AT_CLASS % class_id,
                )
            else:
                class_name = self._label_vocabulary[class_id]
                names = (
                    keys.PROBABILITY_MEAN_AT_NAME % class_name,
                    keys.AUC_AT_NAME % class_name,
                    keys.AUC_PR_AT_NAME % class_name,
                )
            self._class_keys.append((class_id, *(key(n) for n in names)))

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
            else:
                if not 0 <= item < self._n_classes:
                    raise ValueError(
                        "All classes_for_class_based_metrics must be in range "
                        f"[0, {self._n_classes - 1}]. Given: {item}"
                    )
                ids.append(int(item))
        return tuple(ids)

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def logits_dimension(self) -> int:
        return self._n_classes

    @property
    def loss_reduction(self) -> str:
        return self._loss_reduction

    def _processed_labels(self, logits: tf.Tensor, labels: Any) -> tf.Tensor:
        """Multi-hot int64 ``[..., n_classes]``."""
        if labels is None:
            base_head.check_dense_labels_match_logits_and_reshape(labels, logits, self._n_classes)
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
                self._n_classes,
                f"labels must be an integer SparseTensor with values in [0, {self._n_classes})",
            )
            ids = tf.SparseTensor(labels.indices, values, labels.dense_shape)
            labels = tf.cast(tf.sparse.to_indicator(ids, self._n_classes), tf.int64)
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
        return base_head.check_dense_labels_match_logits_and_reshape(
            labels, logits, self._n_classes
        )

    def _unweighted_loss_and_weights(
        self, logits: tf.Tensor, labels: tf.Tensor, features: Mapping[str, Any] | None
    ) -> tuple[tf.Tensor, Any]:
        if self._loss_fn:
            unweighted = call_loss_fn(self._loss_fn, labels, logits, features, 1)
        else:
            per_class = tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(labels, tf.float32), logits=logits
            )
            unweighted = tf.reduce_mean(per_class, axis=-1, keepdims=True)
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
            logits = base_head.check_logits_final_dim(logits, self._n_classes)
            labels = self._processed_labels(logits, labels)
            unweighted, weights = self._unweighted_loss_and_weights(logits, labels, features)
            loss = base_head.compute_weighted_loss(unweighted, weights, self._loss_reduction)
            return base_head.add_regularization(loss, regularization_losses)

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        pred = PredictionKeys
        valid = [pred.LOGITS, pred.PROBABILITIES, pred.CLASSES]
        if keys:
            base_head.check_prediction_keys(keys, valid)
        keys = keys or valid
        logits = base_head.check_logits_final_dim(logits, self._n_classes)
        predictions: dict[str, Any] = {}
        with tf.name_scope("predictions"):
            if pred.LOGITS in keys:
                predictions[pred.LOGITS] = logits
            if pred.PROBABILITIES in keys:
                predictions[pred.PROBABILITIES] = tf.sigmoid(logits)
            if pred.CLASSES in keys:
                predictions[pred.CLASSES] = base_head.all_classes(
                    logits, self._n_classes, self._label_vocabulary
                )
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        keys = MetricKeys
        metrics: dict[str, Any] = {
            self._loss_mean_key: keras.metrics.Mean(name=keys.LOSS_MEAN),
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
        for _, prob_key, auc_key, auc_pr_key in self._class_keys:
            metrics[prob_key] = keras.metrics.Mean(name=prob_key)
            metrics[auc_key] = keras.metrics.AUC(name=auc_key)
            metrics[auc_pr_key] = keras.metrics.AUC(curve="PR", name=auc_pr_key)
        return metrics

    def update_metrics(
        self,
        eval_metrics: dict[str, Any],
        features: Mapping[str, Any],
        logits: Any,
        labels: Any,
        regularization_losses: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        logits = base_head.check_logits_final_dim(logits, self._n_classes)
        labels = self._processed_labels(logits, labels)
        unweighted, weights = self._unweighted_loss_and_weights(logits, labels, features)
        probabilities = tf.sigmoid(logits)
        example_weights = tf.broadcast_to(
            tf.convert_to_tensor(weights, tf.float32), tf.shape(unweighted)
        )
        base_head.update_mean(eval_metrics[self._loss_mean_key], unweighted, example_weights)
        class_weights = tf.broadcast_to(example_weights, tf.shape(probabilities))
        for key in (self._auc_key, self._auc_pr_key):
            eval_metrics[key].update_state(labels, probabilities, sample_weight=class_weights)
        base_head.update_regularization(
            eval_metrics, self._loss_regularization_key, regularization_losses
        )
        for _, accuracy, precision, recall in self._threshold_keys:
            for key in (accuracy, precision, recall):
                eval_metrics[key].update_state(labels, probabilities, sample_weight=class_weights)
        for class_id, prob_key, auc_key, auc_pr_key in self._class_keys:
            class_labels = labels[..., class_id : class_id + 1]
            class_probabilities = probabilities[..., class_id : class_id + 1]
            base_head.update_mean(eval_metrics[prob_key], class_probabilities, example_weights)
            for key in (auc_key, auc_pr_key):
                eval_metrics[key].update_state(
                    class_labels, class_probabilities, sample_weight=example_weights
                )
        return eval_metrics

    def _export_outputs(self, predictions: dict[str, Any]) -> dict[str, Any]:
        classifier = base_head.classification_output(
            predictions[PredictionKeys.PROBABILITIES], self._n_classes, self._label_vocabulary
        )
        return {
            base_head.DEFAULT_SERVING_KEY: classifier,
            base_head.CLASSIFY_SERVING_KEY: classifier,
            base_head.PREDICT_SERVING_KEY: PredictOutput(predictions),
        }
