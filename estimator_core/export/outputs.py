"""Export outputs: how a PREDICT-mode EstimatorSpec names the outputs of each serving signature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf


class ExportOutput:
    """Base class: one SavedModel signature's outputs, as a dict of name to tensor."""

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        raise NotImplementedError


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


class ClassificationOutput(ExportOutput):
    """Outputs of a classifier: ``scores`` (float, ``[batch, n]``) and/or ``classes`` (string)."""

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


class RegressionOutput(ExportOutput):
    """Output of a regressor: one float tensor, named ``outputs`` in the signature."""

    def __init__(self, value: Any) -> None:
        if getattr(value, "dtype", tf.float32) not in (tf.float16, tf.float32, tf.float64):
            raise ValueError(f"RegressionOutput: value must be a float tensor, got {value.dtype}")
        self.value = value

    def as_signature_outputs(self) -> dict[str, tf.Tensor]:
        return {"outputs": self.value}
