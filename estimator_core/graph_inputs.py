"""What an input_fn returns, inside a TF1 graph: the features and labels model_fn is built on.

tf.estimator accepted three kinds of input_fn results, and so does the graph backend:

* a ``tf.data.Dataset`` of ``(features, labels)`` or of features. The mode graph reads it
  through a reinitializable iterator (``Iterator.from_structure``), so the same graph serves
  every later input_fn whose Dataset has a compatible structure, and each evaluation restarts
  its Dataset by running that Dataset's initializer: nothing is rebuilt;
* ``(features, labels)``, a tuple of two (e.g. ``iterator.get_next()`` of
  ``tf.compat.v1.data.make_one_shot_iterator``), or features alone: tensors built in the
  graph. model_fn is built on them; such an input cannot be restarted, so EVAL and PREDICT
  build a new graph for each call, as tf.estimator did;
* Python values or NumPy arrays in those structures (converted to constants).

A tensor input that reads no iterator or queue yields the same values at every step, for ever.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

# Ops whose output ends with OutOfRangeError when their input pipeline is exhausted.
_PIPELINE_OPS = frozenset(
    {
        "IteratorGetNext",
        "IteratorGetNextSync",
        "IteratorGetNextAsOptional",
        "QueueDequeueV2",
        "QueueDequeueManyV2",
        "QueueDequeueUpToV2",
        "ReaderReadV2",
        "ReaderReadUpToV2",
    }
)


class InputError(ValueError):
    """An input_fn returned something the Estimator cannot train, evaluate or predict on."""


def split_input_result(result: Any, owner: str = "input_fn") -> tuple[Any, Any]:
    """``(features, labels)`` of a non-Dataset input_fn result (labels None when absent)."""
    if isinstance(result, (tuple, list)):
        if len(result) != 2:
            raise InputError(
                f"{owner} returned a {type(result).__name__} of {len(result)} elements; "
                "it must return a Dataset, features, or a len 2 tuple (features, labels)"
            )
        return result[0], result[1]
    return result, None


def _to_tensors(value: Any, what: str) -> Any:
    if value is None:
        return None

    def convert(leaf: Any) -> Any:
        if isinstance(leaf, (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)):
            return leaf
        try:
            return tf.convert_to_tensor(leaf)
        except (TypeError, ValueError) as err:
            raise InputError(f"input_fn: {what} holds {leaf!r}, not a tensor: {err}") from err

    return tf.nest.map_structure(convert, value)


class GraphInput:
    """An input_fn's result in one graph, ready for model_fn.

    ``features``/``labels``: the tensors model_fn is built on. For a Dataset they are the
    ``get_next()`` of a reinitializable iterator of its structure, and ``initializer`` starts
    the Dataset from its beginning; for tensors ``initializer`` is None and ``restartable``
    False. ``infinite``: the input never ends (a repeated Dataset, or constant tensors).
    """

    def __init__(
        self,
        features: Any,
        labels: Any,
        initializer: tf.Operation | None,
        infinite: bool | None,
        iterator: Any = None,
        dataset: tf.data.Dataset | None = None,
        initializer_feed: dict[Any, Any] | None = None,
    ) -> None:
        self.features = features
        self.labels = labels
        self.initializer = initializer
        self.infinite = infinite
        self.iterator = iterator
        self.dataset = dataset
        self.initializer_feed = initializer_feed

    @property
    def restartable(self) -> bool:
        return self.initializer is not None

    def flat_tensors(self) -> list[tf.Tensor]:
        flat = tf.nest.flatten((self.features, self.labels), expand_composites=True)
        return [t for t in flat if t is not None]


class EagerDataset:
    """A Dataset input_fn built eagerly (when the Estimator had to call it before it knew its
    backend), to be rebuilt in a graph from its serialized graph: input_fn is not called twice.
    """

    def __init__(self, dataset: tf.data.Dataset) -> None:
        self.element_spec = dataset.element_spec
        self.infinite = int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
        self.serialized = _serialized(dataset)


def _serialized(dataset: tf.data.Dataset) -> bytes | None:
    """The Dataset's graph, or None when it holds state a graph cannot carry (a Python
    generator, ``tf.py_function``)."""
    try:
        return dataset._as_serialized_graph(  # the form tf.data moves datasets between devices in
            external_state_policy=tf.data.experimental.ExternalStatePolicy.FAIL
        ).numpy()
    except (tf.errors.OpError, ValueError, TypeError, AttributeError):
        return None


def input_from_eager(eager: EagerDataset) -> GraphInput:
    """A :class:`GraphInput` reading ``eager``'s Dataset, rebuilt in the current graph.

    The serialized graph is fed to the initializer (a constant would be folded into an
    unserializable tensor by the graph optimizer)."""
    assert eager.serialized is not None
    serialized = tf.compat.v1.placeholder(tf.string, [], name="serialized_input_dataset")
    dataset = tf.data.experimental.from_variant(
        tf.raw_ops.DatasetFromGraph(graph_def=serialized), eager.element_spec
    )
    graph_input = input_from_result(dataset)
    graph_input.infinite = eager.infinite
    graph_input.initializer_feed = {serialized: eager.serialized}
    return graph_input


def input_from_result(result: Any) -> GraphInput:
    """A :class:`GraphInput` for what input_fn returned, in the current default graph.

    A Dataset's cardinality is not known yet (``infinite`` None): the backend asks its session.
    """
    if isinstance(result, tf.data.Dataset):
        iterator = tf.compat.v1.data.Iterator.from_structure(
            tf.compat.v1.data.get_output_types(result),
            tf.compat.v1.data.get_output_shapes(result),
            output_classes=tf.compat.v1.data.get_output_classes(result),
        )
        element = iterator.get_next()
        features, labels = (
            element if isinstance(element, tuple) and len(element) == 2 else (element, None)
        )
        return GraphInput(
            features,
            labels,
            iterator.make_initializer(result),
            None,
            iterator=iterator,
            dataset=result,
        )
    features, labels = split_input_result(result)
    features = _to_tensors(features, "features")
    labels = _to_tensors(labels, "labels")
    graph_input = GraphInput(features, labels, None, None)
    graph_input.infinite = not reads_input_pipeline(graph_input.flat_tensors())
    return graph_input


def reinitializer(graph_input: GraphInput, result: Any) -> tf.Operation | None:
    """The initializer that feeds ``result`` (a later input_fn's Dataset, built in the same
    graph) through ``graph_input``'s iterator; None when it does not fit that iterator."""
    if not isinstance(result, tf.data.Dataset) or graph_input.iterator is None:
        return None
    try:  # make_initializer checks that the types and shapes are compatible
        return graph_input.iterator.make_initializer(result)
    except (TypeError, ValueError):
        return None


def reads_input_pipeline(tensors: list[tf.Tensor]) -> bool:
    """True when some tensor depends on an iterator or queue (the input can end)."""
    seen: set[int] = set()
    pending = [t.op for t in tensors]
    while pending:
        op = pending.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        if op.type in _PIPELINE_OPS:
            return True
        pending.extend(t.op for t in op.inputs)
        pending.extend(op.control_inputs)
    return False
