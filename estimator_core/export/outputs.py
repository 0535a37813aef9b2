"""Export outputs: how a PREDICT-mode EstimatorSpec names the outputs of each serving signature.

These are tf.estimator's classes: ``tf.estimator.export.PredictOutput`` and its siblings were
TensorFlow's own ``saved_model.model_utils.export_output`` classes, which TF 2 still has; these
subclass them (same arguments, attributes and ``ValueError`` messages) and add
:meth:`ExportOutput.as_signature_outputs`, the outputs of the signature written for them.
``tf.saved_model.save`` writes predict signatures only: a ClassificationOutput's or
RegressionOutput's signature takes the receiver's inputs and returns its tensors by name.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.saved_model.model_utils import export_output as _tf


class ExportOutput(_tf.ExportOutput):
    """Base class: one SavedModel signature's outputs, as a dict of name to tensor."""

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        raise NotImplementedError


class PredictOutput(ExportOutput, _tf.PredictOutput):
    """Outputs for a generic predict signature: a tensor (named ``output``) or a dict of tensors
    (string keys, or tuples of strings joined with ``/``)."""

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        return dict(self.outputs)


class ClassificationOutput(ExportOutput, _tf.ClassificationOutput):
    """Outputs of a classifier: ``scores`` (a float tensor) and/or ``classes`` (string labels),
    named so in the signature."""

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        outputs = {"scores": self.scores, "classes": self.classes}
        return {name: value for name, value in outputs.items() if value is not None}


class RegressionOutput(ExportOutput, _tf.RegressionOutput):
    """Output of a regressor: one float tensor, named ``outputs`` in the signature."""

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        return {"outputs": self.value}


class EvalOutput(ExportOutput, _tf.EvalOutput):
    """tf.estimator's output of an evaluation: ``loss``, ``predictions`` and ``metrics`` (keys
    prefixed ``loss``, ``predictions/``, ``metrics/<name>/value`` and ``.../update_op``).

    ``metrics`` values are ``(value, update_op)`` pairs, as in TF1, or Keras metrics (this
    library's metrics; only their ``value`` is output: a Keras metric's update is not an op).
    """

    def _wrap_and_check_metrics(self, metrics: Any) -> dict[str, Any]:
        if not isinstance(metrics, dict):
            metrics = {self.METRICS_NAME: metrics}
        outputs = {}
        for key, value in metrics.items():
            key = self._prefix_key(self._check_output_key(key, self.METRICS_NAME), "metrics")
            if isinstance(value, keras.metrics.Metric):
                outputs.update(self._wrap_and_check_outputs({f"{key}/value": value.result()}, key))
            else:
                outputs.update(super()._wrap_and_check_metrics({key: value}))
        return outputs

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        outputs: dict[str, tf.Tensor] = {}
        for part in (self.loss, self.predictions, self.metrics):
            outputs.update(part or {})
        return outputs
