"""The TF2 backend: model_fn traced into one compiled ``tf.function`` loop per mode.

Each mode's loop runs many steps per call::

    def train_loop(iterator, num_steps):
        values = step(next(iterator))            # variables are created here, on the first trace
        for _ in tf.range(num_steps - 1):         # a tf.while_loop
            if loss is not finite: break
            batch = iterator.get_next_as_optional()
            if not batch.has_value(): break       # end of input
            values = step(batch.get_value())      # same variables, from the VariableStore
        return values

The functions are created once per backend and traced once per mode and input structure, so
alternating train() and evaluate() never retraces.

Under a ``tf.distribute`` strategy each TRAIN/EVAL step is ``strategy.run(step)`` on a
per-replica batch, reduced to one set of values (loss: mean over the replicas that had data;
predictions: this worker's replicas concatenated). Variables are created before any loop, by
one eager ``strategy.run`` of the step on a placeholder batch (see :meth:`FunctionBackend._build`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import ops as _tf_ops  # the gradient registry: see below

from estimator_core.backend import LoopResult, ModelFnBackend, resolve_named_fetches
from estimator_core.checkpoints import ObjectCheckpointFormat
from estimator_core.distribute import placeholder_element
from estimator_core.export.serving import ServingInputReceiver
from estimator_core.hooks import SessionRunArgs, SessionRunValues
from estimator_core.mode_keys import ModeKeys
from estimator_core.model_fn import ModelFn, split_element
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec, is_tf1_metric
from estimator_core.training_util import global_step_scope
from estimator_core.variables import CHECKPOINT_ROOT, VariableStore

_GLOBAL_STEP = "global_step"
_LOSS_AND_COUNT = "_loss_and_count"


class FunctionBackend(ModelFnBackend):
    """Runs model_fn in ``tf.function`` loops (or eagerly with ``run_eagerly``)."""

    def __init__(
        self,
        model_fn: ModelFn,
        train_summary_writer: tf.summary.SummaryWriter | None,
        save_summary_steps: int | None,
        run_eagerly: bool = False,
        jit_compile: bool = False,
        mixed_precision: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        if strategy is not None and jit_compile and not run_eagerly:
            raise ValueError("jit_compile is not supported with a distribution strategy yet")
        self._strategy = strategy
        self._model_fn = model_fn if run_eagerly else _autographed(model_fn)
        self._loss_scaling = mixed_precision == "mixed_float16"
        self._writer = train_summary_writer
        self._summary_every = save_summary_steps or 0
        self.store = VariableStore()
        with self._scope():
            # ONLY_FIRST_REPLICA: every replica adds one per step, the step counts once.
            self.global_step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name=_GLOBAL_STEP,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self._eval_loss = keras.metrics.Mean(name="eval_loss")
        self._specs: dict[str, EstimatorSpec] = {}
        self._prepared: set[str] = set()
        self._building = False
        self._run_eagerly = run_eagerly
        xla = jit_compile and not run_eagerly
        self._loop_steps = {
            # model_fn's own summaries cannot be written from inside an XLA cluster
            ModeKeys.TRAIN: functools.partial(self._train_step_recording, user_summaries=not xla),
            ModeKeys.EVAL: self._eval_step,
            ModeKeys.PREDICT: self._predict_step,
        }
        if xla:
            self._loop_steps = {mode: _xla(step) for mode, step in self._loop_steps.items()}
        if strategy is not None:
            for mode in (ModeKeys.TRAIN, ModeKeys.EVAL):
                self._loop_steps[mode] = self._distributed(self._loop_steps[mode])
        train_step = self._loop_steps[ModeKeys.TRAIN]
        self._loop_steps[ModeKeys.TRAIN] = lambda element, first_call: self._record_loss(
            train_step(element, first_call)
        )

        # Closures rather than bound methods: each backend gets functions of its own, so
        # TensorFlow's retracing detector does not count other Estimators' traces.
        def train_loop(iterator: Any, num_steps: Any, infinite: bool):
            return self._loop(self._loop_steps[ModeKeys.TRAIN], iterator, num_steps, infinite, True)

        def eval_loop(iterator: Any, num_steps: Any, infinite: bool):
            with tf.summary.record_if(False):
                return self._loop(
                    self._loop_steps[ModeKeys.EVAL], iterator, num_steps, infinite, False
                )

        def predict_loop(iterator: Any, num_batches: Any):
            return self._predict_loop(iterator, num_batches)

        if run_eagerly:
            self._train_loop, self._eval_loop = train_loop, eval_loop
            self._predict_loop_fn = predict_loop
        else:
            self._train_loop = _compiled(train_loop)
            self._eval_loop = _compiled(eval_loop)
            self._predict_loop_fn = _compiled(predict_loop)

    # -- ModelFnBackend ---------------------------------------------------------------------

    def make_iterator(self, dataset: tf.data.Dataset, mode: str) -> Any:
        if self._strategy is None or mode == ModeKeys.PREDICT:
            return iter(dataset)
        # Not experimental_distribute_dataset: that splits each batch across the replicas;
        # tf.estimator gave every replica a batch of its own.
        return iter(self._strategy.distribute_datasets_from_function(lambda _: dataset))

    def prepare(self, mode: str, iterator: Any, infinite: bool = False) -> None:
        if self._run_eagerly or mode in self._prepared:
            return
        with global_step_scope(self.global_step):
            self.store.refused_creation = None
            try:
                self._trace_loop(mode, iterator, infinite)
            except Exception:
                if self.store.refused_creation is None:
                    raise
                self._build(mode, iterator)  # the variables did not exist yet
                self._trace_loop(mode, iterator, infinite)
        self._prepared.add(mode)

    def _trace_loop(self, mode: str, iterator: Any, infinite: bool) -> None:
        count = tf.TensorSpec([], tf.int64)
        if mode == ModeKeys.PREDICT:
            traced = self._predict_loop_fn.get_concrete_function(iterator, count)
        else:
            loop = self._train_loop if mode == ModeKeys.TRAIN else self._eval_loop
            traced = loop.get_concrete_function(iterator, count, infinite)
        _unregister_custom_gradients(traced.graph)

    def _build(self, mode: str, iterator: Any) -> None:
        """Create the variables of ``mode`` in a throwaway trace of one step.

        Never in the loop: the loop orders every op after its input, and initializers that
        depend on the input cannot be lifted out of the function.
        """
        step = {
            ModeKeys.TRAIN: self._train_step,
            ModeKeys.EVAL: self._eval_step,
            ModeKeys.PREDICT: self._predict_step,
        }[mode]
        if self._strategy is not None:
            self._build_eagerly(step, iterator)
            return

        def build(iterator: Any) -> None:
            step(next(iterator), True)

        self._building = True
        try:
            _unregister_custom_gradients(_compiled(build).get_concrete_function(iterator).graph)
        finally:
            self._building = False

    def _build_eagerly(self, step: Callable[[Any, bool], Any], iterator: Any) -> None:
        """Create the variables under the strategy by running ``step`` once, eagerly, in every
        replica, on a placeholder batch; then undo what that step changed.

        Not in a trace: a mirrored variable's copies are initialised from its first copy, which
        TensorFlow cannot lift out of a function. In replica context: Keras metrics are
        sync-on-read variables that cannot be updated in cross-replica context. A Keras
        optimizer ``train_op`` is built (``optimizer.build``), not applied, and the global
        step is not counted.
        """
        element = placeholder_element(iterator.element_spec)
        before = [(v, tf.identity(v.read_value())) for v in self.store.checkpointed.values()]
        self.store.creations = []
        self._building = True
        tf_logger = logging.getLogger("tensorflow")
        level = tf_logger.level
        # Its warning that eager strategy.run is slow is about training loops, not this one call.
        tf_logger.setLevel(logging.ERROR)
        try:
            with self._strategy.scope(), tf.summary.record_if(False):
                self._strategy.run(self._in_replica(step, True), args=(element,))
        finally:
            tf_logger.setLevel(level)
            self._building = False
            created, self.store.creations = self.store.creations, None
        for variable, value in before + created:
            variable.assign(value)

    def train(
        self,
        iterator: Any,
        num_steps: int,
        infinite: bool = False,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> LoopResult:
        self.prepare(ModeKeys.TRAIN, iterator, infinite)
        return self._run(ModeKeys.TRAIN, iterator, num_steps, infinite, requests)

    def evaluate(
        self,
        iterator: Any,
        num_steps: int,
        infinite: bool = False,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> LoopResult:
        self.prepare(ModeKeys.EVAL, iterator, infinite)
        return self._run(ModeKeys.EVAL, iterator, num_steps, infinite, requests)

    def predict(
        self,
        iterator: Any,
        num_batches: int,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> tuple[list[Any], list[SessionRunValues | None] | None]:
        self.prepare(ModeKeys.PREDICT, iterator)
        with global_step_scope(self.global_step):
            try:
                count, flat, sizes = self._predict_loop_fn(
                    iterator, tf.constant(num_batches, tf.int64)
                )
            except tf.errors.OutOfRangeError:
                return [], None
        spec = self._specs[ModeKeys.PREDICT]
        bounds = np.cumsum(sizes.numpy()[: int(count)])[:-1]
        columns = [np.split(t.numpy(), bounds) for t in flat]
        batches = [
            tf.nest.pack_sequence_as(spec.predictions, [column[i] for column in columns])
            for i in range(int(count))
        ]
        last = batches[-1]
        values = dict(last) if isinstance(last, dict) else {"predictions": last}
        values["global_step"] = self.global_step.numpy()
        return batches, resolve_named_fetches(requests, values, spec)

    def reset_metrics(self) -> None:
        self._eval_loss.reset_state()
        for metric in self._eval_metrics():
            metric.reset_state()

    def metric_results(self) -> dict[str, np.ndarray]:
        spec = self._specs.get(ModeKeys.EVAL)
        results = {
            name: np.asarray(metric.result())
            for name, metric in (spec.eval_metric_ops if spec else {}).items()
        }
        results["loss"] = np.asarray(self._eval_loss.result())
        return results

    def traced_spec(self, mode: str) -> EstimatorSpec | None:
        return self._specs.get(mode)

    def write_saved_model(
        self,
        export_dir: str,
        serving_input_receiver_fn: Callable[[], ServingInputReceiver],
        checkpoint_path: str | None,
    ) -> None:
        receiver = serving_input_receiver_fn()
        if not isinstance(receiver, ServingInputReceiver):
            raise TypeError(
                "serving_input_receiver_fn must return an estimator_core.export."
                f"ServingInputReceiver, got {type(receiver).__name__}"
            )
        signatures, variables = self.serving_functions(receiver)
        # Keyed like the Estimator's checkpoints, so a SavedModel can be warm-started from.
        root = tf.train.Checkpoint(**{CHECKPOINT_ROOT: variables})
        tf.saved_model.save(root, export_dir, signatures=signatures)

    def checkpoint_format(self, config: RunConfig, directory: str) -> ObjectCheckpointFormat:
        return ObjectCheckpointFormat(self.store, self.global_step, config, directory)

    def serving_functions(
        self, receiver: ServingInputReceiver
    ) -> tuple[dict[str, Callable[..., Any]], dict[str, tf.Variable]]:
        used: dict[int, tf.Variable] = {}
        specs: list[EstimatorSpec] = []

        def serve(receiver_tensors: dict[str, tf.Tensor]) -> EstimatorSpec:
            with self.store.model_fn_call(ModeKeys.PREDICT, allow_creation=True) as call:
                spec = self._model_fn(receiver.features(receiver_tensors), None, ModeKeys.PREDICT)
            used.update((id(v), v) for v in call.used)
            specs.append(spec)
            return spec

        def discover_signatures(receiver_tensors: dict[str, tf.Tensor]) -> None:
            serve(receiver_tensors)

        with global_step_scope(self.global_step):
            _compiled(discover_signatures).get_concrete_function(
                dict(receiver.receiver_tensors_spec)
            )
            signatures = {
                name: _signature_function(serve, name, receiver)
                for name in specs[-1].export_outputs
            }
        names = {id(v): key for key, v in self.store.checkpointed.items()}
        return signatures, {names[i]: v for i, v in used.items() if i in names}

    # -- compiled bodies --------------------------------------------------------------------

    def _run(
        self,
        mode: str,
        iterator: Any,
        num_steps: int,
        infinite: bool,
        requests: Sequence[SessionRunArgs | None],
    ) -> LoopResult:
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        loop = self._train_loop if mode == ModeKeys.TRAIN else self._eval_loop
        with global_step_scope(self.global_step):
            steps, values = loop(iterator, tf.constant(num_steps, tf.int64), bool(infinite))
        values = {name: np.asarray(v) for name, v in values.items()}
        named = {**values, "global_step": self.global_step.numpy()}
        hook_values = resolve_named_fetches(requests, named, self._specs.get(mode))
        return LoopResult(int(steps), values, hook_values)

    def _loop(
        self,
        step: Callable[[Any, bool], dict[str, Any]],
        iterator: Any,
        num_steps: Any,
        infinite: bool,
        stop_on_nan: bool,
    ):
        """Up to ``num_steps`` steps; the first outside the while loop seeds its loop variables.

        An ``infinite`` input (``repeat()``) is read with plain ``next``; a finite one through
        ``get_next_as_optional`` so the loop ends at the end of the input.
        """
        values = _after_input(step, next(iterator), True)

        def more(done: Any, has_input: Any, values: dict[str, Any]) -> Any:
            going = tf.logical_and(done < num_steps, has_input)
            if stop_on_nan:
                going = tf.logical_and(going, tf.reduce_all(tf.math.is_finite(values["loss"])))
            return going

        def one_more(done: Any, has_input: Any, values: dict[str, Any]):
            if infinite:
                return done + 1, has_input, _after_input(step, next(iterator), False)
            batch = iterator.get_next_as_optional()
            values = tf.cond(
                batch.has_value(),
                lambda: _after_input(step, batch.get_value(), False),
                lambda: values,
            )
            return done + tf.cast(batch.has_value(), tf.int64), batch.has_value(), values

        done, _, values = tf.while_loop(
            more,
            one_more,
            (tf.constant(1, tf.int64), tf.constant(True), values),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([]), _relaxed_shapes(values)),
        )
        return done, values

    def _predict_loop(self, iterator: Any, num_batches: Any):
        """Up to ``num_batches`` predictions, concatenated per output, with each batch's size."""
        predict_step = self._loop_steps[ModeKeys.PREDICT]
        first = tf.nest.flatten(_after_input(predict_step, next(iterator), True))
        arrays = [
            tf.TensorArray(t.dtype, size=0, dynamic_size=True, infer_shape=False).write(0, t)
            for t in first
        ]
        sizes = tf.TensorArray(tf.int64, size=0, dynamic_size=True).write(0, _batch_size(first))

        def more(done: Any, has_input: Any, arrays: list[Any], sizes: Any) -> Any:
            return tf.logical_and(done < num_batches, has_input)

        def one_more(done: Any, has_input: Any, arrays: list[Any], sizes: Any):
            batch = iterator.get_next_as_optional()

            def append():
                flat = tf.nest.flatten(_after_input(predict_step, batch.get_value(), False))
                return (
                    [a.write(tf.cast(done, tf.int32), t) for a, t in zip(arrays, flat)],
                    sizes.write(tf.cast(done, tf.int32), _batch_size(flat)),
                )

            arrays, sizes = tf.cond(batch.has_value(), append, lambda: (arrays, sizes))
            return done + tf.cast(batch.has_value(), tf.int64), batch.has_value(), arrays, sizes

        done, _, arrays, sizes = tf.while_loop(
            more, one_more, (tf.constant(1, tf.int64), tf.constant(True), arrays, sizes)
        )
        return done, [a.concat() for a in arrays], sizes.stack()

    def _train_step(self, element: Any, first_call: bool) -> dict[str, Any]:
        """One training step; model_fn's own tf.summary calls are recorded (not under XLA)."""
        return self._train_step_recording(element, first_call, user_summaries=True)

    def _train_step_recording(
        self, element: Any, first_call: bool, user_summaries: bool
    ) -> dict[str, Any]:
        # A root name scope: summary tags and variable names must not depend on the loop's
        # control-flow scopes ("while/cond_1/...").
        with tf.compat.v1.name_scope(None):
            features, labels = split_element(element)
            summaries = (
                self._summary_context(self.global_step + 1)
                if user_summaries
                else tf.summary.record_if(False)
            )
            with summaries:
                with self.store.model_fn_call(ModeKeys.TRAIN, self._may_create(first_call)) as call:
                    with tf.GradientTape() as tape:
                        spec = self._model_fn(features, labels, ModeKeys.TRAIN)
                    # Inside the store's scope, so the optimizer's slots are checkpointed. The
                    # build pass only builds the optimizer: applying gradients in a trace would
                    # register a gradient function for its all-reduce that is never freed
                    # (see _unregister_custom_gradients).
                    _apply_train_op(
                        spec,
                        tape,
                        call.trainable_variables(),
                        self._loss_scaling,
                        build_only=self._building,
                    )
                self._remember(ModeKeys.TRAIN, spec, first_call)
            if not self._building:
                self.global_step.assign_add(1)
            return _step_values(spec)

    def _record_loss(self, values: dict[str, Any]) -> dict[str, Any]:
        """The loss summary, outside any XLA cluster, at the step just completed."""
        with tf.compat.v1.name_scope(None), self._summary_context(self.global_step):
            tf.summary.scalar("loss", values["loss"])
        return values

    def _eval_step(self, element: Any, first_call: bool) -> dict[str, Any]:
        features, labels = split_element(element)
        with self.store.model_fn_call(ModeKeys.EVAL, self._may_create(first_call)):
            spec = self._model_fn(features, labels, ModeKeys.EVAL)
        for name, metric in spec.eval_metric_ops.items():
            if is_tf1_metric(metric):
                raise ValueError(
                    f"EstimatorSpec.eval_metric_ops[{name!r}] is a TF1 (value_op, update_op) "
                    "pair, which only the graph backend runs (RunConfig(backend='graph')); the "
                    "function backend takes Keras metrics (estimator_core.metrics.*)"
                )
        self._remember(ModeKeys.EVAL, spec, first_call)
        loss = tf.cast(spec.loss, tf.float32)
        if self._strategy is None:
            self._eval_loss.update_state(loss)
        else:
            # At the end of the input some replicas get an empty batch (a NaN mean loss);
            # the mean of batch losses leaves them out.
            has_data = _batch_size(tf.nest.flatten(features)) > 0
            self._eval_loss.update_state(
                tf.where(has_data, loss, 0.0), sample_weight=tf.cast(has_data, tf.float32)
            )
        return _step_values(spec)

    def _predict_step(self, element: Any, first_call: bool) -> Any:
        features, _ = split_element(element)
        with self.store.model_fn_call(ModeKeys.PREDICT, self._may_create(first_call)):
            spec = self._model_fn(features, None, ModeKeys.PREDICT)
        self._remember(ModeKeys.PREDICT, spec, first_call)
        return spec.predictions

    # -- distribution -----------------------------------------------------------------------

    def _scope(self) -> Any:
        return self._strategy.scope() if self._strategy is not None else _Both()

    def _in_replica(self, step: Callable[[Any, bool], Any], first_call: bool):
        """``step`` as a replica function: the global step is thread-local and a strategy runs
        each replica in a thread of its own."""

        def replica_fn(element: Any) -> Any:
            with global_step_scope(self.global_step):
                return _after_input(step, element, first_call)

        return replica_fn

    def _distributed(self, step: Callable[[Any, bool], dict[str, Any]]):
        """``step`` run in every replica on its batch, its values reduced across replicas."""
        strategy = self._strategy

        def run(element: Any, first_call: bool) -> dict[str, Any]:
            def replica_fn(element: Any) -> dict[str, Any]:
                values = dict(self._in_replica(step, first_call)(element))
                has_data = _batch_size(tf.nest.flatten(split_element(element)[0])) > 0
                loss = tf.where(has_data, tf.cast(values.pop("loss"), tf.float32), 0.0)
                # One all-reduce for both: (loss, 1) from a replica with data, else (0, 0).
                values[_LOSS_AND_COUNT] = tf.stack([loss, tf.cast(has_data, tf.float32)])
                return values

            per_replica = strategy.run(replica_fn, args=(element,))
            total, count = tf.unstack(
                strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[_LOSS_AND_COUNT], axis=None)
            )
            values = {"loss": total / tf.maximum(count, 1.0)}
            for name, value in per_replica.items():
                if name != _LOSS_AND_COUNT:
                    values[name] = _local_concat(strategy, value)
            return values

        return run

    # -- helpers ----------------------------------------------------------------------------

    def _summary_context(self, step: Any):
        """Summaries at ``step`` to the train writer, recorded when it is a multiple of
        save_summary_steps."""
        if self._writer is None or not self._summary_every:
            return tf.summary.record_if(False)
        record = tf.equal(step % self._summary_every, 0)
        return _Both(self._writer.as_default(step=step), tf.summary.record_if(record))

    def _may_create(self, first_call: bool) -> bool:
        """Variables are created by a build trace, or by the first call when running eagerly."""
        return first_call and (self._building or self._run_eagerly)

    def _remember(self, mode: str, spec: EstimatorSpec, first_call: bool) -> None:
        # The first spec of a mode is kept: its hooks and metrics are the ones in use.
        if first_call:
            self._specs.setdefault(mode, spec)

    def _eval_metrics(self) -> list[keras.metrics.Metric]:
        spec = self._specs.get(ModeKeys.EVAL)
        return list(spec.eval_metric_ops.values()) if spec else []


