"""MultiHead: several named heads on one logits tensor, their losses summed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.export.outputs import PredictOutput
from estimator_core.head import base_head
from estimator_core.mode_keys import ModeKeys
from estimator_core.spec import EstimatorSpec


class MultiHead(base_head.Head):
    """Several heads trained together, as ``tf.estimator.MultiHead``.

    Every head needs a ``name``. ``logits``: a dict of head name → logits, or one tensor whose
    last dimension (the sum of the heads' ``logits_dimension``, in order) is split among the
    heads. ``labels``: a dict of head name → labels. The loss is the sum of the heads' losses,
    each times its ``head_weights`` entry (1 without them), plus the regularization losses.

    Predictions (PREDICT mode): ``{(head name, key): value}`` for every head's predictions.
    Metrics: every head's own (their keys end in ``/<head name>``) and ``loss/<head name>``.
    Export signatures: ``serving_default`` (the first head's), ``<head name>`` (each head's
    default), ``<head name>/<signature>`` for each head's other signatures, and ``predict``
    (every prediction as ``<head name>/<key>``).

    TRAIN and EVAL specs carry no predictions, as every head's here.
    """

    def __init__(
        self, heads: Sequence[base_head.Head], head_weights: Sequence[float] | None = None
    ) -> None:
        if not heads:
            raise ValueError(f"Must specify heads. Given: {heads}")
        if head_weights and len(head_weights) != len(heads):
            raise ValueError(
                "heads and head_weights must have the same size. Given len(heads): "
                f"{len(heads)}. Given len(head_weights): {len(head_weights)}."
            )
        for head in heads:
            if not head.name:
                raise ValueError(f"All given heads must have name specified. Given: {head}")
        names = [head.name for head in heads]
        if len(set(names)) != len(names):
            raise ValueError(f"head names must be distinct: {names}")
        self._heads = tuple(heads)
        self._head_weights = tuple(head_weights) if head_weights else ()
        self._loss_regularization_key = self._summary_key(MetricKeys.LOSS_REGULARIZATION)
        self._loss_keys = tuple(head._summary_key(MetricKeys.LOSS) for head in self._heads)

    @property
    def name(self) -> str:
        return "_".join(head.name for head in self._heads)

    @property
    def logits_dimension(self) -> int:
        return sum(head.logits_dimension for head in self._heads)

    @property
    def loss_reduction(self) -> str:
        reductions = {head.loss_reduction for head in self._heads}
        if len(reductions) > 1:
            raise ValueError(
                "The loss_reduction must be the same for different heads. Given: "
                f"{[head.loss_reduction for head in self._heads]}"
            )
        return reductions.pop()

    def _split_logits(self, logits: Any) -> dict[str, tf.Tensor]:
        if isinstance(logits, Mapping):
            missing = [head.name for head in self._heads if head.name not in logits]
            if missing:
                raise ValueError(f"logits has missing values for head(s): {missing}")
            return {head.name: logits[head.name] for head in self._heads}
        logits = tf.convert_to_tensor(logits)
        last = logits.shape[-1]
        if last is not None and last != self.logits_dimension:
            raise ValueError(
                f"Could not split logits of shape {logits.shape} among the heads with "
                f"individual logits dimensions: {[h.logits_dimension for h in self._heads]}. "
                f"The last dimension of the logits tensor should equal {self.logits_dimension} "
                f"but is {last}."
            )
        parts = tf.split(logits, [head.logits_dimension for head in self._heads], axis=-1)
        return {head.name: part for head, part in zip(self._heads, parts, strict=True)}

    def _check_labels(self, labels: Any) -> Mapping[str, Any]:
        if not isinstance(labels, Mapping):
            raise ValueError(f"labels must be a dict. Given: {labels}")
        missing = [head.name for head in self._heads if head.name not in labels]
        if missing:
            raise ValueError(f"labels has missing values for head(s): {missing}")
        return labels

    def _head_losses(
        self, labels: Any, logits: Any, features: Any, mode: str | None
    ) -> list[tf.Tensor]:
        logits_by_head = self._split_logits(logits)
        labels = self._check_labels(labels)
        return [
            head.loss(labels[head.name], logits_by_head[head.name], features=features, mode=mode)
            for head in self._heads
        ]

    def loss(
        self,
        labels: Any,
        logits: Any,
        features: Mapping[str, Any] | None = None,
        mode: str | None = None,
        regularization_losses: Sequence[Any] | None = None,
    ) -> tf.Tensor:
        losses = self._head_losses(labels, logits, features, mode)
        if self._head_weights:
            losses = [
                loss * weight for loss, weight in zip(losses, self._head_weights, strict=True)
            ]
        return base_head.add_regularization(tf.math.add_n(losses), regularization_losses)

    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[Any, Any]:
        logits_by_head = self._split_logits(logits)
        predictions = {}
        for head in self._heads:
            for key, value in head.predictions(logits_by_head[head.name], keys).items():
                predictions[(head.name, key)] = value
        return predictions

    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        base_head.regularization_metric(
            metrics, self._loss_regularization_key, regularization_losses
        )
        for head, loss_key in zip(self._heads, self._loss_keys, strict=True):
            metrics[loss_key] = keras.metrics.Mean(name=loss_key)
            metrics.update(head.metrics())
        return metrics

    def update_metrics(
        self,
        eval_metrics: dict[str, Any],
        features: Mapping[str, Any],
        logits: Any,
        labels: Any,
        regularization_losses: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        logits_by_head = self._split_logits(logits)
        labels = self._check_labels(labels)
        base_head.update_regularization(
            eval_metrics, self._loss_regularization_key, regularization_losses
        )
        for head, loss_key in zip(self._heads, self._loss_keys, strict=True):
            head_logits, head_labels = logits_by_head[head.name], labels[head.name]
            eval_metrics[loss_key].update_state(
                head.loss(head_labels, head_logits, features=features)
            )
            head.update_metrics(eval_metrics, features, head_logits, head_labels)
        return eval_metrics

    def _predict_spec(self, features: Mapping[str, Any], logits: Any) -> EstimatorSpec:
        logits_by_head = self._split_logits(logits)
        specs = [
            head.create_estimator_spec(features, ModeKeys.PREDICT, logits_by_head[head.name])
            for head in self._heads
        ]
        predictions = {
            (head.name, key): value
            for head, spec in zip(self._heads, specs, strict=True)
            for key, value in spec.predictions.items()
        }
        return EstimatorSpec(
            ModeKeys.PREDICT, predictions=predictions, export_outputs=self._merged_outputs(specs)
        )

    def _merged_outputs(self, specs: list[EstimatorSpec]) -> dict[str, Any]:
        outputs = {
            base_head.DEFAULT_SERVING_KEY: specs[0].export_outputs[base_head.DEFAULT_SERVING_KEY]
        }
        merged = {}
        for head, spec in zip(self._heads, specs, strict=True):
            for key, output in spec.export_outputs.items():
                name = head.name if key == base_head.DEFAULT_SERVING_KEY else f"{head.name}/{key}"
                outputs[name] = output
                if key == base_head.PREDICT_SERVING_KEY and isinstance(output, PredictOutput):
                    merged.update({f"{head.name}/{k}": v for k, v in output.outputs.items()})
        outputs[base_head.PREDICT_SERVING_KEY] = PredictOutput(merged)
        return outputs
