"""One mode's TF1 graph: input_fn and model_fn built into a ``tf.compat.v1.Graph``, the ops the
Estimator runs derived from the EstimatorSpec, and the session that runs them.

What tf.estimator built around model_fn, built the same way here:

* the graph-level seed (``RunConfig.tf_random_seed``) and the global step
  (``tf.compat.v1.train.get_or_create_global_step()``) exist before input_fn is called;
* TRAIN: a ``loss`` summary unless model_fn wrote one, the merged summary op, and a default
  ``Saver`` (sharded, relative paths, ``keep_checkpoint_max``,
  ``keep_checkpoint_every_n_hours``) unless model_fn put one in the ``SAVERS`` collection or
  its Scaffold. When ``train_op`` does not advance the global step (checked on the graph: no
  assignment to it among the ops ``train_op`` depends on), one is added after it, so the
  global step always counts training steps;
* EVAL: ``loss`` becomes the streaming mean ``tf.compat.v1.metrics.mean(loss)``;
  ``eval_metric_ops`` must be ``(value, update_op)`` pairs;
* the Scaffold (model_fn's or a default one) is finalized: its ``init_op``, ``local_init_op``,
  ``saver`` and ``init_fn`` are what the session is initialised with.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from estimator_core.graph_inputs import GraphInput, reinitializer
from estimator_core.mode_keys import ModeKeys
from estimator_core.spec import EstimatorSpec
from estimator_core.tf1_keras import tf1_keras_scope
from estimator_core.training_util import global_step_scope

LOSS_KEY = "loss"
_ASSIGN_OPS = frozenset(
    {"AssignAddVariableOp", "AssignVariableOp", "AssignSubVariableOp", "AssignAdd", "Assign"}
)


class GraphModelFnError(ValueError):
    """model_fn returned something a TF1 graph cannot run (names the field at fault)."""


@dataclasses.dataclass
class SaverSettings:
    """How the TRAIN graph's default Saver keeps checkpoints (RunConfig's settings)."""

    max_to_keep: int | None
    keep_checkpoint_every_n_hours: float | None


@contextlib.contextmanager
def extending(graph: tf.Graph) -> Iterator[None]:
    """Add ops to a finalized ``graph`` (a live session runs them as soon as they exist)."""
    was_finalized = graph.finalized
    if was_finalized:
        graph._unsafe_unfinalize()  # graphs stay finalized while steps run
    try:
        with graph.as_default():
            yield
    finally:
        if was_finalized:
            graph.finalize()


@dataclasses.dataclass(eq=False)
class ModeGraph:
    """A built mode graph and, once :meth:`open` ran, its session."""

    mode: str
    graph: tf.Graph
    input: GraphInput
    spec: EstimatorSpec
    global_step: tf.Variable
    scaffold: tf.compat.v1.train.Scaffold
    # TRAIN
    train_op: tf.Operation | None = None
    step_after: tf.Tensor | None = None
    summary_op: tf.Tensor | None = None
    # EVAL
    metric_values: dict[str, tf.Tensor] = dataclasses.field(default_factory=dict)
    update_op: tf.Operation | None = None
    metric_reset: tf.Operation | None = None
    # model_fn's Scaffold has its own saver: weights come from checkpoints through it
    own_saver: bool = False
    session: tf.compat.v1.Session | None = None
    version: int = -1
    _transfer: dict[str, tuple[tf.Variable, tf.Tensor]] | None = None
    _transfer_op: tf.Operation | None = None
    _global_step_read: tf.Tensor | None = None
    _callables: dict[Any, Callable[..., Any]] = dataclasses.field(default_factory=dict)

    # -- session ---------------------------------------------------------------------------

    def open(self, session_config: tf.compat.v1.ConfigProto | None) -> None:
        """Create the session and initialise every variable (the Scaffold's init_op and
        local_init_op; its init_fn runs when these become the first weights: see
        :class:`~estimator_core.graph_weights.GraphWeights`)."""
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config)
        scaffold = self.scaffold
        self.session.run(scaffold.init_op, feed_dict=scaffold.init_feed_dict)
        if scaffold.local_init_op is not None:
            self.session.run(scaffold.local_init_op, feed_dict=scaffold.local_init_feed_dict)

    def run_init_fn(self) -> None:
        if self.scaffold.init_fn is not None:
            self.scaffold.init_fn(self.session)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def run_callable(self, fetches: Any) -> Callable[..., Any]:
        """``session.make_callable(fetches)``, cached: a step costs one C call."""
        key = tuple(id(f) for f in tf.nest.flatten(fetches))
        fn = self._callables.get(key)
        if fn is None:
            assert self.session is not None
            fn = self._callables[key] = self.session.make_callable(fetches)
        return fn

    def global_step_value(self) -> int:
        if self._global_step_read is None:
            with extending(self.graph):
                self._global_step_read = tf.identity(self.global_step.read_value())
        assert self.session is not None
        return int(self.session.run(self._global_step_read))

    def start_input(self, initializer: tf.Operation | None, feed: dict | None = None) -> None:
        if initializer is not None:
            assert self.session is not None
            self.session.run(initializer, feed_dict=feed)

    def input_cardinality(self, dataset: tf.data.Dataset) -> int:
        with extending(self.graph):
            cardinality = dataset.cardinality()
        assert self.session is not None
        return int(self.session.run(cardinality))

    # -- weights ---------------------------------------------------------------------------

    def saveables(self) -> dict[str, Any]:
        """What a Saver of this graph saves, by checkpoint name: variables, or other saveable
        objects (lookup tables, partitioned variables as lists)."""
        from tensorflow.python.training.saving import saveable_object_util

        with self.graph.as_default():
            return saveable_object_util.op_list_to_dict(
                tf.compat.v1.global_variables()
                + tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SAVEABLE_OBJECTS),
                convert_variable_to_tensor=False,
            )

    def transferable(self) -> dict[str, tuple[tf.Variable, tf.Tensor]] | None:
        """``{name: (variable, placeholder)}`` of every saveable, when each is one variable
        (then weights move between sessions through memory); None otherwise."""
        if self._transfer is None:
            names = self.saveables()
            if not all(isinstance(v, tf.Variable) for v in names.values()):
                return None
            with extending(self.graph), tf.compat.v1.name_scope("estimator_core_transfer"):
                self._transfer = {
                    name: (v, tf.compat.v1.placeholder(v.dtype.base_dtype, v.shape))
                    for name, v in names.items()
                }
                self._transfer_op = tf.group(
                    *[v.assign(p, read_value=False) for v, p in self._transfer.values()]
                )
        return self._transfer

    def read_weights(self, names: list[str]) -> list[np.ndarray]:
        transfer = self.transferable()
        assert transfer is not None and self.session is not None
        return self.session.run([transfer[n][0] for n in names])

    def write_weights(self, values: Mapping[str, np.ndarray]) -> None:
        transfer = self.transferable()
        assert transfer is not None and self.session is not None
        feed = {transfer[name][1]: value for name, value in values.items()}
        if len(feed) == len(transfer):
            self.session.run(self._transfer_op, feed_dict=feed)
            return
        with extending(self.graph):
            ops = [transfer[name][0].assign(transfer[name][1]) for name in values]
        self.session.run(ops, feed_dict=feed)


@dataclasses.dataclass
class BuildTrace:
    """What a build did, also when it failed: its graph, the spec model_fn returned, and the
    ``tf.compat.v1`` Keras names model_fn looked up (the backend choice reads them)."""

    graph: tf.Graph | None = None
    spec: EstimatorSpec | None = None
    tf1_names: set[str] = dataclasses.field(default_factory=set)


def build_mode_graph(
    mode: str,
    graph_input_fn: Callable[[], GraphInput],
    model_fn: Callable[[Any, Any, str], EstimatorSpec],
    seed: int | None,
    saver_settings: SaverSettings,
    trace: BuildTrace | None = None,
) -> ModeGraph:
    """Call input_fn (through ``graph_input_fn``) and model_fn in a new graph and derive the
    ops of ``mode``."""
    trace = trace if trace is not None else BuildTrace()
    graph = trace.graph = tf.Graph()
    with graph.as_default(), tf1_keras_scope(trace.tf1_names):
        if seed is not None:
            tf.compat.v1.set_random_seed(seed)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        graph_input = graph_input_fn()
        with global_step_scope(global_step):
            spec = trace.spec = model_fn(graph_input.features, graph_input.labels, mode)
        mode_graph = _derive(mode, graph, graph_input, spec, global_step, saver_settings)
    graph.finalize()
    return mode_graph


def input_in_graph(mode_graph: ModeGraph, call_input_fn: Callable[[], Any]) -> Any:
    """Call a later input_fn in ``mode_graph``: its initializer when it is a Dataset that fits
    the graph's iterator, else None (the caller builds a new graph)."""
    if mode_graph.input.iterator is None:
        return None
    with extending(mode_graph.graph), tf1_keras_scope():
        result = call_input_fn()
        initializer = reinitializer(mode_graph.input, result)
    if initializer is None:
        return None
    return initializer, result


