"""MultiClassHead: one label among ``n_classes > 2`` classes, softmax cross-entropy."""

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


class MultiClassHead(base_head.Head):
    """A head for multi-class classification, as ``tf.estimator.MultiClassHead``.

    Logits ``[D0, ..., DN, n_classes]``; labels ``[D0, ..., DN, 1]`` (or without the last
    dimension): integer class ids in ``[0, n_classes)``, or strings of ``label_vocabulary``.
    The loss is the softmax cross-entropy of each example times its weight, reduced over the
    batch per ``loss_reduction``.

    Predictions: ``logits``, ``probabilities`` (softmax), ``class_ids`` (int64 ``[..., 1]``),
    ``classes`` (their names, string), ``all_class_ids`` (int32 ``[..., n_classes]``),
    ``all_classes`` (string). Metrics: ``accuracy``, ``average_loss`` (and
    ``regularization_loss`` with regularization losses). Export signatures:
    ``serving_default`` and ``classification`` (scores and every class name), ``predict``.
    """

    def __init__(
        self,
        n_classes: int,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        loss_reduction: str = base_head.SUM_OVER_BATCH_SIZE,
        loss_fn: Callable[..., Any] | None = None,
        name: str | None = None,
    ) -> None:
        if n_classes is None:
            raise ValueError("n_classes cannot be None")
        if not isinstance(n_classes, int) or n_classes <= 2:
            raise ValueError(f"n_classes must be > 2: {n_classes}.")
        self._n_classes = n_classes
        self._label_vocabulary = base_head.check_label_vocabulary(label_vocabulary, n_classes)
        self._loss_reduction = base_head.reduction_of(loss_reduction)
        if loss_fn:
            validate_loss_fn_args(loss_fn)
        if weight_column is not None:
            base_head.weight_column_key(weight_column)
        self._weight_column = weight_column
        self._loss_fn = loss_fn
        self._name = name
        self._loss_mean_key = self._summary_key(MetricKeys.LOSS_MEAN)
        self._accuracy_key = self._summary_key(MetricKeys.ACCURACY)
        self._loss_regularization_key = self._summary_key(MetricKeys.LOSS_REGULARIZATION)

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
        labels = base_head.check_dense_labels_match_logits_and_reshape(labels, logits, 1)
        if self._label_vocabulary is None:
            if not labels.dtype.is_integer:
                raise ValueError(
                    f"Labels dtype should be integer. Instead got {labels.dtype.name}"
                    + (
                        " (give label_vocabulary for string labels)"
                        if labels.dtype == tf.string
                        else ""
                    )
                )
            label_ids = tf.cast(labels, tf.int64)
        else:
            label_ids = base_head.label_ids_from_vocabulary(labels, self._label_vocabulary)
        return base_head.check_label_range(label_ids, self._n_classes)

    def _unweighted_loss_and_weights(
        self, logits: tf.Tensor, label_ids: tf.Tensor, features: Mapping[str, Any] | None
    ) -> tuple[tf.Tensor, Any]:
        if self._loss_fn:
            unweighted = call_loss_fn(self._loss_fn, label_ids, logits, features, 1)
        else:
            unweighted = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=label_ids[..., 0], logits=logits
            )[..., None]
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
            label_ids = self._processed_labels(logits, labels)
            unweighted, weights = self._unweighted_loss_and_weights(logits, label_ids, features)
            loss = base_head.compute_weighted_loss(unweighted, weights, self._loss_reduction)
            return base_head.add_regularization(loss, regularization_losses)

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        pred = PredictionKeys
        valid = [
            pred.LOGITS,
            pred.PROBABILITIES,
            pred.CLASS_IDS,
            pred.CLASSES,
            pred.ALL_CLASS_IDS,
            pred.ALL_CLASSES,
        ]
        if keys:
            base_head.check_prediction_keys(keys, valid)
        keys = keys or valid
        logits = base_head.check_logits_final_dim(logits, self._n_classes)
        predictions: dict[str, Any] = {}
        with tf.name_scope("predictions"):
            if pred.LOGITS in keys:
                predictions[pred.LOGITS] = logits
            if pred.PROBABILITIES in keys:
                predictions[pred.PROBABILITIES] = tf.nn.softmax(logits)
            if pred.CLASS_IDS in keys or pred.CLASSES in keys:
                class_ids = tf.argmax(logits, axis=-1)[..., None]
                if pred.CLASS_IDS in keys:
                    predictions[pred.CLASS_IDS] = class_ids
                if pred.CLASSES in keys:
                    predictions[pred.CLASSES] = base_head.class_names(
                        class_ids, self._label_vocabulary
                    )
            if pred.ALL_CLASS_IDS in keys:
                predictions[pred.ALL_CLASS_IDS] = base_head.all_class_ids(logits, self._n_classes)
            if pred.ALL_CLASSES in keys:
                predictions[pred.ALL_CLASSES] = base_head.all_classes(
                    logits, self._n_classes, self._label_vocabulary
                )
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            self._loss_mean_key: keras.metrics.Mean(name=MetricKeys.LOSS_MEAN)
        }
        base_head.regularization_metric(
            metrics, self._loss_regularization_key, regularization_losses
        )
        metrics[self._accuracy_key] = keras.metrics.Accuracy(name=MetricKeys.ACCURACY)
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
        class_ids = self.predictions(logits, [PredictionKeys.CLASS_IDS])[PredictionKeys.CLASS_IDS]
        label_ids = self._processed_labels(logits, labels)
        unweighted, weights = self._unweighted_loss_and_weights(logits, label_ids, features)
        weights = tf.broadcast_to(tf.convert_to_tensor(weights, tf.float32), tf.shape(unweighted))
        base_head.update_mean(eval_metrics[self._loss_mean_key], unweighted, weights)
        eval_metrics[self._accuracy_key].update_state(label_ids, class_ids, sample_weight=weights)
        base_head.update_regularization(
            eval_metrics, self._loss_regularization_key, regularization_losses
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
