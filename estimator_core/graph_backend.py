"""The graph backend: TF1 model_fns run unmodified in ``tf.compat.v1`` graphs and sessions.

Each mode gets a graph built the way tf.estimator built it (:mod:`estimator_core.graph_mode`)
and a ``tf.compat.v1.Session``. Unlike tf.estimator, graph and session live as long as the
Estimator: alternating ``train()`` and ``evaluate()`` rebuilds nothing, the training input
continues where it stopped, and the weights move between the sessions through memory or the
checkpoint just written (:mod:`estimator_core.graph_weights`). A step is one
``session.run`` of ``train_op`` (or of the metrics' update ops), as in tf.estimator.

Hooks get TF1's objects: the real session in ``after_create_session``, ``end`` and
``run_context.session``, and their ``SessionRunArgs`` (tensors, ops, tensor or op names, the
Estimator's names ``"loss"``, ``"global_step"`` and prediction keys; ``feed_dict`` and
``options``) are run in the session with every step of the loop that follows ``before_run``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from estimator_core.backend import LoopResult, ModelFnBackend
from estimator_core.checkpoints import CHECKPOINT_NAME, CheckpointFormat
from estimator_core.graph_export import write_saved_model
from estimator_core.graph_inputs import EagerDataset, input_from_eager, input_from_result
from estimator_core.graph_mode import (
    BuildTrace,
    ModeGraph,
    SaverSettings,
    build_mode_graph,
    extending,
    input_in_graph,
)
from estimator_core.graph_weights import SAVER_GLOBAL_STEP_KEY, GraphWeights
from estimator_core.hooks import SessionRunArgs, SessionRunValues
from estimator_core.mode_keys import ModeKeys
from estimator_core.model_fn import ModelFn
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec

logger = logging.getLogger("estimator_core")


class GraphBackendError(ValueError):
    """A setting the graph backend cannot honour (names the setting)."""


@dataclasses.dataclass(eq=False)
class GraphInputHandle:
    """One input_fn's input in a mode graph (built once per input_fn object)."""

    call: Callable[[], Any]
    mode: str
    graph: ModeGraph
    initializer: tf.Operation | None
    infinite: bool
    feed: dict[Any, Any] | None = None
    used: bool = False


@dataclasses.dataclass(eq=False)
class GraphIterator:
    """A pass over a :class:`GraphInputHandle` from its beginning (started at first use)."""

    input: GraphInputHandle
    started: bool = False