def _derive(
    mode: str,
    graph: tf.Graph,
    graph_input: GraphInput,
    spec: EstimatorSpec,
    global_step: tf.Variable,
    saver_settings: SaverSettings,
) -> ModeGraph:
    check_graph_spec(spec, graph)
    fields: dict[str, Any] = {}
    if mode == ModeKeys.TRAIN:
        train_op = _as_op(spec.train_op, "train_op")
        if not _advances(train_op, global_step):
            with tf.control_dependencies([train_op]):
                train_op = global_step.assign_add(1, read_value=False)
        with tf.control_dependencies([train_op]):
            fields["step_after"] = tf.identity(global_step.read_value())
        fields["train_op"] = train_op
        summaries = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SUMMARIES)
        if not any(s.op.name == LOSS_KEY for s in summaries):
            tf.compat.v1.summary.scalar(LOSS_KEY, spec.loss)
        if not (
            (spec.scaffold is not None and spec.scaffold.saver is not None)
            or tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SAVERS)
        ):
            tf.compat.v1.add_to_collection(
                tf.compat.v1.GraphKeys.SAVERS,
                tf.compat.v1.train.Saver(
                    sharded=True,
                    max_to_keep=saver_settings.max_to_keep,
                    keep_checkpoint_every_n_hours=saver_settings.keep_checkpoint_every_n_hours,
                    defer_build=True,
                    save_relative_paths=True,
                ),
            )
    elif mode == ModeKeys.EVAL:
        metrics = dict(spec.eval_metric_ops)  # "loss" and "global_step" are refused by ModelFn
        metrics[LOSS_KEY] = tf.compat.v1.metrics.mean(spec.loss)
        fields["metric_values"] = {name: value for name, (value, _) in metrics.items()}
        fields["update_op"] = tf.group(*[update for _, update in metrics.values()])
        fields["metric_reset"] = tf.compat.v1.variables_initializer(
            tf.compat.v1.local_variables()
            + tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.METRIC_VARIABLES)
        )
    fields["own_saver"] = spec.scaffold is not None and spec.scaffold.saver is not None
    scaffold = spec.scaffold if spec.scaffold is not None else tf.compat.v1.train.Scaffold()
    if not isinstance(scaffold, tf.compat.v1.train.Scaffold):
        raise GraphModelFnError(
            f"EstimatorSpec.scaffold must be a tf.compat.v1.train.Scaffold, got "
            f"{type(scaffold).__name__}"
        )
    scaffold.finalize()
    mode_graph = ModeGraph(mode, graph, graph_input, spec, global_step, scaffold, **fields)
    if mode == ModeKeys.TRAIN:
        mode_graph.summary_op = scaffold.summary_op
    return mode_graph


