"""Export outputs: how a PREDICT-mode EstimatorSpec names the outputs of each serving signature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
# The one input of a TF Serving Classify or Regress signature: serialized tf.Examples.
CLASSIFY_INPUTS = "inputs"


class ExportOutput:
    """Base class: one SavedModel signature's outputs, as a dict of name to tensor.

    :meth:`signature_inputs` and :meth:`method_name` say how the signature takes the serving
    receiver's tensors: a predict signature takes them under their own names.
    """

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def signature_inputs(
        self, receiver_tensors_spec: Mapping[str, tf.TensorSpec]
    ) -> dict[str, str]:
        """Signature input name → receiver tensor name."""
        return {name: name for name in receiver_tensors_spec}

    def method_name(self, receiver_tensors_spec: Mapping[str, tf.TensorSpec]) -> str:
        """The SignatureDef method name TF Serving dispatches on."""
        del receiver_tensors_spec
        return PREDICT_METHOD_NAME


class _ServingApiOutput(ExportOutput):
    """An output TF Serving's Classify or Regress API can serve when the receiver takes one
    string tensor (serialized tf.Examples): the signature then has that method and takes
    the tensor as ``inputs``, as tf.estimator wrote it. With any other receiver tf.estimator
    left such a signature out; here it stays, as a predict signature over the receiver's
    tensors."""

    _method: str

    def signature_inputs(
        self, receiver_tensors_spec: Mapping[str, tf.TensorSpec]
    ) -> dict[str, str]:
        if _serves_examples(receiver_tensors_spec):
            (name,) = receiver_tensors_spec
            return {CLASSIFY_INPUTS: name}
        return super().signature_inputs(receiver_tensors_spec)

    def method_name(self, receiver_tensors_spec: Mapping[str, tf.TensorSpec]) -> str:
        if _serves_examples(receiver_tensors_spec):
            return self._method
        return PREDICT_METHOD_NAME


def _serves_examples(receiver_tensors_spec: Mapping[str, tf.TensorSpec]) -> bool:
    specs = list(receiver_tensors_spec.values())
    return len(specs) == 1 and specs[0].dtype == tf.string


class PredictOutput(ExportOutput):
    """Outputs for a generic predict signature: a tensor (named ``output``) or a dict of tensors."""

    def __init__(self, outputs: Any) -> None:
        if isinstance(outputs, Mapping):
            if not outputs:
                raise ValueError("PredictOutput: outputs must not be empty")
            for key in outputs:
                if not isinstance(key, str):
                    raise ValueError(f"PredictOutput: output keys must be strings, got {key!r}")
            self.outputs = dict(outputs)
        else:
            self.outputs = {"output": outputs}

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        return dict(self.outputs)


class ClassificationOutput(_ServingApiOutput):
    """Outputs of a classifier: ``scores`` (float, ``[batch, n]``) and/or ``classes`` (string)."""

    _method = CLASSIFY_METHOD_NAME

    def __init__(self, scores: Any = None, classes: Any = None) -> None:
        if scores is None and classes is None:
            raise ValueError("ClassificationOutput: at least one of scores and classes is required")
        if classes is not None and getattr(classes, "dtype", tf.string) != tf.string:
            raise ValueError(
                f"ClassificationOutput: classes must be a string tensor, got {classes.dtype}"
            )
        self.scores = scores
        self.classes = classes

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        outputs = {}
        if self.scores is not None:
            outputs["scores"] = self.scores
        if self.classes is not None:
            outputs["classes"] = self.classes
        return outputs


class RegressionOutput(_ServingApiOutput):
    """Output of a regressor: one float tensor, named ``outputs`` in the signature."""

    _method = REGRESS_METHOD_NAME

    def __init__(self, value: Any) -> None:
        if getattr(value, "dtype", tf.float32) not in (tf.float16, tf.float32, tf.float64):
            raise ValueError(f"RegressionOutput: value must be a float tensor, got {value.dtype}")
        self.value = value

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        return {"outputs": self.value}
