"""MultiClassHead: one label among ``n_classes > 2`` classes, softmax cross-entropy."""

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
    add_class_predictions,
    classifier_export_outputs,
    selected_keys,
)

_VALID_KEYS = (
    PredictionKeys.LOGITS,
    PredictionKeys.PROBABILITIES,
    PredictionKeys.CLASS_IDS,
    PredictionKeys.CLASSES,
    PredictionKeys.ALL_CLASS_IDS,
    PredictionKeys.ALL_CLASSES,
)


class MultiClassHead(SingleHead):
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
    Other arguments as :class:`estimator_core.head.BinaryClassHead`.
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
        super().__init__(n_classes, weight_column, loss_reduction, loss_fn, name)
        self._label_vocabulary = base_head.check_label_vocabulary(label_vocabulary, n_classes)
        self._accuracy_key = self._summary_key(MetricKeys.ACCURACY)

    def _processed_labels(self, logits: tf.Tensor, labels: Any) -> tf.Tensor:
        labels = base_head.check_dense_labels_match_logits_and_reshape(labels, logits, 1)
        if self._label_vocabulary is None:
            if not labels.dtype.is_integer:
                hint = (
                    " (give label_vocabulary for string labels)"
                    if labels.dtype == tf.string
                    else ""
                )
                raise ValueError(
                    f"Labels dtype should be integer. Instead got {labels.dtype.name}{hint}"
                )
            label_ids = tf.cast(labels, tf.int64)
        else:
            label_ids = base_head.label_ids_from_vocabulary(labels, self._label_vocabulary)
        return base_head.check_label_range(label_ids, self._logits_dimension)

    def _default_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels[..., 0], logits=logits)[
            ..., None
        ]

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        keys = selected_keys(keys, _VALID_KEYS)
        logits = base_head.check_logits_final_dim(logits, self._logits_dimension)
        predictions: dict[str, Any] = {}
        with tf.name_scope("predictions"):
            if PredictionKeys.LOGITS in keys:
                predictions[PredictionKeys.LOGITS] = logits
            if PredictionKeys.PROBABILITIES in keys:
                predictions[PredictionKeys.PROBABILITIES] = tf.nn.softmax(logits)
            add_class_predictions(
                predictions, keys, logits, self._logits_dimension, self._label_vocabulary
            )
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        metrics = self._base_metrics(regularization_losses)
        metrics[self._accuracy_key] = keras.metrics.Accuracy(name=MetricKeys.ACCURACY)
        return metrics

    def _update_head_metrics(self, eval_metrics: dict[str, Any], parts: LossParts) -> None:
        class_ids = self.predictions(parts.logits, [PredictionKeys.CLASS_IDS])
        weights = tf.broadcast_to(
            tf.convert_to_tensor(parts.weights, tf.float32), tf.shape(parts.unweighted)
        )
        eval_metrics[self._accuracy_key].update_state(
            parts.labels, class_ids[PredictionKeys.CLASS_IDS], sample_weight=weights
        )

    def _export_outputs(self, predictions: dict[str, Any]) -> dict[str, Any]:
        return classifier_export_outputs(
            predictions, self._logits_dimension, self._label_vocabulary
        )