class _Both:
    """Enter context managers as one (keeps the step function's nesting flat)."""

    def __init__(self, *managers: Any) -> None:
        self._managers = managers

    def __enter__(self) -> None:
        for manager in self._managers:
            manager.__enter__()

    def __exit__(self, *exc: Any) -> None:
        for manager in reversed(self._managers):
            manager.__exit__(*exc)


def _after_input(step: Callable[[Any, bool], dict[str, Any]], element: Any, first_call: bool):
    """Run ``step`` on ``element`` with every op of the step ordered after the input.

    Without it, updates that do not read the batch (the global step, a metric's count) may
    run before ``next(iterator)`` fails at the end of the input, and count a step that never was.
    """
    with tf.control_dependencies(tf.nest.flatten(element, expand_composites=True)):
        return step(element, first_call)


def _local_concat(strategy: tf.distribute.Strategy, value: Any) -> Any:
    """This worker's replicas' values of a prediction, concatenated along the batch."""
    parts = strategy.experimental_local_results(value)
    if len(parts) == 1 or parts[0].shape.rank == 0:
        return parts[0]
    return tf.concat(parts, axis=0)


def _relaxed_shapes(values: dict[str, Any]) -> dict[str, tf.TensorShape]:
    """Loop-variable shapes with the batch dimension free (the last batch may be smaller)."""
    return {
        name: tf.TensorShape([None]).concatenate(t.shape[1:]) if t.shape.rank else t.shape
        for name, t in values.items()
    }