def check_graph_spec(spec: EstimatorSpec, graph: tf.Graph) -> None:
    """Every tensor of the spec is from ``graph``; the TF2 forms are named as such."""
    for field in ("loss", "predictions"):
        for tensor in tf.nest.flatten(getattr(spec, field)):
            _check_from_graph(tensor, graph, field)
    if spec.mode == ModeKeys.TRAIN:
        _as_op(spec.train_op, "train_op")
    for name, metric in spec.eval_metric_ops.items():
        if not (isinstance(metric, (tuple, list)) and len(metric) == 2):
            raise GraphModelFnError(
                f"EstimatorSpec.eval_metric_ops[{name!r}] is a {type(metric).__name__}; a TF1 "
                "graph model_fn gives (value_op, update_op) pairs, e.g. "
                "tf.compat.v1.metrics.accuracy(labels, predictions) (a Keras metric object is "
                "the function backend's form)"
            )
        for part in metric:
            _check_from_graph(part, graph, f"eval_metric_ops[{name!r}]")


def _check_from_graph(value: Any, graph: tf.Graph, field: str) -> None:
    if value is None:
        return
    value_graph = getattr(value, "graph", None)
    if value_graph is None:
        raise GraphModelFnError(
            f"EstimatorSpec.{field} holds {type(value).__name__} {value!r}, not a tensor of "
            "model_fn's graph"
        )
    if value_graph is not graph:
        raise GraphModelFnError(
            f"EstimatorSpec.{field}: {value!r} must be from the default graph model_fn was "
            "called in (it was created in another graph)"
        )


def _as_op(train_op: Any, field: str) -> tf.Operation:
    if isinstance(train_op, tf.Operation):
        return train_op
    if isinstance(train_op, (tf.Tensor, tf.Variable)):
        return train_op.op
    kind = type(train_op).__name__
    hint = ""
    if callable(train_op) or isinstance(train_op, keras.optimizers.Optimizer):
        hint = (
            " (a Keras optimizer or a callable train_op is the function backend's form; in a "
            "TF1 graph model_fn return optimizer.minimize(loss, global_step=...))"
        )
    raise GraphModelFnError(
        f"EstimatorSpec.{field} must be a tf.Operation or tf.Tensor of model_fn's graph, "
        f"got {kind}{hint}"
    )


def _advances(train_op: tf.Operation, global_step: tf.Variable) -> bool:
    """True when an op ``train_op`` depends on assigns to ``global_step``."""
    handle = global_step.handle if hasattr(global_step, "handle") else global_step._ref()
    seen: set[int] = set()
    pending = [train_op]
    while pending:
        op = pending.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        if op.type in _ASSIGN_OPS and op.inputs and op.inputs[0] is handle:
            return True
        pending.extend(t.op for t in op.inputs)
        pending.extend(op.control_inputs)
    return False
