"""Export outputs: how a PREDICT-mode EstimatorSpec names the outputs of each serving signature.

These are tf.estimator's classes: ``tf.estimator.export.PredictOutput`` and its siblings were
TensorFlow's own ``saved_model.model_utils.export_output`` classes, which TF 2 still has; these
subclass them (same arguments, attributes and ``ValueError`` messages) and add
:meth:`ExportOutput.as_signature_outputs`, the outputs of the signature written for them.
A ClassificationOutput's or RegressionOutput's signature over a receiver of one string tensor
is a TF Serving Classify or Regress signature taking it as ``inputs``; any other signature is a
predict signature taking the receiver's tensors under their keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.saved_model.model_utils import export_output as _tf

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
# The one input of a TF Serving Classify or Regress signature: serialized tf.Examples.
CLASSIFY_INPUTS = "inputs"


class ExportOutput(_tf.ExportOutput):
    """Base class: one SavedModel signature's outputs, as a dict of name to tensor.

    :meth:`signature_input_names` and :meth:`method_name` say how the signature takes the
    serving receiver's tensors: a predict signature takes them under their own keys.
    """

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def signature_input_names(self, receiver_tensors: Mapping[str, Any]) -> list[str]:
        """The signature's input name for each receiver tensor, in the receiver's order."""
        return list(receiver_tensors)

    def method_name(self, receiver_tensors: Mapping[str, Any]) -> str:
        """The SignatureDef method name TF Serving dispatches on."""
        del receiver_tensors
        return PREDICT_METHOD_NAME


class _ServingApiOutput(ExportOutput):
    """An output TF Serving's Classify or Regress API can serve when the receiver takes one
    string tensor (serialized tf.Examples): the signature then has that method and takes
    the tensor as ``inputs``, as tf.estimator wrote it. With any other receiver tf.estimator
    left such a signature out; here it stays, as a predict signature over the receiver's
    tensors."""

    _method: str

    def signature_input_names(self, receiver_tensors: Mapping[str, Any]) -> list[str]:
        if _serves_examples(receiver_tensors):
            return [CLASSIFY_INPUTS]
        return super().signature_input_names(receiver_tensors)

    def method_name(self, receiver_tensors: Mapping[str, Any]) -> str:
        if _serves_examples(receiver_tensors):
            return self._method
        return PREDICT_METHOD_NAME


def _serves_examples(receiver_tensors: Mapping[str, Any]) -> bool:
    tensors = list(receiver_tensors.values())
    return len(tensors) == 1 and tensors[0].dtype == tf.string


class PredictOutput(ExportOutput, _tf.PredictOutput):
    """Outputs for a generic predict signature: a tensor (named ``output``) or a dict of tensors
    (string keys, or tuples of strings joined with ``/``)."""

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        return dict(self.outputs)


class ClassificationOutput(_ServingApiOutput, _tf.ClassificationOutput):
    """Outputs of a classifier: ``scores`` (a float tensor) and/or ``classes`` (string labels),
    named so in the signature."""

    _method = CLASSIFY_METHOD_NAME

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        outputs = {"scores": self.scores, "classes": self.classes}
        return {name: value for name, value in outputs.items() if value is not None}


class RegressionOutput(_ServingApiOutput, _tf.RegressionOutput):
    """Output of a regressor: one float tensor, named ``outputs`` in the signature."""

    _method = REGRESS_METHOD_NAME

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
