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
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import ops as _tf_ops  # the gradient registry: see below

from estimator_core.backend import LoopResult, ModelFnBackend
from estimator_core.checkpoints import ObjectCheckpointFormat
from estimator_core.distribute import placeholder_element
from estimator_core.export.saved_model import finish_signatures
from estimator_core.export.serving import (
    ServingInputReceiver,
    checked_receiver,
    unique_op_names,
)
from estimator_core.hooks import SessionRunValues
from estimator_core.mode_keys import ModeKeys
from estimator_core.model_fn import ModelFn, split_element
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec
from estimator_core.training_util import global_step_scope
from estimator_core.variables import CHECKPOINT_ROOT, VariableStore

_GLOBAL_STEP = "global_step"
_LOSS_AND_COUNT = "_loss_and_count"


class ServingSignatures(NamedTuple):
    """What :meth:`FunctionBackend.serving_functions` returns.

    ``functions``: signature name → concrete function taking the receiver tensors as keyword
    arguments; ``variables``: checkpoint key → variable, those the functions use;
    ``input_names``: signature name → {argument name the function has: input name}, for the
    input names that could not be argument names (written into the SavedModel afterwards);
    ``methods``: signature name → SignatureDef method name (``tensorflow/serving/predict``,
    ``.../classify`` or ``.../regress``).
    """

    functions: dict[str, Callable[..., Any]]
    variables: dict[str, tf.Variable]
    input_names: dict[str, dict[str, str]]
    methods: dict[str, str]


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
        if mode == ModeKeys.TRAIN and self._writer is not None:
            # TensorBoard's Graphs tab: the training loop, as tf.estimator's events had it.
            with self._writer.as_default():
                tf.summary.graph(traced.graph)
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
        self, iterator: Any, num_steps: int, infinite: bool = False, requests: Sequence[Any] = ()
    ) -> LoopResult:
        self.prepare(ModeKeys.TRAIN, iterator, infinite)
        return self._run(ModeKeys.TRAIN, iterator, num_steps, infinite, requests)

    def evaluate(
        self, iterator: Any, num_steps: int, infinite: bool = False, requests: Sequence[Any] = ()
    ) -> LoopResult:
        self.prepare(ModeKeys.EVAL, iterator, infinite)
        return self._run(ModeKeys.EVAL, iterator, num_steps, infinite, requests)

    def predict(
        self, iterator: Any, num_batches: int, requests: Sequence[Any] = ()
    ) -> tuple[list[Any], list[SessionRunValues | None]]:
        _check_no_feeds(requests)
        self.prepare(ModeKeys.PREDICT, iterator)
        with global_step_scope(self.global_step):
            count, flat, sizes = self._predict_loop_fn(iterator, tf.constant(num_batches, tf.int64))
        count = int(count)
        structure = self._specs[ModeKeys.PREDICT].predictions
        columns: list[list[Any]] = []
        for tensor, size in zip(flat, sizes, strict=True):
            array, size = tensor.numpy(), size.numpy()[:count]
            if size[0] < 0:  # a scalar output: one value per batch
                columns.append(list(array[:count]))
            else:
                columns.append(np.split(array, np.cumsum(size)[:-1]))
        outputs = [
            tf.nest.pack_sequence_as(structure, [column[i] for column in columns])
            for i in range(count)
        ]
        last = outputs[-1]
        values = dict(last) if isinstance(last, dict) else {"predictions": last}
        values["global_step"] = self.global_step.numpy()
        return outputs, _resolve_all(requests, values, self._specs[ModeKeys.PREDICT])

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

    def checkpoint_format(self, config: RunConfig, directory: str) -> ObjectCheckpointFormat:
        return ObjectCheckpointFormat(self.store, self.global_step, config, directory)

    def write_saved_model(
        self,
        export_dir: str,
        serving_input_receiver_fn: Callable[[], ServingInputReceiver],
        checkpoint_path: str,
    ) -> None:
        """``tf.saved_model.save`` of :meth:`serving_functions` (the weights in memory, which
        equal ``checkpoint_path``), with the signatures finished as tf.estimator wrote them
        (:func:`~estimator_core.export.saved_model.finish_signatures`)."""
        serving = self.serving_functions(serving_input_receiver_fn)
        # Keyed like the Estimator's checkpoints, so a SavedModel can be warm-started from.
        root = tf.train.Checkpoint(**{CHECKPOINT_ROOT: serving.variables})
        tf.saved_model.save(root, export_dir, signatures=serving.functions)
        finish_signatures(export_dir, serving.input_names, serving.methods)

    def serving_functions(
        self, serving_input_receiver_fn: Callable[[], ServingInputReceiver]
    ) -> ServingSignatures:
        """serving_input_receiver_fn and model_fn(PREDICT) built in one graph
        (``tf.compat.v1.wrap_function``, where placeholders are legal; the store hands back
        the Estimator's variables, which the graph captures), pruned into one function per
        signature: from the receiver tensors to an export output's tensors."""
        built: dict[str, Any] = {}

        def build(may_create: bool) -> None:
            receiver = checked_receiver(serving_input_receiver_fn())
            with self.store.model_fn_call(ModeKeys.PREDICT, allow_creation=may_create) as call:
                spec = self._model_fn(receiver.features, None, ModeKeys.PREDICT)
            built.update(receiver=receiver, spec=spec, used=call.used)

        with global_step_scope(self.global_step):
            self.store.refused_creation = None
            try:
                wrapped = tf.compat.v1.wrap_function(lambda: build(False), signature=[])
            except Exception:
                if self.store.refused_creation is None:
                    raise
                # model_fn has not run in this process: a trace (never run) creates the
                # variables, restored from the checkpoint, as the training loops' first trace does.
                _compiled(lambda: build(True)).get_concrete_function()
                wrapped = tf.compat.v1.wrap_function(lambda: build(False), signature=[])
        functions, input_names, methods = _signature_functions(
            wrapped, built["receiver"], built["spec"].export_outputs
        )
        names = {id(v): key for key, v in self.store.checkpointed.items()}
        variables = {names[id(v)]: v for v in built["used"] if id(v) in names}
        return ServingSignatures(functions, variables, input_names, methods)

    # -- compiled bodies --------------------------------------------------------------------

    def _run(
        self, mode: str, iterator: Any, num_steps: int, infinite: bool, requests: Sequence[Any]
    ) -> LoopResult:
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        _check_no_feeds(requests)
        loop = self._train_loop if mode == ModeKeys.TRAIN else self._eval_loop
        with global_step_scope(self.global_step):
            steps, values = loop(iterator, tf.constant(num_steps, tf.int64), bool(infinite))
        values = {name: np.asarray(v) for name, v in values.items()}
        values["global_step"] = self.global_step.numpy()
        hook_values = _resolve_all(requests, values, self._specs.get(mode))
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
        step = self._traced_once(step)
        values = _after_input(step, next(iterator), True)

        def more(done: Any, has_input: Any, values: dict[str, Any]) -> Any:
            going = tf.logical_and(done < num_steps, has_input)
            if stop_on_nan:
                going = tf.logical_and(going, tf.reduce_all(tf.math.is_finite(values["loss"])))
            return going

        def one_more(done: Any, has_input: Any, values: dict[str, Any]):
            if infinite:
                return done + 1, has_input, _after_input(step, next(iterator), True)
            batch = iterator.get_next_as_optional()
            values = tf.cond(
                batch.has_value(),
                lambda: _after_input(step, batch.get_value(), True),
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
        """Up to ``num_batches`` batches of predictions: per output, the batches concatenated
        (scalars stacked) and each batch's first dimension (-1 for a scalar output), so that
        every output comes back whole per batch whatever its first dimension."""
        predict_step = self._traced_once(self._loop_steps[ModeKeys.PREDICT])
        first = tf.nest.flatten(_after_input(predict_step, next(iterator), True))
        arrays = [
            tf.TensorArray(t.dtype, size=0, dynamic_size=True, infer_shape=False).write(0, t)
            for t in first
        ]
        sizes = [
            tf.TensorArray(tf.int64, size=0, dynamic_size=True).write(0, _leading_dim(t))
            for t in first
        ]

        def more(done: Any, has_input: Any, arrays: list[Any], sizes: list[Any]) -> Any:
            return tf.logical_and(done < num_batches, has_input)

        def one_more(done: Any, has_input: Any, arrays: list[Any], sizes: list[Any]):
            batch = iterator.get_next_as_optional()

            def append():
                flat = tf.nest.flatten(_after_input(predict_step, batch.get_value(), True))
                index = tf.cast(done, tf.int32)
                return (
                    [a.write(index, t) for a, t in zip(arrays, flat, strict=True)],
                    [s.write(index, _leading_dim(t)) for s, t in zip(sizes, flat, strict=True)],
                )

            arrays, sizes = tf.cond(batch.has_value(), append, lambda: (arrays, sizes))
            return done + tf.cast(batch.has_value(), tf.int64), batch.has_value(), arrays, sizes

        done, _, arrays, sizes = tf.while_loop(
            more, one_more, (tf.constant(1, tf.int64), tf.constant(True), arrays, sizes)
        )
        outputs = [a.concat() if t.shape.rank else a.stack() for a, t in zip(arrays, first)]
        return done, outputs, [s.stack() for s in sizes]

    def _traced_once(self, step: Callable[[Any, bool], Any]) -> Callable[[Any, bool], Any]:
        """``step`` as a function traced once for both of the loop's calls (the first step and
        the loop body), so model_fn is called once per trace of a loop, as tf.estimator called
        it once per graph. Kept as is eagerly and under a strategy (whose replica functions
        are traced by ``strategy.run``)."""
        if self._run_eagerly or self._strategy is not None:
            return step
        # _after_input inside: the outer loop's ordering does not reach into the function.
        traced = _compiled(lambda element: _after_input(step, element, True))
        return lambda element, first_call: traced(element)

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
            # TF1's contract: train_op advanced the global step. A step that moves it keeps
            # what it did; otherwise the Estimator counts the step (never both).
            before = self.global_step.read_value()
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
                unmoved = tf.equal(self.global_step.read_value(), before)
                self.global_step.assign_add(tf.cast(unmoved, tf.int64))
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
        self._remember(ModeKeys.EVAL, spec, first_call)
        for name, metric in spec.eval_metric_ops.items():
            if isinstance(metric, tuple):
                raise ValueError(
                    f"eval_metric_ops[{name!r}] is a TF1 (value, update_op) pair: the TF2 "
                    "function backend streams metric objects only; use a Keras metric "
                    "(e.g. estimator_core.metrics.mean(...)) updated in model_fn, or run the "
                    "TF1 model_fn in the graph backend (RunConfig(backend='graph'))"
                )
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
    """Apply ``spec.train_op``; ``build_only``: create a Keras optimizer's variables instead.

    An Operation or tensor train_op is an update model_fn already made: inside the traced step
    its stateful ops run anyway (automatic control dependencies), so there is nothing to do.
    """
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


def _check_no_feeds(requests: Sequence[Any]) -> None:
    for request in requests:
        if request is not None and getattr(request, "feed_dict", None):
            raise ValueError(
                "a hook's SessionRunArgs has a feed_dict (e.g. FeedFnHook): the TF2 function "
                "backend has no feeds; feed the values through input_fn's Dataset instead"
            )


def _resolve_all(
    requests: Sequence[Any], values: dict[str, Any], spec: EstimatorSpec | None
) -> list[SessionRunValues | None]:
    """Each request's fetches, looked up in ``values`` by name, or by identity for the tensors
    model_fn returned as ``loss`` or predictions."""
    by_identity: dict[int, str] = {}
    if spec is not None:
        if spec.loss is not None:
            by_identity[id(spec.loss)] = "loss"
        if isinstance(spec.predictions, dict):
            by_identity.update({id(t): k for k, t in spec.predictions.items()})
        elif spec.predictions is not None:
            by_identity[id(spec.predictions)] = "predictions"

    def lookup(fetch: Any) -> Any:
        name = fetch if isinstance(fetch, str) else by_identity.get(id(fetch))
        if name is None or name not in values:
            raise KeyError(
                f"hook fetch {fetch!r} is not available; a hook can fetch {sorted(values)} "
                "(by name, or the loss/predictions tensors model_fn returned)"
            )
        return values[name]

    return [
        None if r is None else SessionRunValues(tf.nest.map_structure(lookup, r.fetches))
        for r in requests
    ]


def _leading_dim(tensor: tf.Tensor) -> tf.Tensor:
    """The first dimension of ``tensor``, or -1 for a scalar."""
    if not tensor.shape.rank:
        return tf.constant(-1, tf.int64)
    return tf.cast(tf.shape(tensor)[0], tf.int64)


def _step_values(spec: EstimatorSpec) -> dict[str, Any]:
    values = {"loss": spec.loss}
    predictions = spec.predictions
    if isinstance(predictions, dict):
        values.update(predictions)
    elif predictions is not None:
        values["predictions"] = predictions
    return values


def _signature_functions(
    wrapped: Any, receiver: Any, export_outputs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, str]], dict[str, str]]:
    """One pruned function per export output and receiver: ``<output key>`` for the receiver
    tensors, ``<alternative>:<output key>`` for each of ``receiver_tensors_alternatives``
    (tf.estimator's names). Also, per signature, the input names TensorFlow must write
    otherwise (see :func:`estimator_core.export.saved_model.finish_signatures`) and the
    SignatureDef method name (see :meth:`~estimator_core.export.ExportOutput.method_name`).
    """
    receivers = {None: receiver.receiver_tensors, **(receiver.receiver_tensors_alternatives or {})}
    functions, input_names, methods = {}, {}, {}
    for receiver_name, tensors in receivers.items():
        for key, tensor in tensors.items():
            if not isinstance(tensor, tf.Tensor):
                raise TypeError(
                    f"receiver tensor {key!r} is a {type(tensor).__name__}: SavedModel "
                    "signatures take dense tensors only (feed a dense or serialized input and "
                    "build the sparse features from it in serving_input_receiver_fn)"
                )
        keys = list(tensors)
        for output_key, export_output in export_outputs.items():
            name = output_key if receiver_name is None else f"{receiver_name}:{output_key}"
            function = wrapped.prune(
                feeds=[tensors[k] for k in keys], fetches=export_output.as_signature_outputs()
            )
            # A pruned function's arguments are named after its feeds' ops (the placeholders'
            # names, not the receiver's keys); the signature's inputs are named after them.
            signature_names = export_output.signature_input_names(tensors)
            arg_names = unique_op_names(signature_names)
            function._arg_keywords = arg_names
            functions[name] = function
            methods[name] = export_output.method_name(tensors)
            renamed = {a: k for a, k in zip(arg_names, signature_names, strict=True) if a != k}
            if renamed:
                input_names[name] = renamed
    return functions, input_names, methods
