"""Signature inputs and methods in a written SavedModel, as tf.estimator wrote them.

``tf.saved_model.save`` names a signature's inputs after its function's arguments, which must
be graph op names and Python identifiers: a receiver key such as ``"num of doors"`` or
``"body-style"`` would become ``num_of_doors`` / ``body_style``, and a client (TF Serving,
``tf.saved_model.load``) calling the signature with the key it was given would be refused, or a model_fn reading
``features["num of doors"]`` would never see it. tf.estimator wrote SignatureDefs itself and
kept any key. After saving, :func:`finish_signatures` puts the keys back in the two
places a SavedModel names signature inputs: the ``SignatureDef`` input map (what TF Serving
and TF1 loaders read) and the signature function's argument keywords (what
``tf.saved_model.load(...).signatures[name](**inputs)`` reads). It also writes the
Classify/Regress method names TF Serving dispatches on, which ``tf.saved_model.save`` cannot.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from estimator_core.export.outputs import PREDICT_METHOD_NAME

_SAVED_MODEL = "saved_model.pb"


def finish_signatures(
    export_dir: str, input_names: dict[str, dict[str, str]], methods: dict[str, str]
) -> None:
    """Finish the signatures of the SavedModel in ``export_dir``, which ``tf.saved_model.save``
    wrote: ``input_names`` maps a signature name to {input name written: name to give it};
    ``methods`` maps a signature name to its SignatureDef method name (``tf.saved_model.save``
    writes every signature as a predict one). Rewrites ``saved_model.pb`` in place
    (``export_dir`` is the export's temporary directory) and its fingerprint."""
    methods = {name: m for name, m in methods.items() if m != PREDICT_METHOD_NAME}
    if not input_names and not methods:
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
    for signature_name, method in methods.items():
        meta_graph.signature_def[signature_name].method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(proto.SerializeToString(deterministic=True))
    _rewrite_fingerprint(export_dir)


def _rewrite_fingerprint(export_dir: str) -> None:
    """``fingerprint.pb`` holds a checksum of ``saved_model.pb``: write it anew with
    TensorFlow's own writer."""
    from tensorflow.python.saved_model import fingerprinting_utils

    fingerprint = os.path.join(export_dir, "fingerprint.pb")
    if tf.io.gfile.exists(fingerprint):
        tf.io.gfile.remove(fingerprint)
    fingerprinting_utils.write_fingerprint(export_dir)


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
