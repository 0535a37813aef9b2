"""What the heads of one label share: their arguments, the loss pipeline, threshold metrics
and the classifiers' predictions and export outputs."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.canned.prediction_keys import PredictionKeys
from estimator_core.export.outputs import ExportOutput, PredictOutput
from estimator_core.head import base_head
from estimator_core.head.loss_fn import call_loss_fn, validate_loss_fn_args


class LossParts(NamedTuple):
    """A batch's loss before reduction: the checked logits and labels, each example's (or
    value's) unweighted loss, and the weights (``1.0`` without a weight column)."""

    logits: tf.Tensor
    labels: tf.Tensor
    unweighted: tf.Tensor
    weights: Any


class SingleHead(base_head.Head):
    """A head of one label (binary, multi-class, multi-label, regression).

    Subclasses give :meth:`_processed_labels` (labels checked and converted for the loss) and
    :meth:`_default_loss` (the unweighted loss without a ``loss_fn``); the loss pipeline is
    here: logits checked → labels processed → unweighted loss (``loss_fn`` or the default)
    and weights → reduced per ``loss_reduction`` → regularization added.
    """

    _loss_dimension = 1  # last dimension of the unweighted loss
    _per_logit_weights = False

    def __init__(
        self,
        logits_dimension: int,
        weight_column: Any,
        loss_reduction: str,
        loss_fn: Callable[..., Any] | None,
        name: str | None,
    ) -> None:
        self._logits_dimension = logits_dimension
        self._loss_reduction = base_head.reduction_of(loss_reduction)
        if loss_fn:
            validate_loss_fn_args(loss_fn)
        if weight_column is not None:
            base_head.weight_column_key(weight_column)
        self._weight_column = weight_column
        self._loss_fn = loss_fn
        self._name = name
        self._loss_mean_key = self._summary_key(MetricKeys.LOSS_MEAN)
        self._loss_regularization_key = self._summary_key(MetricKeys.LOSS_REGULARIZATION)

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def logits_dimension(self) -> int:
        return self._logits_dimension

    @property
    def loss_reduction(self) -> str:
        return self._loss_reduction

    @abc.abstractmethod
    def _processed_labels(self, logits: tf.Tensor, labels: Any) -> tf.Tensor:
        """``labels`` checked against ``logits`` and converted to what the loss takes."""

    @abc.abstractmethod
    def _default_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """The unweighted loss ``[D0, ..., DN, loss dimension]`` without a ``loss_fn``."""

    def _loss_parts(
        self, logits: Any, labels: Any, features: Mapping[str, Any] | None
    ) -> LossParts:
        logits = base_head.check_logits_final_dim(logits, self._logits_dimension)
        labels = self._processed_labels(logits, labels)
        if self._loss_fn:
            unweighted = call_loss_fn(self._loss_fn, labels, logits, features, self._loss_dimension)
        else:
            unweighted = self._default_loss(labels, logits)
        weights = base_head.get_weights_and_check_match_logits(
            features, self._weight_column, logits, allow_per_logit_weights=self._per_logit_weights
        )
        return LossParts(logits, labels, unweighted, weights)

    @abc.abstractmethod
    def _update_head_metrics(self, eval_metrics: dict[str, Any], parts: LossParts) -> None:
        """Update the head's own metrics (beyond ``average_loss``) with this batch."""

    def _reduced_loss(
        self, parts: LossParts, regularization_losses: Sequence[Any] | None
    ) -> tf.Tensor:
        loss = base_head.compute_weighted_loss(
            parts.unweighted, parts.weights, self._loss_reduction
        )
        return base_head.add_regularization(loss, regularization_losses)

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
            return self._reduced_loss(
                self._loss_parts(logits, labels, features), regularization_losses
            )

    def update_metrics(
        self,
        eval_metrics: dict[str, Any],
        features: Mapping[str, Any],
        logits: Any,
        labels: Any,
        regularization_losses: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        parts = self._loss_parts(logits, labels, features)
        self._update_base_metrics(eval_metrics, parts, regularization_losses)
        self._update_head_metrics(eval_metrics, parts)
        return eval_metrics

    def _eval_loss_and_metrics(
        self,
        features: Mapping[str, Any],
        logits: Any,
        labels: Any,
        regularization_losses: Sequence[Any] | None,
    ) -> tuple[tf.Tensor, dict[str, Any]]:
        # The labels are processed once for both (each trace of the eval step builds them).
        with tf.name_scope("losses"):
            parts = self._loss_parts(logits, labels, features)
            loss = self._reduced_loss(parts, regularization_losses)
        metrics = self.metrics(regularization_losses)
        self._update_base_metrics(metrics, parts, regularization_losses)
        self._update_head_metrics(metrics, parts)
        return loss, metrics

    def _base_metrics(self, regularization_losses: Sequence[Any] | None) -> dict[str, Any]:
        """``average_loss`` (and ``regularization_loss``), new."""
        metrics: dict[str, Any] = {
            self._loss_mean_key: keras.metrics.Mean(name=MetricKeys.LOSS_MEAN)
        }
        base_head.regularization_metric(
            metrics, self._loss_regularization_key, regularization_losses
        )
        return metrics

    def _update_base_metrics(
        self,
        eval_metrics: dict[str, Any],
        parts: LossParts,
        regularization_losses: Sequence[Any] | None,
    ) -> None:
        base_head.update_mean(eval_metrics[self._loss_mean_key], parts.unweighted, parts.weights)
        base_head.update_regularization(
            eval_metrics, self._loss_regularization_key, regularization_losses
        )


class ThresholdMetrics:
    """``accuracy/positive_threshold_<t>``, ``precision/...`` and ``recall/...`` for each
    threshold ``t`` in (0, 1), over probabilities (binary and multi-label heads)."""

    def __init__(self, thresholds: Any, summary_key: Callable[[str], str]) -> None:
        self.thresholds = base_head.thresholds_of(thresholds)
        keys = MetricKeys
        self._keys = [
            (
                t,
                summary_key(keys.ACCURACY_AT_THRESHOLD % t),
                summary_key(keys.PRECISION_AT_THRESHOLD % t),
                summary_key(keys.RECALL_AT_THRESHOLD % t),
            )
            for t in self.thresholds
        ]

    def add_to(self, metrics: dict[str, Any]) -> None:
        for threshold, accuracy, precision, recall in self._keys:
            metrics[accuracy] = keras.metrics.BinaryAccuracy(name=accuracy, threshold=threshold)
            metrics[precision] = keras.metrics.Precision(name=precision, thresholds=threshold)
            metrics[recall] = keras.metrics.Recall(name=recall, thresholds=threshold)

    def update(
        self, metrics: dict[str, Any], labels: tf.Tensor, probabilities: tf.Tensor, weights: Any
    ) -> None:
        for _, *keys in self._keys:
            for key in keys:
                metrics[key].update_state(labels, probabilities, sample_weight=weights)


def add_class_predictions(
    predictions: dict[str, Any],
    keys: Sequence[str],
    class_logits: tf.Tensor,
    n_classes: int,
    label_vocabulary: Sequence[str] | None,
) -> None:
    """Add the requested ``class_ids`` (int64 ``[..., 1]``, the argmax of ``class_logits``),
    ``classes`` (their names), ``all_class_ids`` (int32) and ``all_classes`` (string)."""
    pred = PredictionKeys
    if pred.CLASS_IDS in keys or pred.CLASSES in keys:
        class_ids = tf.argmax(class_logits, axis=-1)[..., None]
        if pred.CLASS_IDS in keys:
            predictions[pred.CLASS_IDS] = class_ids
        if pred.CLASSES in keys:
            predictions[pred.CLASSES] = base_head.class_names(class_ids, label_vocabulary)
    if pred.ALL_CLASS_IDS in keys:
        predictions[pred.ALL_CLASS_IDS] = base_head.all_class_ids(class_logits, n_classes)
    if pred.ALL_CLASSES in keys:
        predictions[pred.ALL_CLASSES] = base_head.all_classes(
            class_logits, n_classes, label_vocabulary
        )


def classifier_export_outputs(
    predictions: dict[str, Any],
    n_classes: int,
    label_vocabulary: Sequence[str] | None,
    **more: ExportOutput,
) -> dict[str, ExportOutput]:
    """``serving_default`` and ``classification`` (probabilities and every class name),
    ``predict`` (every prediction), and ``more``."""
    classifier = base_head.classification_output(
        predictions[PredictionKeys.PROBABILITIES], n_classes, label_vocabulary
    )
    return {
        base_head.DEFAULT_SERVING_KEY: classifier,
        base_head.CLASSIFY_SERVING_KEY: classifier,
        **more,
        base_head.PREDICT_SERVING_KEY: PredictOutput(predictions),
    }


def selected_keys(keys: Sequence[str] | None, valid: Sequence[str]) -> Sequence[str]:
    """``keys`` checked against ``valid``, or every valid key."""
    if keys:
        base_head.check_prediction_keys(keys, valid)
        return keys
    return valid
