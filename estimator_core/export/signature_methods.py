"""Setting the SignatureDef method names of a SavedModel that ``tf.saved_model.save`` wrote.

``tf.saved_model.save`` writes every signature as a predict signature
(``tensorflow/serving/predict``); TF Serving's Classify and Regress APIs look for the methods
``tensorflow/serving/classify`` and ``tensorflow/serving/regress``. The method name is only a
field of the SignatureDef in ``saved_model.pb``: TensorFlow's own loaders do not read it, so
changing it changes nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from estimator_core.export.outputs import PREDICT_METHOD_NAME


def set_signature_methods(saved_model_dir: str, methods: Mapping[str, str]) -> None:
    """Give signature ``name`` of the SavedModel in ``saved_model_dir`` the method
    ``methods[name]`` (predict ones are left as written), and rewrite its fingerprint."""
    changes = {name: method for name, method in methods.items() if method != PREDICT_METHOD_NAME}
    if not changes:
        return
    path = os.path.join(saved_model_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        for name, method in changes.items():
            if name not in meta_graph.signature_def:
                raise ValueError(f"SavedModel {saved_model_dir} has no signature {name!r}")
            meta_graph.signature_def[name].method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(proto.SerializeToString(deterministic=True))
    _rewrite_fingerprint(saved_model_dir)


def _rewrite_fingerprint(saved_model_dir: str) -> None:
    """``fingerprint.pb`` holds a checksum of ``saved_model.pb``: write it anew (TensorFlow's
    own writer; a TensorFlow without it wrote no fingerprint either)."""
    try:
        from tensorflow.python.saved_model import fingerprinting_utils
    except ImportError:
        return
    fingerprint = os.path.join(saved_model_dir, "fingerprint.pb")
    if tf.io.gfile.exists(fingerprint):
        tf.io.gfile.remove(fingerprint)
    fingerprinting_utils.write_fingerprint(saved_model_dir)