def _batch_size(flat: list[tf.Tensor]) -> tf.Tensor:
    return tf.cast(tf.shape(flat[0])[0], tf.int64)


def _autographed(model_fn: ModelFn) -> ModelFn:
    """model_fn as ``tf.function`` would trace it: converted by AutoGraph, so Python control flow
    on tensors inside it becomes graph control flow. Converted once, here, for every mode."""

    def call_model_fn(features: Any, labels: Any, mode: str) -> EstimatorSpec:
        return model_fn(features, labels, mode)

    return tf.autograph.to_graph(call_model_fn)


def _unregister_custom_gradients(graph: tf.Graph) -> None:
    """Remove from TensorFlow's process-wide gradient registry the gradient functions that
    ``tf.custom_gradient`` registered for ``graph`` (a traced loop, run but never
    differentiated).

    Keras 3 optimizers sum gradients through ``ReplicaContext.all_reduce``, which in a graph
    registers a ``CustomGradient-<n>`` function per call, and nothing ever removes it: each
    holds its graph, so every Estimator built in a process left its traced loops behind
    (~12k objects, ~8 MB for the digits MLP). Only the names the graph's ops refer to (attr
    ``_gradient_op_type``, nested functions included) are removed, so another graph's, or
    another thread's, stay. A TensorFlow without this private registry is left as it is.
    """
    registry = getattr(getattr(_tf_ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        return
    graph_def = graph.as_graph_def()
    nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
    for node in nodes:
        if "_gradient_op_type" in node.attr:
            name = node.attr["_gradient_op_type"].s.decode()
            if name.startswith("CustomGradient-"):
                registry.pop(name, None)


def _compiled(fn: Callable[..., Any], jit_compile: bool = False) -> Any:
    """``tf.function(fn)`` without AutoGraph: the backend's own code is written with
    ``tf.while_loop``/``tf.cond``, and converting it again for each mode's first trace cost more
    than a tenth of a second (model_fn is converted on its own: :func:`_autographed`)."""
    return tf.function(fn, autograph=False, jit_compile=jit_compile)


def _xla(step: Callable[[Any, bool], Any]) -> Callable[[Any, bool], Any]:
    """``step`` compiled with XLA (inside the loop; the input stays outside the cluster)."""
    return _compiled(step, jit_compile=True)


def _apply_train_op(
    spec: EstimatorSpec,
    tape: tf.GradientTape,
    variables: list[tf.Variable],
    loss_scaling: bool,
    build_only: bool = False,
) -> None:
    """Apply ``spec.train_op``; ``build_only``: create a Keras optimizer's variables instead."""
    train_op = spec.train_op
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    optimizer = isinstance(train_op, keras.optimizers.Optimizer)
    if not optimizer and train_op is not None and replicas > 1:
        raise ValueError(
            "under a distribution strategy EstimatorSpec.train_op must be a Keras optimizer "
            "(a callable train_op cannot be told how gradients are summed across replicas)"
        )
    if optimizer:
        if loss_scaling and not isinstance(train_op, keras.optimizers.LossScaleOptimizer):
            # float16 gradients underflow without it; the wrapper unscales before applying.
            train_op = keras.optimizers.LossScaleOptimizer(train_op)
        if build_only:
            if not train_op.built:  # as the optimizer's own first apply() builds it
                with keras.name_scope(train_op.name, caller=train_op):
                    train_op.build(variables)
                train_op.built = True
            return
        scale = train_op.scale_loss(tf.ones([], spec.loss.dtype)) if loss_scaling else None
        if replicas > 1:
            # The optimizer sums the replicas' gradients: each replica contributes its share
            # of the mean over the global batch.
            share = tf.constant(1.0 / replicas, spec.loss.dtype)
            scale = share if scale is None else scale * share
        gradients = tape.gradient(spec.loss, variables, output_gradients=scale)
        pairs = [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
        if not pairs:
            raise ValueError(
                "EstimatorSpec.train_op is an optimizer but loss depends on none of the "
                f"{len(variables)} trainable variables model_fn created"
            )
        train_op.apply_gradients(pairs)
    elif callable(train_op):
        train_op(tape)


def _step_values(spec: EstimatorSpec) -> dict[str, Any]:
    values = {"loss": spec.loss}
    predictions = spec.predictions
    if isinstance(predictions, dict):
        values.update(predictions)
    elif predictions is not None:
        values["predictions"] = predictions
    return values


def _signature_function(
    serve: Callable[..., EstimatorSpec], name: str, receiver: ServingInputReceiver
) -> Any:
    def signature(**receiver_tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        return serve(receiver_tensors).export_outputs[name].as_signature_outputs()

    return _compiled(signature).get_concrete_function(**receiver.receiver_tensors_spec)