class GraphBackend(ModelFnBackend):
    """Runs a TF1-style model_fn in a ``tf.compat.v1`` graph and session per mode."""

    def __init__(
        self,
        model_fn: ModelFn,
        config: RunConfig,
        train_summary_writer: tf.summary.SummaryWriter | None,
    ) -> None:
        self._model_fn = model_fn
        self._seed = config.tf_random_seed
        self._saver_settings = SaverSettings(
            config.keep_checkpoint_max or None, config.keep_checkpoint_every_n_hours
        )
        self._session_config = _session_config(config)
        self._writer = train_summary_writer
        self._summary_every = config.save_summary_steps or 0
        self._graphs: dict[str, ModeGraph] = {}
        self.weights = GraphWeights()

    # -- state -----------------------------------------------------------------------------

    def global_step_value(self) -> int:
        return self.weights.step

    def session(self, mode: str) -> tf.compat.v1.Session | None:
        """The live session of ``mode`` (None before its graph is built)."""
        graph = self._graphs.get(mode)
        return graph.session if graph is not None else None

    def graph(self, mode: str) -> tf.Graph | None:
        mode_graph = self._graphs.get(mode)
        return mode_graph.graph if mode_graph is not None else None

    @contextlib.contextmanager
    def hook_scope(self, mode: str, hook: Any) -> Iterator[None]:
        """A TF1 hook runs with ``mode``'s graph as the default graph, which it may add ops to
        (TF1 hooks look tensors up in it, and create ops in ``begin``). estimator_core's own
        hooks fetch by name and write TF2 summaries: they run outside it."""
        mode_graph = self._graphs.get(mode)
        if mode_graph is None or type(hook).__module__.startswith("estimator_core."):
            yield
            return
        with extending(mode_graph.graph):
            yield

    def close(self) -> None:
        for mode_graph in self._graphs.values():
            mode_graph.close()
        self._graphs.clear()

    # -- inputs ----------------------------------------------------------------------------

    def make_input(
        self,
        call_input_fn: Callable[[], Any],
        mode: str,
        eager: EagerDataset | None = None,
        trace: BuildTrace | None = None,
    ) -> GraphInputHandle:
        """The input of ``call_input_fn`` (input_fn with its arguments) in ``mode``'s graph.

        A Dataset that fits the live graph's iterator joins it; otherwise a new graph is built
        on this input (replacing the live one). ``eager``: input_fn's Dataset, already built
        eagerly, used instead of calling input_fn again when it can be serialized."""
        live = self._graphs.get(mode)
        if live is not None and live.input.restartable and eager is None:
            found = input_in_graph(live, call_input_fn)
            if found is not None:
                initializer, dataset = found
                infinite = _is_infinite_cardinality(live.input_cardinality(dataset))
                return GraphInputHandle(call_input_fn, mode, live, initializer, infinite)
        if eager is not None and eager.serialized is not None:
            mode_graph = self._build(mode, lambda: input_from_eager(eager), trace)
        else:
            mode_graph = self._build(mode, lambda: input_from_result(call_input_fn()), trace)
        graph_input = mode_graph.input
        infinite = graph_input.infinite
        if infinite is None:
            assert graph_input.dataset is not None
            infinite = _is_infinite_cardinality(mode_graph.input_cardinality(graph_input.dataset))
        return GraphInputHandle(
            call_input_fn,
            mode,
            mode_graph,
            graph_input.initializer,
            bool(infinite),
            feed=graph_input.initializer_feed,
        )

    def make_iterator(self, dataset: Any, mode: str) -> GraphIterator:
        if not isinstance(dataset, GraphInputHandle):
            raise TypeError(f"the graph backend iterates its own inputs, got {dataset!r}")
        return GraphIterator(dataset)

    def is_infinite(self, graph_input: GraphInputHandle) -> bool:
        return graph_input.infinite

    def _build(
        self, mode: str, graph_input_fn: Callable[[], Any], trace: BuildTrace | None
    ) -> ModeGraph:
        mode_graph = build_mode_graph(
            mode, graph_input_fn, self._model_fn, self._seed, self._saver_settings, trace
        )
        mode_graph.open(self._session_config)
        old = self._graphs.get(mode)
        self._graphs[mode] = mode_graph
        if old is not None:
            self.weights.replace(old, mode_graph)
            old.close()
        return mode_graph

    def _start(self, iterator: GraphIterator) -> ModeGraph:
        """The mode graph ``iterator`` reads, started at its input's beginning on first use,
        with the current weights."""
        handle = iterator.input
        if not iterator.started:
            stale = handle.graph is not self._graphs.get(handle.mode)
            if stale or (handle.used and handle.initializer is None):
                # a replaced graph, or tensors that cannot be restarted: call input_fn again
                fresh = self.make_input(handle.call, handle.mode)
                handle.graph, handle.initializer = fresh.graph, fresh.initializer
                handle.infinite, handle.feed, handle.used = fresh.infinite, fresh.feed, False
            handle.graph.start_input(handle.initializer, handle.feed)
            handle.used = iterator.started = True
        self.weights.sync(handle.graph)
        return handle.graph

    # -- ModelFnBackend --------------------------------------------------------------------

    def prepare(self, mode: str, iterator: Any, infinite: bool = False) -> None:
        self._start(iterator)

    def train(
        self,
        iterator: Any,
        num_steps: int,
        infinite: bool = False,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> LoopResult:
        mode_graph = self._start(iterator)
        assert mode_graph.train_op is not None and mode_graph.step_after is not None
        plan = _FetchPlan(mode_graph, requests, mode_graph.step_after)
        base = [mode_graph.train_op, mode_graph.spec.loss, mode_graph.step_after]
        with_summary = [*base, mode_graph.summary_op] if mode_graph.summary_op is not None else None
        start = step = self.weights.step
        loss, ran, fetched = None, False, None
        try:
            # Steps are global steps: a train_op that advances the global step by k per run
            # runs num_steps / k times, as tf.estimator's StopAtStepHook did.
            while step - start < _positive(num_steps):
                summarise = (
                    with_summary is not None
                    and self._writer is not None
                    and self._summary_every
                    and (step + 1) % self._summary_every == 0
                )
                values = plan.run(with_summary if summarise else base)
                ran = True
                previous, (_, loss, step) = step, values[:3]
                step = int(step)
                if step <= previous:
                    raise ValueError(
                        f"EstimatorSpec.train_op ran without advancing the global step (it is "
                        f"{step} after the run, {previous} before); the Estimator counts "
                        "training in global steps"
                    )
                if summarise:
                    self._write_summary(values[3], step)
                fetched = values[len(with_summary if summarise else base) :]
                if not np.all(np.isfinite(loss)):
                    break
        except tf.errors.OutOfRangeError:
            if not ran:
                raise
        finally:
            if ran:
                self.weights.changed(mode_graph, step)
        return LoopResult(
            step - start,
            {"loss": np.asarray(loss), "global_step": np.int64(step)},
            plan.results(fetched),
        )

    def evaluate(
        self,
        iterator: Any,
        num_steps: int,
        infinite: bool = False,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> LoopResult:
        mode_graph = self._start(iterator)
        assert mode_graph.update_op is not None
        plan = _FetchPlan(mode_graph, requests, None)
        base = [mode_graph.update_op, mode_graph.spec.loss]
        loss, done, fetched = None, 0, None
        try:
            for _ in range(_positive(num_steps)):
                values = plan.run(base)
                loss, fetched = values[1], values[2:]
                done += 1
        except tf.errors.OutOfRangeError:
            if done == 0:
                raise
        return LoopResult(
            done,
            {"loss": np.asarray(loss), "global_step": np.int64(self.weights.step)},
            plan.results(fetched),
        )

    def reset_metrics(self) -> None:
        mode_graph = self._graphs.get(ModeKeys.EVAL)
        if mode_graph is not None and mode_graph.session is not None:
            mode_graph.session.run(mode_graph.metric_reset)

    def metric_results(self) -> dict[str, np.ndarray]:
        mode_graph = self._graphs[ModeKeys.EVAL]
        assert mode_graph.session is not None
        values = mode_graph.session.run(mode_graph.metric_values)
        return {name: np.asarray(value) for name, value in values.items()}

    def predict(
        self,
        iterator: Any,
        num_batches: int,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> tuple[list[Any], list[SessionRunValues | None] | None]:
        mode_graph = self._start(iterator)
        predictions = mode_graph.spec.predictions
        plan = _FetchPlan(mode_graph, requests, None)
        batches, fetched = [], None
        try:
            for _ in range(_positive(num_batches)):
                values = plan.run([predictions])
                batches.append(values[0])
                fetched = values[1:]
        except tf.errors.OutOfRangeError:
            pass
        return batches, plan.results(fetched)

    def traced_spec(self, mode: str) -> EstimatorSpec | None:
        mode_graph = self._graphs.get(mode)
        return mode_graph.spec if mode_graph is not None else None

    def checkpoint_format(self, config: RunConfig, directory: str) -> SaverCheckpointFormat:
        return SaverCheckpointFormat(self.weights)

    def write_saved_model(
        self,
        export_dir: str,
        serving_input_receiver_fn: Callable[[], Any],
        checkpoint_path: str,
    ) -> None:
        """Write a TF1 SavedModel of ``checkpoint_path`` into ``export_dir`` (new)."""
        write_saved_model(
            export_dir, serving_input_receiver_fn, self._model_fn, checkpoint_path, self._seed
        )

    def _write_summary(self, serialized: bytes, step: int) -> None:
        assert self._writer is not None
        with self._writer.as_default():
            tf.summary.experimental.write_raw_pb(serialized, step=step)


class SaverCheckpointFormat(CheckpointFormat):
    """tf.estimator's checkpoints: ``tf.compat.v1.train.Saver`` files keyed by variable name."""

    global_step_key = SAVER_GLOBAL_STEP_KEY

    def __init__(self, weights: GraphWeights) -> None:
        self._weights = weights

    def save(self, directory: str, step: int) -> str:
        return self._weights.save(directory, CHECKPOINT_NAME)

    def restore(self, path: str, reader: tf.train.CheckpointReader) -> None:
        self._weights.restore(path, reader)

    def warm_start(self, settings: Any) -> None:
        self._weights.warm_start(settings)

    def variable_names(self, reader: tf.train.CheckpointReader) -> list[str]:
        return sorted(reader.get_variable_to_shape_map())

    def variable_key(self, name: str) -> str:
        return name


class _FetchPlan:
    """The hooks' requests of one loop, resolved in its mode graph and run with every step.

    A fetch is a tensor, op or variable of the graph, a tensor or op name, or one of the
    Estimator's names: ``"loss"``, ``"global_step"`` (the step after this run in TRAIN) and
    the keys of ``EstimatorSpec.predictions``.
    """

    def __init__(
        self,
        mode_graph: ModeGraph,
        requests: Sequence[SessionRunArgs | None],
        step_after: tf.Tensor | None,
    ) -> None:
        self._graph = mode_graph
        spec = mode_graph.spec
        names: dict[str, Any] = {}
        if isinstance(spec.predictions, dict):
            names.update(spec.predictions)
        elif spec.predictions is not None:
            names["predictions"] = spec.predictions
        if spec.loss is not None:
            names["loss"] = spec.loss
        names["global_step"] = step_after if step_after is not None else mode_graph.global_step
        self._names = names
        self._elements: list[Any] = []
        self._index: dict[int, int] = {}
        self._structures: list[Any] = []
        feed: dict[Any, Any] = {}
        options: list[tf.compat.v1.RunOptions] = []
        for request in requests:
            if request is None:
                self._structures.append(None)
                continue
            self._structures.append(tf.nest.map_structure(self._slot, request.fetches))
            for key, value in (request.feed_dict or {}).items():
                if key in feed:
                    raise ValueError(f"hooks: {key!r} is fed by two hooks")
                feed[key] = value
            if request.options is not None:
                options.append(request.options)
        self._feed = feed
        self._options = _merged_options(options)
        self._run_metadata = tf.compat.v1.RunMetadata() if self._options is not None else None

    def _slot(self, fetch: Any) -> int:
        element = self._element(fetch)
        key = id(element)
        if key not in self._index:
            self._index[key] = len(self._elements)
            self._elements.append(element)
        return self._index[key]

    def _element(self, fetch: Any) -> Any:
        graph = self._graph.graph
        if isinstance(fetch, str):
            if fetch in self._names:
                return self._names[fetch]
            try:
                return graph.as_graph_element(fetch, allow_tensor=True, allow_operation=True)
            except (KeyError, ValueError) as err:
                raise KeyError(
                    f"hook fetch {fetch!r} is neither one of the Estimator's names "
                    f"{sorted(self._names)} nor a tensor or op of the {self._graph.mode} graph: "
                    f"{err}"
                ) from None
        if isinstance(fetch, (tf.Tensor, tf.Operation, tf.Variable, tf.SparseTensor)):
            if fetch.graph is not graph:
                raise ValueError(
                    f"hook fetch {fetch!r} is not from the {self._graph.mode} graph; fetch "
                    "tensors by name, or look them up in begin() (the default graph then)"
                )
            return fetch
        raise TypeError(
            f"hook fetch {fetch!r}: expected a tensor, op, variable or a name, "
            f"got {type(fetch).__name__}"
        )

    def run(self, base: list[Any]) -> list[Any]:
        """One step: ``base`` and the hooks' fetches; returns their values in that order."""
        fetches = base + self._elements
        session = self._graph.session
        assert session is not None
        if not self._feed and self._options is None:
            return list(self._graph.run_callable(fetches)())
        return session.run(
            fetches,
            feed_dict=self._feed or None,
            options=self._options,
            run_metadata=self._run_metadata,
        )

    def results(self, fetched: list[Any] | None) -> list[SessionRunValues | None] | None:
        """Each request's values after the loop's last step (None: no step completed)."""
        if fetched is None:
            return None
        return [
            None
            if structure is None
            else SessionRunValues(
                tf.nest.map_structure(lambda i: fetched[i], structure),
                self._options,
                self._run_metadata,
            )
            for structure in self._structures
        ]


def _merged_options(options: list[tf.compat.v1.RunOptions]) -> tf.compat.v1.RunOptions | None:
    """One RunOptions for several hooks' (highest trace level, first nonzero timeout)."""
    if not options:
        return None
    merged = tf.compat.v1.RunOptions()
    for option in options:
        merged.trace_level = max(merged.trace_level, option.trace_level)
        merged.timeout_in_ms = merged.timeout_in_ms or option.timeout_in_ms
        merged.output_partition_graphs |= option.output_partition_graphs
        merged.report_tensor_allocations_upon_oom |= option.report_tensor_allocations_upon_oom
        merged.debug_options.debug_tensor_watch_opts.extend(
            option.debug_options.debug_tensor_watch_opts
        )
    return merged


def _positive(num_steps: int) -> int:
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return num_steps


def _is_infinite_cardinality(cardinality: int) -> bool:
    return cardinality == int(tf.data.INFINITE_CARDINALITY)


def _session_config(config: RunConfig) -> tf.compat.v1.ConfigProto:
    """tf.estimator's default session config (soft placement), or RunConfig's ConfigProto;
    ``jit_compile`` turns on XLA auto-clustering."""
    proto = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if isinstance(config.session_config, tf.compat.v1.ConfigProto):
        proto.CopyFrom(config.session_config)
    if config.jit_compile:
        proto.graph_options.optimizer_options.global_jit_level = tf.compat.v1.OptimizerOptions.ON_1
    return proto


def refuse_unsupported(config: RunConfig) -> None:
    """``GraphBackendError`` for a RunConfig setting the graph backend cannot honour."""
    problems = {
        "run_eagerly": config.run_eagerly
        and "a TF1 graph model_fn cannot run eagerly: it builds a graph that a session runs "
        "(debug it with tf.print or a hook fetching its tensors, or port it to the function "
        "backend's TF2 style)",
        "train_distribute": config.train_distribute is not None
        and "the graph backend does not run TF1 graph model_fns under a tf.distribute strategy "
        "(MirroredStrategy needs the function backend's TF2 model_fn)",
        "mixed_precision": config.mixed_precision is not None
        and "RunConfig.mixed_precision sets Keras 3's dtype policy, which a TF1 graph model_fn "
        "does not use",
    }
    if config.cluster.is_multi_worker:
        problems["TF_CONFIG"] = (
            "multi-worker TF_CONFIG clusters are not supported by the graph backend"
        )
    for setting, reason in problems.items():
        if reason:
            raise GraphBackendError(f"RunConfig.{setting}: {reason}")
