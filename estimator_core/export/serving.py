"""Serving input receivers: the inputs of an exported SavedModel's signatures, as tf.estimator's.

A ``serving_input_receiver_fn`` takes no arguments and returns a :class:`ServingInputReceiver`
(or :class:`TensorServingInputReceiver`) of graph tensors: ``receiver_tensors`` are what the
signature is fed (typically ``tf.compat.v1.placeholder``s), ``features`` what model_fn receives
(the receiver tensors themselves, or ops on them such as ``tf.io.parse_example``).
:meth:`Estimator.export_saved_model` calls it inside a graph (``tf.compat.v1.wrap_function``),
where placeholders are legal, as tf.estimator called it inside its export graph; called eagerly,
``tf.compat.v1.placeholder`` raises.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

SINGLE_FEATURE_DEFAULT_NAME = "feature"
SINGLE_RECEIVER_DEFAULT_NAME = "input"
_SINGLE_TENSOR_DEFAULT_NAMES = {
    "feature": SINGLE_FEATURE_DEFAULT_NAME,
    "receiver_tensor": SINGLE_RECEIVER_DEFAULT_NAME,
    "receiver_tensors_alternative": SINGLE_RECEIVER_DEFAULT_NAME,
}


def wrap_and_check_input_tensors(
    tensors: Any, field_name: str, allow_int_keys: bool = False
) -> dict[Any, Any]:
    """``tensors`` as a dict of name to tensor (a single tensor is named ``feature`` or
    ``input``); ``ValueError`` (tf.estimator's messages) for None, a key that is not a string
    (or an int, with ``allow_int_keys``), or a value that is not a Tensor, SparseTensor or
    RaggedTensor."""
    if tensors is None:
        raise ValueError(f"{field_name}s must be defined.")
    if not isinstance(tensors, dict):
        tensors = {_SINGLE_TENSOR_DEFAULT_NAMES[field_name]: tensors}
    for name, tensor in tensors.items():
        _check_tensor_key(name, field_name, allow_int_keys)
        _check_tensor(tensor, name, field_name)
    return tensors


def _check_tensor(tensor: Any, name: Any, error_label: str = "feature") -> None:
    if isinstance(tensor, (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)):
        return
    error = ValueError(
        f"{error_label}{f' {name}' if name is not None else ''} must be a Tensor, "
        f"SparseTensor, or RaggedTensor; got {type(tensor).__name__}."
    )
    # tf.estimator's carve-out for LabeledTensor-like objects: a ``.tensor`` attribute and a
    # registered conversion to a Tensor.
    if not hasattr(tensor, "tensor"):
        raise error
    try:
        tf.convert_to_tensor(tensor)
    except (TypeError, ValueError):
        raise error from None


def _check_tensor_key(name: Any, error_label: str, allow_ints: bool) -> None:
    if isinstance(name, str):
        return
    if not allow_ints:
        raise ValueError(f"{error_label} keys must be strings: {name}.")
    if not isinstance(name, int):
        raise ValueError(f"{error_label} keys must be strings or ints: {name}.")


class ServingInputReceiver(
    collections.namedtuple(
        "ServingInputReceiver", ["features", "receiver_tensors", "receiver_tensors_alternatives"]
    )
):
    """What a serving_input_receiver_fn returns (``tf.estimator.export.ServingInputReceiver``).

    Attributes:
      features: a Tensor, SparseTensor, RaggedTensor or dict of string or int to them: what
        model_fn receives. A single tensor is wrapped as ``{"feature": tensor}`` (use
        :class:`TensorServingInputReceiver` to pass it unwrapped).
      receiver_tensors: a Tensor or dict of string to Tensor: the inputs of the default
        signatures (one per ``export_outputs`` entry), named by their keys (a single tensor:
        ``input``). Keys are kept as given, also when they are not Python identifiers
        (``"body-style"``, ``"num of doors"``).
      receiver_tensors_alternatives: None, or a dict of name to more receiver tensors (a tensor
        or a dict of them), each giving further signatures ``"<name>:<export output key>"``
        fed at those tensors (for instance the parsed features, downstream of
        ``tf.io.parse_example``).
    """

    def __new__(
        cls,
        features: Any,
        receiver_tensors: Any,
        receiver_tensors_alternatives: Mapping[str, Any] | None = None,
    ) -> ServingInputReceiver:
        features = wrap_and_check_input_tensors(features, "feature", allow_int_keys=True)
        receiver_tensors = wrap_and_check_input_tensors(receiver_tensors, "receiver_tensor")
        if receiver_tensors_alternatives is not None:
            if not isinstance(receiver_tensors_alternatives, dict):
                raise ValueError(
                    "receiver_tensors_alternatives must be a dict: "
                    f"{receiver_tensors_alternatives}."
                )
            receiver_tensors_alternatives = {
                name: wrap_and_check_input_tensors(tensors, "receiver_tensors_alternative")
                for name, tensors in receiver_tensors_alternatives.items()
            }
        return super().__new__(cls, features, receiver_tensors, receiver_tensors_alternatives)


class TensorServingInputReceiver(
    collections.namedtuple(
        "TensorServingInputReceiver",
        ["features", "receiver_tensors", "receiver_tensors_alternatives"],
    )
):
    """A :class:`ServingInputReceiver` whose ``features`` is one Tensor or SparseTensor, passed
    to model_fn as it is (not wrapped in a dict), for model_fns that take a single feature."""

    def __new__(
        cls,
        features: Any,
        receiver_tensors: Any,
        receiver_tensors_alternatives: Mapping[str, Any] | None = None,
    ) -> TensorServingInputReceiver:
        if features is None:
            raise ValueError("features must be defined.")
        _check_tensor(features, None)
        receiver = ServingInputReceiver(features, receiver_tensors, receiver_tensors_alternatives)
        return super().__new__(
            cls,
            receiver.features[SINGLE_FEATURE_DEFAULT_NAME],
            receiver.receiver_tensors,
            receiver.receiver_tensors_alternatives,
        )


def checked_receiver(receiver: Any) -> ServingInputReceiver | TensorServingInputReceiver:
    """``receiver`` (what a serving_input_receiver_fn returned), when it is a receiver;
    ``TypeError`` otherwise."""
    if not isinstance(receiver, (ServingInputReceiver, TensorServingInputReceiver)):
        raise TypeError(
            "serving_input_receiver_fn must return an estimator_core.export."
            f"ServingInputReceiver, got {type(receiver).__name__}"
        )
    return receiver


def build_parsing_serving_input_receiver_fn(
    feature_spec: Mapping[str, Any], default_batch_size: int | None = None
) -> Callable[[], ServingInputReceiver]:
    """A receiver fn whose signatures take serialized ``tf.Example`` protos (input ``examples``,
    a string placeholder of shape ``[default_batch_size]``), parsed by ``feature_spec`` (a
    ``tf.io.parse_example`` spec: ``FixedLenFeature``, ``VarLenFeature``, ...) into the
    features."""
    spec = dict(feature_spec)
    if not spec:
        raise ValueError("build_parsing_serving_input_receiver_fn: feature_spec must not be empty")

    def serving_input_receiver_fn() -> ServingInputReceiver:
        examples = tf.compat.v1.placeholder(
            tf.string, shape=[default_batch_size], name="input_example_tensor"
        )
        return ServingInputReceiver(tf.io.parse_example(examples, spec), {"examples": examples})

    return serving_input_receiver_fn


def build_raw_serving_input_receiver_fn(
    features: Mapping[str, Any], default_batch_size: int | None = None
) -> Callable[[], ServingInputReceiver]:
    """A receiver fn whose signatures take the raw feature tensors, one input per feature.

    ``features`` maps feature names to what each input looks like: a tensor (eager or graph,
    a placeholder among them: its dtype, and its shape with the batch dimension replaced by
    ``default_batch_size``, None by default), or a ``tf.TensorSpec`` (its dtype and shape as
    given, batch dimension included; a None batch dimension becomes ``default_batch_size``).
    The receiver's features are the placeholders themselves, under the same names.
    """
    shapes = {}
    for name, value in features.items():
        if isinstance(value, tf.TensorSpec):
            shape = value.shape
            if default_batch_size is not None and shape.rank and shape[0] is None:
                shape = tf.TensorShape([default_batch_size]).concatenate(shape[1:])
        elif isinstance(value, tf.Tensor):
            shape = tf.TensorShape([default_batch_size]).concatenate(value.shape[1:])
        else:
            raise TypeError(
                f"build_raw_serving_input_receiver_fn: features[{name!r}] must be a tf.Tensor "
                f"or a tf.TensorSpec, got {type(value).__name__}"
            )
        shapes[name] = (value.dtype, shape)

    def serving_input_receiver_fn() -> ServingInputReceiver:
        placeholders = {
            name: tf.compat.v1.placeholder(dtype, shape, name=op_name(name))
            for name, (dtype, shape) in shapes.items()
        }
        return ServingInputReceiver(placeholders, placeholders)

    return serving_input_receiver_fn


_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_]")


def op_name(key: Any) -> str:
    """A name for the input ``key`` that is both a graph op name and a Python identifier, as
    TensorFlow requires of a function's arguments: the key with every other character replaced
    by ``_`` (``"num of doors"`` -> ``"num_of_doors"``), ``input_`` in front of a leading digit
    or ``_``."""
    name = _NOT_IN_NAMES.sub("_", str(key))
    return name if re.match(r"[A-Za-z]", name) else f"input_{name}"


def unique_op_names(keys: list[Any]) -> list[str]:
    """:func:`op_name` of each key, made unique with ``_1``, ``_2``, ... suffixes."""
    names: list[str] = []
    for key in keys:
        name, n = op_name(key), 0
        while (candidate := name if n == 0 else f"{name}_{n}") in names:
            n += 1
        names.append(candidate)
    return names
