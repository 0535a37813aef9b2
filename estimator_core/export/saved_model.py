"""Signature input names in a written SavedModel: the receiver's keys, as tf.estimator kept them.

``tf.saved_model.save`` names a signature's inputs after its function's arguments, which must
be graph op names and Python identifiers: a receiver key such as ``"num of doors"`` or
``"body-style"`` would become ``num_of_doors`` / ``body_style``, and a client (TF Serving, ``tf.saved_model.load``) calling
the signature with the key it was given would be refused, or a model_fn reading
``features["num of doors"]`` would never see it. tf.estimator wrote SignatureDefs itself and
kept any key. After saving, :func:`rename_signature_inputs` puts the keys back in the two
places a SavedModel names signature inputs: the ``SignatureDef`` input map (what TF Serving
and TF1 loaders read) and the signature function's argument keywords (what
``tf.saved_model.load(...).signatures[name](**inputs)`` reads).
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

_SAVED_MODEL = "saved_model.pb"


def rename_signature_inputs(export_dir: str, input_names: dict[str, dict[str, str]]) -> None:
    """In the SavedModel in ``export_dir``, rename signature inputs: ``input_names`` maps a
    signature name to {input name written: name to give it}. Rewrites ``saved_model.pb``
    (in place: ``export_dir`` is the export's temporary directory)."""
    if not input_names:
        return
    path = os.path.join(export_dir, _SAVED_MODEL)
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        proto.ParseFromString(f.read())
    (meta_graph,) = proto.meta_graphs
    for signature_name, renames in input_names.items():
        signature = meta_graph.signature_def[signature_name]
        for old, new in renames.items():
            info = signature.inputs.pop(old)
            signature.inputs[new].CopyFrom(info)
        keywords = _signature_keywords(meta_graph, signature_name)
        renamed = [renames.get(k, k) for k in keywords]
        del keywords[:]
        keywords.extend(renamed)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(proto.SerializeToString())


def _signature_keywords(meta_graph: Any, signature_name: str) -> Any:
    """The argument keywords of the function behind ``signature_name`` (a child of the root's
    ``signatures`` object)."""
    nodes = meta_graph.object_graph_def.nodes
    signatures = next(c.node_id for c in nodes[0].children if c.local_name == "signatures")
    function = next(c.node_id for c in nodes[signatures].children if c.local_name == signature_name)
    node = nodes[function]
    if node.WhichOneof("kind") != "bare_concrete_function":
        raise ValueError(
            f"SavedModel signature {signature_name!r} is not stored as a concrete function; "
            "cannot name its inputs"
        )
    return node.bare_concrete_function.argument_keywords
