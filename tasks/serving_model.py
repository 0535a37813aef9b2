"""The MLflow pyfunc of an exported SavedModel: it calls the ``serving_default`` signature.

``mlflow.pyfunc.load_model(uri).predict(...)`` and ``mlflow models predict`` accept a dict of
arrays keyed by feature name (``{"pixels": [[...], ...]}``) or a pandas DataFrame with one
column per feature (a cell holds one example's value, a list for vector features). The output
is a dict of NumPy arrays, one per serving output (``classes``, ``probabilities``, …).

This file is logged with the model as its code (MLflow's "models from code"): it imports
nothing from this project, so a logged model loads wherever TensorFlow and MLflow are installed.
"""

from __future__ import annotations

from typing import Any

import mlflow.models
import mlflow.pyfunc
import numpy as np
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import Schema, TensorSpec

SAVED_MODEL_ARTIFACT = "saved_model"


class SavedModelPyfunc(mlflow.pyfunc.PythonModel):
    """Serves the SavedModel logged as the artifact ``saved_model``."""

    # The signature is logged with the model (tensors by name, from the SavedModel), so
    # MLflow's type-hint validation has nothing to add; without this switch it warns, at every
    # load of this file, that predict has no type hints. MLflow reads the same switch for its
    # own ChatModel.
    _skip_type_hint_validation = True

    def load_context(self, context):
        import tensorflow as tf

        loaded = tf.saved_model.load(context.artifacts[SAVED_MODEL_ARTIFACT])
        self._keep_alive = loaded  # the signature's variables belong to this object
        self._signature = loaded.signatures["serving_default"]
        self._inputs = {
            name: spec for name, spec in self._signature.structured_input_signature[1].items()
        }

    def predict(self, context, model_input, params=None):
        import tensorflow as tf

        columns = _columns(model_input)
        missing = sorted(set(self._inputs) - set(columns))
        if missing:
            raise ValueError(
                f"model input lacks feature(s) {missing}; the model takes {sorted(self._inputs)}"
            )
        feeds = {}
        for name, spec in self._inputs.items():
            array = np.asarray(columns[name], dtype=spec.dtype.as_numpy_dtype)
            if not spec.shape.is_compatible_with(array.shape):
                raise ValueError(
                    f"feature {name!r}: got shape {list(array.shape)}, the model takes "
                    f"{spec.shape.as_list()} (None: any size)"
                )
            feeds[name] = tf.constant(array)
        return {key: value.numpy() for key, value in self._signature(**feeds).items()}


def _columns(model_input: Any) -> dict[str, Any]:
    if hasattr(model_input, "columns"):  # pandas DataFrame: a cell is one example's value
        return {
            str(name): np.stack([np.asarray(cell) for cell in model_input[name]])
            for name in model_input.columns
        }
    if isinstance(model_input, dict):
        return model_input
    raise TypeError(
        f"model input must be a dict of arrays or a DataFrame, got {type(model_input).__name__}"
    )


def signature_of(saved_model_dir: str) -> ModelSignature:
    """The MLflow signature of a SavedModel's ``serving_default``: tensors by name (-1: any)."""
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model_dir).signatures["serving_default"]

    def schema(specs: dict[str, Any]) -> Schema:
        return Schema(
            [
                TensorSpec(
                    np.dtype(spec.dtype.as_numpy_dtype),
                    tuple(-1 if d is None else d for d in spec.shape.as_list()),
                    name,
                )
                for name, spec in sorted(specs.items())
            ]
        )

    return ModelSignature(
        inputs=schema(signature.structured_input_signature[1]),
        outputs=schema(signature.structured_outputs),
    )


mlflow.models.set_model(SavedModelPyfunc())
