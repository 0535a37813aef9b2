"""RegressionHead (squared error) and its generalized-linear variants: PoissonRegressionHead,
LogisticRegressionHead."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.canned.prediction_keys import PredictionKeys
from estimator_core.export.outputs import PredictOutput, RegressionOutput
from estimator_core.head import base_head
from estimator_core.head.single_head import LossParts, SingleHead


class RegressionHead(SingleHead):
    """A head for regression, as ``tf.estimator.RegressionHead``.

    Logits and labels ``[D0, ..., DN, label_dimension]`` (labels may lack the last dimension
    when it is 1); labels are cast to float32. The loss is the squared error (or ``loss_fn``)
    of every value times its weight, reduced per ``loss_reduction`` (``SUM_OVER_BATCH_SIZE``
    divides by ``batch * label_dimension``). Weights may be ``[..., 1]`` or
    ``[..., label_dimension]``.

    Predictions: ``predictions`` (``inverse_link_fn(logits)``, or the logits), and ``logits``
    when there is an ``inverse_link_fn``. Metrics: ``average_loss``, ``label/mean``,
    ``prediction/mean``. Export signatures: ``serving_default`` and ``regression`` (the
    predictions), ``predict``.
    """

    _per_logit_weights = True

    def __init__(
        self,
        label_dimension: int = 1,
        weight_column: Any = None,
        loss_reduction: str = base_head.SUM_OVER_BATCH_SIZE,
        loss_fn: Callable[..., Any] | None = None,
        inverse_link_fn: Callable[[tf.Tensor], tf.Tensor] | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(label_dimension, int) or label_dimension < 1:
            raise ValueError(f"Invalid label_dimension {label_dimension}.")
        super().__init__(label_dimension, weight_column, loss_reduction, loss_fn, name)
        self._loss_dimension = label_dimension
        self._inverse_link_fn = inverse_link_fn
        self._prediction_mean_key = self._summary_key(MetricKeys.PREDICTION_MEAN)
        self._label_mean_key = self._summary_key(MetricKeys.LABEL_MEAN)

    def _processed_labels(self, logits: tf.Tensor, labels: Any) -> tf.Tensor:
        labels = base_head.check_dense_labels_match_logits_and_reshape(
            labels, logits, self._logits_dimension
        )
        if labels.dtype == tf.string:
            raise ValueError("Regression labels must be numbers, got strings")
        return tf.cast(labels, tf.float32)

    def _default_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return tf.math.squared_difference(labels, logits)

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        logits = base_head.check_logits_final_dim(logits, self._logits_dimension)
        with tf.name_scope("predictions"):
            if self._inverse_link_fn is None:
                predictions = {PredictionKeys.PREDICTIONS: logits}
            else:
                predictions = {
                    PredictionKeys.PREDICTIONS: self._inverse_link_fn(logits),
                    PredictionKeys.LOGITS: logits,
                }
        if keys:
            base_head.check_prediction_keys(keys, list(predictions))
            predictions = {k: predictions[k] for k in keys}
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        metrics = self._base_metrics(regularization_losses)
        metrics[self._prediction_mean_key] = keras.metrics.Mean(name=MetricKeys.PREDICTION_MEAN)
        metrics[self._label_mean_key] = keras.metrics.Mean(name=MetricKeys.LABEL_MEAN)
        return metrics

    def _update_head_metrics(self, eval_metrics: dict[str, Any], parts: LossParts) -> None:
        predicted = self.predictions(parts.logits)[PredictionKeys.PREDICTIONS]
        base_head.update_mean(eval_metrics[self._label_mean_key], parts.labels, parts.weights)
        base_head.update_mean(eval_metrics[self._prediction_mean_key], predicted, parts.weights)

    def _export_outputs(self, predictions: dict[str, Any]) -> dict[str, Any]:
        regression = RegressionOutput(predictions[PredictionKeys.PREDICTIONS])
        return {
            base_head.DEFAULT_SERVING_KEY: regression,
            base_head.REGRESS_SERVING_KEY: regression,
            base_head.PREDICT_SERVING_KEY: PredictOutput(predictions),
        }


class PoissonRegressionHead(RegressionHead):
    """Poisson regression (``tf.nn.log_poisson_loss`` on log-rate logits; predictions are
    ``exp(logits)``), as ``tf.estimator.PoissonRegressionHead``."""

    def __init__(
        self,
        label_dimension: int = 1,
        weight_column: Any = None,
        loss_reduction: str = base_head.SUM_OVER_BATCH_SIZE,
        compute_full_loss: bool = True,
        name: str | None = None,
    ) -> None:
        self._compute_full_loss = compute_full_loss
        super().__init__(
            label_dimension=label_dimension,
            weight_column=weight_column,
            loss_reduction=loss_reduction,
            loss_fn=self._poisson_loss,
            inverse_link_fn=tf.math.exp,
            name=name,
        )

    def _poisson_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return tf.nn.log_poisson_loss(
            targets=labels, log_input=logits, compute_full_loss=self._compute_full_loss
        )


class LogisticRegressionHead(RegressionHead):
    """Logistic regression on labels in [0, 1] (sigmoid cross-entropy; predictions are
    ``sigmoid(logits)``), as ``tf.estimator.LogisticRegressionHead``."""

    def __init__(
        self,
        weight_column: Any = None,
        loss_reduction: str = base_head.SUM_OVER_BATCH_SIZE,
        name: str | None = None,
    ) -> None:
        super().__init__(
            label_dimension=1,
            weight_column=weight_column,
            loss_reduction=loss_reduction,
            loss_fn=self._logistic_loss,
            inverse_link_fn=tf.math.sigmoid,
            name=name,
        )

    def _logistic_loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        labels = base_head.check_label_range(labels, 2, "Labels must be in [0, 1]; got min/max:")
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
