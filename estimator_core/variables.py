"""The variable store: one set of variables shared by every call of model_fn.

A seed-style model_fn builds new Keras layers, optimizers and metrics on every call, and Keras
names them anew each time (``dense``, ``dense_1``, ...). The store intercepts variable creation
with ``tf.variable_creator_scope`` and hands back the variable it already holds for the same
*key*: the variable's name relative to model_fn's name scope, with every ``_<digits>`` suffix
removed, plus ``_<k>`` for the k-th variable (k >= 1) of that name in one model_fn call.
So the same layer code gets the same variables in every mode and every retrace, and the keys
are the same in every process, which makes them the checkpoint's keys.

The rule that follows for model_fn: create the variables it shares in the same order in every
mode (giving layers explicit names makes the match independent of order).

Code that needs its variables under fixed names (the premade estimators keep tf.estimator's
``dnn/hiddenlayer_0/kernel``) creates them inside :func:`exact_names`, where the suffixes stay.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

try:  # TF1's variable store, isolated per model_fn call (see VariableStore.model_fn_call)
    from tensorflow.python.ops import variable_scope as _variable_scope
except ImportError:  # pragma: no cover
    _variable_scope = None

KeyMap = Callable[[str], "str | None"]
_NUMERIC_SUFFIX = re.compile(r"_\d+(?=$|/|_)")
CHECKPOINT_ROOT = "variables"
# Present in every object-based checkpoint; absent from TF1 Saver (name-based) ones.
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_exact = threading.local()


@contextlib.contextmanager
def exact_names() -> Iterator[None]:
    """Variables created inside (in model_fn, this thread) are keyed by their full name as is:
    ``tf.name_scope("dnn")`` + a Keras ``Dense(name="hiddenlayer_0")`` gives
    ``dnn/hiddenlayer_0/kernel``, where the default keying would give ``dnn/hiddenlayer/kernel``.

    The code inside must enter each name scope once per model_fn call: in a graph a second
    ``dnn`` scope is made unique as ``dnn_1``, whose variables would be new ones (and are
    refused after the first call).
    """
    previous = getattr(_exact, "on", False)
    _exact.on = True
    try:
        yield
    finally:
        _exact.on = previous


def tensor_key_function(reader: tf.train.CheckpointReader) -> Callable[[str], str]:
    """How a store key is found in the checkpoint ``reader`` reads: :func:`checkpoint_key` in
    an object-based checkpoint (the Estimator's), the name itself in a TF1 name-based one
    (tf.estimator's model.ckpt files, keyed ``dnn/hiddenlayer_0/kernel``)."""
    return checkpoint_key if reader.has_tensor(_OBJECT_GRAPH_KEY) else _same_key


class VariableMismatchError(ValueError):
    """A checkpoint does not fit the variables model_fn creates."""


class VariableCreationForbidden(ValueError):
    """model_fn asked for a variable the store does not hold where none may be created."""


def normalized_name(name: str) -> str:
    """``'sequential_3/dense_12/kernel'`` → ``'sequential/dense/kernel'``."""
    return _NUMERIC_SUFFIX.sub("", name)


def checkpoint_key(key: str) -> str:
    """The key of a store variable inside a ``tf.train.Checkpoint`` written by the Estimator.

    Object-based checkpoints escape ``.`` as ``..`` and ``/`` as ``.S`` in object names.
    """
    escaped = key.replace(".", "..").replace("/", ".S")
    return f"{CHECKPOINT_ROOT}/{escaped}/.ATTRIBUTES/VARIABLE_VALUE"


class VariableStore:
    """Variables created by model_fn, keyed by their normalized names.

    ``checkpointed`` holds the variables saved in checkpoints: all but the streaming-metric
    accumulators. Those (non-trainable variables summed across replicas, which is how every
    Keras metric creates its state) are local to the mode that created them, like TF1's local
    variables: a metric updated in TRAIN mode never leaks into an evaluation.
    """

    def __init__(self) -> None:
        self.variables: dict[str, tf.Variable] = {}
        self.checkpointed: dict[str, tf.Variable] = {}
        self._pending: tf.train.CheckpointReader | None = None
        self._pending_shapes: dict[str, list[int]] = {}
        self._pending_key: Callable[[str], str] = checkpoint_key
        self._source: KeyMap = _same_key
        self.refused_creation: str | None = None
        # While a list: each new checkpointed variable and its value at creation, so an eager
        # build pass that ran model_fn for real can put them back.
        self.creations: list[tuple[tf.Variable, tf.Tensor]] | None = None
        # Per thread: a tf.distribute strategy calls model_fn in one thread per replica.
        self._calls = threading.local()

    @contextlib.contextmanager
    def model_fn_call(self, mode: str, allow_creation: bool) -> Iterator[_CallState]:
        """Scope of one model_fn call: variables created inside are shared through the store.

        ``allow_creation=False`` turns the creation of a variable the store does not hold into
        an error (inside a compiled loop body TensorFlow cannot create variables).
        """
        state = _CallState(mode, tf.get_current_name_scope(), allow_creation)
        previous = getattr(self._calls, "state", None)
        self._calls.state = state
        try:
            # A fresh TF1 variable store per call: tf.compat.v1.get_variable then asks this
            # store (through the creator) instead of finding its own variable of an earlier
            # trace, or of another Estimator.
            with _tf1_variable_store(), tf.variable_creator_scope(self._creator):
                yield state
        finally:
            self._calls.state = previous
            state.unregister_tf1_collections()

    def set_pending_checkpoint(
        self, reader: tf.train.CheckpointReader | None, source: KeyMap | None = None
    ) -> None:
        """Variables created from now on take their initial values from ``reader`` when it has
        them. ``source`` maps a variable's key to the key to read (None: do not read); the
        checkpoint may be object-based or name-based (see :func:`tensor_key_function`)."""
        self._pending = reader
        self._pending_shapes = reader.get_variable_to_shape_map() if reader is not None else {}
        if reader is not None:
            self._pending_key = tensor_key_function(reader)
        self._source = source or _same_key

    def _creator(self, next_creator: Any, **kwargs: Any) -> tf.Variable:
        state = getattr(self._calls, "state", None)
        assert state is not None, "variable creator used outside model_fn_call"
        key = state.key_for(kwargs.get("name") or "Variable", full_name=_from_get_variable(kwargs))
        local = _is_metric_accumulator(kwargs)
        store_key = f"{key}@{state.mode}" if local else key
        existing = self.variables.get(store_key)
        if existing is not None:
            state.used.append(existing)
            if not local:
                state.register_tf1_collections(existing)
            return existing
        if not state.allow_creation:
            # Tracing may re-wrap the exception (autograph's StagingError): leave a mark too.
            self.refused_creation = key
            raise VariableCreationForbidden(
                f"model_fn created variable {key!r} that its first call did not create; "
                "model_fn must create the same variables on every call"
            )
        source = self._source(key) if self._pending is not None and not local else None
        ckpt_key = self._pending_key(source) if source is not None else None
        if ckpt_key in self._pending_shapes:
            kwargs["initial_value"] = self._checkpoint_value(key, ckpt_key, kwargs)
        variable = next_creator(**kwargs)
        if not local:
            state.register_tf1_collections(variable)
        self.variables[store_key] = variable
        if not local:
            self.checkpointed[key] = variable
            if self.creations is not None:
                self.creations.append((variable, tf.identity(variable.read_value())))
        state.used.append(variable)
        return variable

    def _checkpoint_value(self, key: str, ckpt_key: str, kwargs: dict[str, Any]) -> np.ndarray:
        assert self._pending is not None
        value = self._pending.get_tensor(ckpt_key)
        wanted = _requested_shape(kwargs)
        if wanted is not None and wanted.is_fully_defined() and list(wanted) != list(value.shape):
            raise VariableMismatchError(
                f"variable {key!r}: model_fn creates shape {wanted.as_list()} but the checkpoint "
                f"has shape {list(value.shape)}"
            )
        dtype = kwargs.get("dtype")
        if dtype is not None:
            value = value.astype(tf.as_dtype(dtype).as_numpy_dtype)
        return value

    def restore(
        self,
        reader: tf.train.CheckpointReader,
        path: str,
        require_all: bool,
        source: KeyMap | None = None,
    ) -> list[str]:
        """Assign checkpointed variables their values in ``reader``; later ones load lazily.

        ``source`` maps a variable's key to the key to read in the checkpoint (None: skip it).
        ``require_all``: a variable missing from the checkpoint is an error (restoring);
        otherwise it keeps its value (warm starting). Returns the keys assigned. The
        checkpoint may be object-based or name-based (see :func:`tensor_key_function`).
        """
        source = source or _same_key
        tensor_key = tensor_key_function(reader)
        shapes = reader.get_variable_to_shape_map()
        wanted = {key: source(key) for key in self.checkpointed}
        wanted = {key: src for key, src in wanted.items() if src is not None}
        missing = [key for key, src in wanted.items() if tensor_key(src) not in shapes]
        if missing and require_all:
            raise VariableMismatchError(
                f"checkpoint {path} lacks variable(s) {missing} that model_fn created"
            )
        assigned = []
        for key, src in wanted.items():
            if key in missing:
                continue
            variable = self.checkpointed[key]
            value = reader.get_tensor(tensor_key(src))
            if list(variable.shape) != list(value.shape):
                raise VariableMismatchError(
                    f"variable {key!r}: model_fn created shape {variable.shape.as_list()} but "
                    f"checkpoint {path} has shape {list(value.shape)} for {src!r}"
                )
            variable.assign(value)
            assigned.append(key)
        self.set_pending_checkpoint(reader, source)
        return assigned


class _CallState:
    def __init__(self, mode: str, name_scope: str, allow_creation: bool) -> None:
        self.mode = mode
        self.allow_creation = allow_creation
        self._prefix = f"{name_scope}/" if name_scope else ""
        self._counts: dict[str, int] = {}
        self.used: list[tf.Variable] = []
        self._registered: list[tuple[list[Any], tf.Variable]] = []

    def key_for(self, name: str, full_name: bool = False) -> str:
        """The key of a variable named ``name`` (``full_name``: a TF1 variable-scope path,
        which already holds the scopes)."""
        scope = "" if full_name else tf.get_current_name_scope()
        full = f"{scope}/{name}" if scope else name
        if self._prefix and full.startswith(self._prefix):
            full = full[len(self._prefix) :]
        base = full if getattr(_exact, "on", False) else normalized_name(full)
        occurrence = self._counts.get(base, 0)
        self._counts[base] = occurrence + 1
        return f"{base}_{occurrence}" if occurrence else base

    def register_tf1_collections(self, variable: tf.Variable) -> None:
        """Put ``variable`` in the current graph's GLOBAL_VARIABLES (and TRAINABLE_VARIABLES)
        collections for the rest of the call, as TF1 graph mode did: TF1 optimizers find
        their variables there (``tf.compat.v1.trainable_variables()``). A traced function
        writes these collections to the process-wide graph, so they are taken out again at the
        end of the call (:meth:`unregister_tf1_collections`)."""
        if tf.executing_eagerly():
            return
        graph = tf.compat.v1.get_default_graph()
        keys = [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES]
        if variable.trainable:
            keys.append(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)
        for key in keys:
            collection = graph.get_collection_ref(key)
            if not any(v is variable for v in collection):
                collection.append(variable)
                self._registered.append((collection, variable))

    def unregister_tf1_collections(self) -> None:
        for collection, variable in reversed(self._registered):
            # By identity: a variable's == is an element-wise comparison.
            for i in range(len(collection) - 1, -1, -1):
                if collection[i] is variable:
                    del collection[i]
                    break
        self._registered = []

    def trainable_variables(self) -> list[tf.Variable]:
        """The trainable variables this call used, each once, in order of first use."""
        seen: dict[int, tf.Variable] = {}
        for variable in self.used:
            if variable.trainable:
                seen.setdefault(id(variable), variable)
        return list(seen.values())


@contextlib.contextmanager
def _tf1_variable_store() -> Iterator[None]:
    if _variable_scope is None:  # a TensorFlow without these internals: TF1's own store
        yield
        return
    with _variable_scope.with_variable_store(_variable_scope._VariableStore()):
        yield


def _from_get_variable(kwargs: dict[str, Any]) -> bool:
    """True for a variable that ``tf.compat.v1.get_variable`` creates: its name is the full
    variable-scope path (``dense/kernel``) and the name scope must not be added again."""
    return "collections" in kwargs and "/" in (kwargs.get("name") or "")


def _same_key(key: str) -> str:
    return key


def _is_metric_accumulator(kwargs: dict[str, Any]) -> bool:
    return (
        kwargs.get("trainable") is False and kwargs.get("aggregation") == tf.VariableAggregation.SUM
    )


def _requested_shape(kwargs: dict[str, Any]) -> tf.TensorShape | None:
    if kwargs.get("shape") is not None:
        return tf.TensorShape(kwargs["shape"])
    initial = kwargs.get("initial_value")
    if initial is None or callable(initial):
        return None
    return tf.TensorShape(getattr(initial, "shape", np.shape(initial)))
