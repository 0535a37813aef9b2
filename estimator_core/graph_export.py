"""SavedModels of a TF1 graph model_fn, written as tf.estimator wrote them.

The export graph is built fresh (as tf.estimator did): the serving input receiver is called in
it (TF1 receivers create placeholders), model_fn is called in PREDICT mode on its features,
the weights are restored from the checkpoint through the Scaffold's saver, and
``tf.compat.v1.saved_model.Builder`` writes one MetaGraph tagged ``serve``. Its signatures
are the function backend's (one per ``export_outputs`` key, and ``<alternative>:<key>`` per
``receiver_tensors_alternatives``), with the inputs and method name each
:class:`~estimator_core.export.ExportOutput` gives: a predict signature over the receiver's
tensors under their keys, or a TF Serving Classify/Regress signature taking one string
tensor of serialized ``tf.Example``s as ``inputs``. Being written as SignatureDefs directly,
they need no :func:`~estimator_core.export.saved_model.finish_signatures`.

``tf.saved_model.load`` (TF2) reads the result and calls its signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from estimator_core.export.outputs import ExportOutput
from estimator_core.export.serving import (
    ServingInputReceiver,
    TensorServingInputReceiver,
    checked_receiver,
)
from estimator_core.graph_mode import check_graph_spec
from estimator_core.mode_keys import ModeKeys
from estimator_core.spec import EstimatorSpec
from estimator_core.tf1_keras import tf1_keras_scope
from estimator_core.training_util import global_step_scope


def signature_defs(
    receiver: ServingInputReceiver | TensorServingInputReceiver,
    export_outputs: Mapping[str, ExportOutput],
) -> dict[str, Any]:
    """One SignatureDef per export output and receiver (see the module docstring)."""
    receivers = {None: receiver.receiver_tensors, **(receiver.receiver_tensors_alternatives or {})}
    signatures = {}
    for receiver_name, tensors in receivers.items():
        for output_key, export_output in export_outputs.items():
            name = output_key if receiver_name is None else f"{receiver_name}:{output_key}"
            input_names = export_output.signature_input_names(tensors)
            inputs = dict(zip(input_names, tensors.values(), strict=True))
            signatures[name] = tf.compat.v1.saved_model.build_signature_def(
                {k: tf.compat.v1.saved_model.build_tensor_info(t) for k, t in inputs.items()},
                {
                    k: tf.compat.v1.saved_model.build_tensor_info(t)
                    for k, t in export_output.as_signature_outputs().items()
                },
                export_output.method_name(tensors),
            )
    return signatures


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
        receiver = checked_receiver(serving_input_receiver_fn())
        with global_step_scope(global_step):
            spec = model_fn(receiver.features, None, ModeKeys.PREDICT)
        check_graph_spec(spec, graph)
        signatures = signature_defs(receiver, spec.export_outputs)
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
