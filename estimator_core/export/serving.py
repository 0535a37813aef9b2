"""Serving input receivers: the inputs of an exported SavedModel's signatures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import tensorflow as tf


class ServingInputReceiver(NamedTuple):
    """What a serving_input_receiver_fn returns.

    In TF2 there are no placeholders: ``receiver_tensors_spec`` declares the signature's inputs
    as a dict of name to ``tf.TensorSpec``, and ``features_fn`` turns a dict of such tensors
    into the ``features`` model_fn receives (identity when ``None``).
    """

    receiver_tensors_spec: Mapping[str, tf.TensorSpec]
    features_fn: Callable[[dict[str, tf.Tensor]], Any] | None = None

    def features(self, receiver_tensors: dict[str, tf.Tensor]) -> Any:
        if self.features_fn is None:
            return dict(receiver_tensors)
        return self.features_fn(receiver_tensors)


def build_raw_serving_input_receiver_fn(
    features: Mapping[str, tf.TensorSpec], default_batch_size: int | None = None
) -> Callable[[], ServingInputReceiver]:
    """A receiver fn whose signature takes the raw feature tensors, one input per feature.

    ``features`` maps feature names to ``tf.TensorSpec`` whose shapes include the batch
    dimension (``None`` for any batch size; ``default_batch_size`` fixes it).
    """
    specs = {}
    for name, spec in features.items():
        if not isinstance(spec, tf.TensorSpec):
            raise TypeError(
                f"build_raw_serving_input_receiver_fn: features[{name!r}] must be a tf.TensorSpec, "
                f"got {type(spec).__name__}"
            )
        shape = spec.shape
        if default_batch_size is not None and shape.rank and shape[0] is None:
            shape = tf.TensorShape([default_batch_size]).concatenate(shape[1:])
        specs[name] = tf.TensorSpec(shape, spec.dtype, name=name)

    def serving_input_receiver_fn() -> ServingInputReceiver:
        return ServingInputReceiver(specs)

    return serving_input_receiver_fn


def build_parsing_serving_input_receiver_fn(
    feature_spec: Mapping[str, Any], default_batch_size: int | None = None
) -> Callable[[], ServingInputReceiver]:
    """A receiver fn whose signature takes serialized ``tf.Example`` protos (input ``examples``).

    ``feature_spec`` is a ``tf.io.parse_example`` spec (``FixedLenFeature``, ``VarLenFeature``, ...).
    """
    spec = dict(feature_spec)
    if not spec:
        raise ValueError("build_parsing_serving_input_receiver_fn: feature_spec must not be empty")

    def parse(receiver_tensors: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return tf.io.parse_example(receiver_tensors["examples"], spec)

    def serving_input_receiver_fn() -> ServingInputReceiver:
        return ServingInputReceiver(
            {"examples": tf.TensorSpec([default_batch_size], tf.string, name="examples")}, parse
        )

    return serving_input_receiver_fn
