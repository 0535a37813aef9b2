"""SavedModels of a TF1 graph model_fn, written as tf.estimator wrote them.

The export graph is built fresh (as tf.estimator did): the serving input receiver is called in
it (TF1 receivers create placeholders), model_fn is called in PREDICT mode on its features,
the weights are restored from the checkpoint, and ``tf.compat.v1.saved_model.Builder`` writes
one MetaGraph tagged ``serve`` whose signatures are those of ``build_all_signature_defs``:

* one per ``export_outputs`` key (``serving_default`` among them): ``PredictOutput`` → a
  predict signature over every receiver tensor; ``ClassificationOutput`` and
  ``RegressionOutput`` → classify / regress signatures (method names
  ``tensorflow/serving/classify`` / ``regress``, TF Serving's Classify and Regress APIs),
  which need the receiver to be a single string tensor of serialized ``tf.Example``s; a
  signature that cannot be built is left out with a warning, as tf.estimator did;
* with ``receiver_tensors_alternatives``, one more per (alternative, output):
  ``<alternative>:<output key>``.

``tf.saved_model.load`` (TF2) reads the result and calls its signatures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from estimator_core.export.outputs import (
    ClassificationOutput,
    ExportOutput,
    PredictOutput,
    RegressionOutput,
)
from estimator_core.graph_mode import GraphModelFnError, check_graph_spec
from estimator_core.mode_keys import ModeKeys
from estimator_core.spec import EstimatorSpec
from estimator_core.tf1_keras import tf1_keras_scope
from estimator_core.training_util import global_step_scope

logger = logging.getLogger("estimator_core")

_SINGLE_FEATURE_KEY = "feature"
_SINGLE_RECEIVER_KEY = "input"


def receiver_tensors_of(receiver: Any) -> tuple[Any, dict[str, tf.Tensor], dict[str, Any]]:
    """``(features, receiver_tensors, receiver_tensors_alternatives)`` of a serving input
    receiver, in the current (export) graph.

    TF1 receivers (``features`` and ``receiver_tensors`` of placeholders, as tf.estimator's
    ``ServingInputReceiver``) are taken as they are: a single features tensor becomes
    ``{"feature": tensor}``, a single receiver tensor ``{"input": tensor}``. A receiver of
    ``tf.TensorSpec``s (``receiver_tensors_spec``) gets one placeholder per spec.
    """
    if hasattr(receiver, "receiver_tensors_spec"):
        placeholders = {
            name: tf.compat.v1.placeholder(spec.dtype, spec.shape, name=spec.name or name)
            for name, spec in receiver.receiver_tensors_spec.items()
        }
        return receiver.features(placeholders), placeholders, {}
    features = getattr(receiver, "features", None)
    receiver_tensors = getattr(receiver, "receiver_tensors", None)
    if features is None or receiver_tensors is None or callable(features):
        raise TypeError(
            "serving_input_receiver_fn must return a ServingInputReceiver (features and "
            f"receiver_tensors, or receiver_tensors_spec), got {type(receiver).__name__}"
        )
    if not isinstance(features, Mapping) and not _is_tensor_input(receiver):
        features = {_SINGLE_FEATURE_KEY: features}
    if not isinstance(receiver_tensors, Mapping):
        receiver_tensors = {_SINGLE_RECEIVER_KEY: receiver_tensors}
    alternatives = dict(getattr(receiver, "receiver_tensors_alternatives", None) or {})
    return features, dict(receiver_tensors), alternatives


def _is_tensor_input(receiver: Any) -> bool:
    """TensorServingInputReceiver hands model_fn its features tensor unwrapped."""
    return type(receiver).__name__ == "TensorServingInputReceiver"


def signature_defs(
    receiver_tensors: dict[str, tf.Tensor],
    export_outputs: Mapping[str, ExportOutput],
    alternatives: Mapping[str, Any],
) -> dict[str, Any]:
    """The signatures tf.estimator's ``build_all_signature_defs`` built (see module doc)."""
    candidates: list[tuple[str, dict[str, tf.Tensor], ExportOutput]] = [
        (key, receiver_tensors, output) for key, output in export_outputs.items()
    ]
    for receiver_name, tensors in alternatives.items():
        tensors = tensors if isinstance(tensors, Mapping) else {receiver_name: tensors}
        candidates += [
            (f"{receiver_name}:{key}", dict(tensors), output)
            for key, output in export_outputs.items()
        ]
    signatures, excluded = {}, {}
    for name, inputs, output in candidates:
        try:
            signatures[name] = _signature_def(output, inputs)
        except ValueError as err:
            excluded[name] = str(err)
    for name, reason in excluded.items():
        logger.warning("Signature %s is left out of the export: %s", name, reason)
    if tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY not in signatures:
        logger.warning("Export includes no default signature!")
    return signatures


def _signature_def(output: ExportOutput, inputs: dict[str, tf.Tensor]) -> Any:
    utils = tf.compat.v1.saved_model.signature_def_utils
    if isinstance(output, PredictOutput):
        return tf.compat.v1.saved_model.predict_signature_def(inputs, output.outputs)
    if isinstance(output, (ClassificationOutput, RegressionOutput)):
        (examples,) = inputs.values() if len(inputs) == 1 else (None,)
        if examples is None or examples.dtype != tf.string:
            raise ValueError(
                f"{type(output).__name__} signatures need a single tf.string input of "
                f"serialized tf.Examples; the receiver has {sorted(inputs)} (parse them with "
                "tf.io.parse_example in serving_input_receiver_fn)"
            )
        if isinstance(output, ClassificationOutput):
            return utils.classification_signature_def(examples, output.classes, output.scores)
        return utils.regression_signature_def(examples, output.value)
    raise GraphModelFnError(f"export_outputs: unknown ExportOutput {type(output).__name__}")


def write_saved_model(
    export_dir: str,
    serving_input_receiver_fn: Callable[[], Any],
    model_fn: Callable[[Any, Any, str], EstimatorSpec],
    checkpoint_path: str,
    seed: int | None,
) -> None:
    """Build the export graph, restore ``checkpoint_path`` into it, write ``export_dir``."""
    graph = tf.Graph()
    with graph.as_default(), tf1_keras_scope():
        if seed is not None:
            tf.compat.v1.set_random_seed(seed)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        features, receiver_tensors, alternatives = receiver_tensors_of(serving_input_receiver_fn())
        with global_step_scope(global_step):
            spec = model_fn(features, None, ModeKeys.PREDICT)
        check_graph_spec(spec, graph)
        signatures = signature_defs(receiver_tensors, spec.export_outputs, alternatives)
        scaffold = spec.scaffold or tf.compat.v1.train.Scaffold()
        scaffold.finalize()
        graph._unsafe_unfinalize()  # the Builder adds its collections
        with tf.compat.v1.Session(graph=graph) as session:
            scaffold.saver.restore(session, checkpoint_path)
            builder = tf.compat.v1.saved_model.Builder(export_dir)
            builder.add_meta_graph_and_variables(
                session,
                [tf.saved_model.SERVING],
                signature_def_map=signatures,
                assets_collection=tf.compat.v1.get_collection(
                    tf.compat.v1.GraphKeys.ASSET_FILEPATHS
                ),
                main_op=scaffold.local_init_op,
                strip_default_attrs=True,
                saver=scaffold.saver,
            )
            builder.save()
