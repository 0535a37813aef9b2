"""Which backend runs a model_fn: ``RunConfig(backend="auto" | "graph" | "function")``.

``"graph"`` and ``"function"`` (or the environment variable ``ESTIMATOR_CORE_BACKEND``, read
when the RunConfig is built: :func:`estimator_core.run_config.configured_backend`) force a
backend. ``"auto"``, the default, decides once per
Estimator, on its first train/evaluate/predict/export call, and logs the choice and its reason:

1. a checkpoint in model_dir decides by its format: name-based (``tf.compat.v1.train.Saver``,
   tf.estimator's) → graph; object-based (``tf.train.Checkpoint``) → function;
2. ``RunConfig.run_eagerly`` → function (model_fn is only ever called eagerly; the graph
   backend refuses ``run_eagerly``: a graph cannot be eager);
3. otherwise model_fn is called once, in that call's mode, in a TF1 graph on that call's
   input (the graph backend's own build, kept when it wins), and what it built decides:

   * TF1 evidence → graph: an ``eval_metric_ops`` value is a ``(value_op, update_op)``
     pair; model_fn used ``tf.compat.v1.layers``/``.keras``/``.nn.rnn_cell``, wrote
     ``tf.compat.v1.summary`` ops, or returned a ``Scaffold`` with something in it;
   * TF2 evidence → function: ``train_op`` is a Keras optimizer or a callable; an
     ``eval_metric_ops`` value is a Keras metric;
   * both → ``ValueError`` naming them (force a backend to say which is meant);
   * idioms both backends run → graph, unless there is TF2 evidence: a ``train_op`` that is
     a ``tf.Operation``/``tf.Tensor`` (``minimize(...)``, or an update model_fn applied
     itself), variables created with ``tf.compat.v1.get_variable`` (the function backend
     gives each call a fresh TF1 variable store);
   * nothing of these (a PREDICT-only call on plain ops, or model_fn failing in a graph
     where it gave no TF1 evidence first) → function, today's default.

The probe costs one model_fn call in a graph for a model_fn the function backend then runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from estimator_core.backend import ModelFnBackend
from estimator_core.function_backend import FunctionBackend
from estimator_core.graph_backend import GraphBackend, refuse_unsupported
from estimator_core.graph_inputs import EagerDataset
from estimator_core.graph_mode import BuildTrace
from estimator_core.model_fn import ModelFn
from estimator_core.run_config import BACKEND_ENV_VAR, RunConfig
from estimator_core.spec import EstimatorSpec, is_tf1_metric

logger = logging.getLogger("estimator_core")

_VARIABLE_STORE_KEY = ("__variable_store",)
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def backend_of_checkpoint(path: str | None) -> str | None:
    """``"graph"`` for a name-based checkpoint, ``"function"`` for an object-based one."""
    if path is None:
        return None
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError):
        return None
    return "function" if reader.has_tensor(_OBJECT_GRAPH_KEY) else "graph"


def evidence(
    spec: EstimatorSpec | None, graph: tf.Graph | None, tf1_names: set[str]
) -> tuple[list[str], list[str], list[str]]:
    """``(tf1, tf2, either)``: what in ``spec`` and the graph model_fn built in is a TF1 graph
    idiom only the graph backend runs, a TF2 one, and an idiom both backends run (a graph
    ``train_op``, ``tf.compat.v1.get_variable`` variables), as phrases for the log."""
    tf1: list[str] = sorted(tf1_names)[:3]
    tf2: list[str] = []
    either: list[str] = []
    stores = graph.get_collection(_VARIABLE_STORE_KEY) if graph is not None else []
    created = {name for store in stores for name in getattr(store, "_vars", {})}
    if created - {"global_step"}:  # the Estimator creates the global step so
        either.append("variables from tf.compat.v1.get_variable")
    if graph is not None and graph.get_collection(tf.compat.v1.GraphKeys.SUMMARIES):
        tf1.append("tf.compat.v1.summary ops")
    if spec is None:
        return tf1, tf2, either
    train_op = spec.train_op
    if isinstance(train_op, (tf.Operation, tf.Tensor, tf.Variable)):
        either.append(f"train_op is a graph {type(train_op).__name__}")
    elif isinstance(train_op, keras.optimizers.Optimizer):
        tf2.append("train_op is a Keras optimizer")
    elif callable(train_op):
        tf2.append("train_op is a callable")
    for name, metric in spec.eval_metric_ops.items():
        if is_tf1_metric(metric):
            tf1.append(f"eval_metric_ops[{name!r}] is a (value_op, update_op) pair")
        elif isinstance(metric, keras.metrics.Metric):
            tf2.append(f"eval_metric_ops[{name!r}] is a Keras metric")
    if _has_parts(spec.scaffold):
        tf1.append("a Scaffold")
    return tf1, tf2, either


_SCAFFOLD_PARTS = (
    "init_op",
    "init_feed_dict",
    "init_fn",
    "ready_op",
    "ready_for_local_init_op",
    "local_init_op",
    "summary_op",
    "saver",
)


def _has_parts(scaffold: Any) -> bool:
    """A Scaffold model_fn filled in (not an empty default one)."""
    return scaffold is not None and any(
        getattr(scaffold, part, None) is not None for part in _SCAFFOLD_PARTS
    )


def decide(tf1: list[str], tf2: list[str], either: list[str]) -> tuple[str, str]:
    """``(backend, reason)`` the evidence points to (see the module docstring)."""
    if tf1 and tf2:
        raise ValueError(
            f"model_fn mixes TF1 graph idioms ({'; '.join(tf1)}) with TF2 ones "
            f"({'; '.join(tf2)}); no backend runs both: give RunConfig(backend='graph') or "
            "backend='function' and write model_fn in that style"
        )
    if tf2:
        return "function", "; ".join(tf2)
    if tf1 or either:
        return "graph", "TF1 graph idioms: " + "; ".join(tf1 + either)
    return "function", "no TF1 graph idioms in model_fn"


class BackendChoice:
    """Makes an Estimator's backend, once: :meth:`without_input` when RunConfig forces one or
    a checkpoint decides, else :meth:`with_input` on the first call's input (the probe).
    ``on_chosen(backend)`` is called with it, and the choice is logged with its reason."""

    def __init__(
        self,
        model_fn: ModelFn,
        config: RunConfig,
        train_summary_writer: tf.summary.SummaryWriter,
        on_chosen: Callable[[ModelFnBackend], None],
    ) -> None:
        self._model_fn = model_fn
        self._config = config
        self._writer = train_summary_writer
        self._on_chosen = on_chosen
        self.backend: ModelFnBackend | None = None

    def without_input(self, checkpoint: str | None) -> ModelFnBackend | None:
        """The backend, when no input is needed to choose it (rules 1 and 2, or forced);
        ``checkpoint``: the checkpoint the call will read (None: there is none)."""
        if self.backend is not None:
            return self.backend
        kind = self._config.backend
        reason = f"RunConfig.backend or ${BACKEND_ENV_VAR} is {kind!r}"
        if kind == "auto":
            kind = backend_of_checkpoint(checkpoint)
            reason = f"checkpoint {checkpoint} is {'name' if kind == 'graph' else 'object'}-based"
            if kind is None and self._config.run_eagerly:
                kind, reason = "function", "RunConfig.run_eagerly"
        if kind is None:
            return None
        return self._choose(self._new(kind), kind, reason)

    def with_input(self, mode: str, call_input_fn: Callable[[], Any]) -> Any:
        """Rule 3: build model_fn once in a TF1 graph on this input and let what it built
        decide. Returns the input in the chosen backend's form; input_fn is called once (and
        again in a graph only when what it returned eagerly was not a Dataset a graph can
        rebuild)."""
        try:
            eager_result, eager_error = call_input_fn(), None
        except Exception as err:  # placeholders or initializable iterators: TF1 inputs
            eager_result, eager_error = None, err
        eager = EagerDataset(eager_result) if isinstance(eager_result, tf.data.Dataset) else None
        graph_backend = GraphBackend(self._model_fn, self._config, self._writer)
        trace = BuildTrace()
        try:
            graph_input = graph_backend.make_input(call_input_fn, mode, eager, trace)
            build_error = None
        except Exception as err:
            graph_input, build_error = None, err
        kind, reason = decide(*evidence(trace.spec, trace.graph, trace.tf1_names))
        if kind == "graph":
            if build_error is not None:
                raise build_error
            refuse_unsupported(self._config)
            self._choose(graph_backend, kind, reason)
            return graph_input
        graph_backend.close()
        backend = self._choose(self._new(kind), kind, reason)
        if eager_error is not None:
            raise eager_error
        return backend.make_input(lambda: eager_result, mode)

    def _new(self, kind: str) -> ModelFnBackend:
        if kind == "graph":
            refuse_unsupported(self._config)
            return GraphBackend(self._model_fn, self._config, self._writer)
        config = self._config
        return FunctionBackend(
            self._model_fn,
            self._writer,
            config.save_summary_steps,
            run_eagerly=config.run_eagerly,
            jit_compile=config.jit_compile,
            mixed_precision=config.mixed_precision,
            strategy=config.train_distribute,
        )

    def _choose(self, backend: ModelFnBackend, kind: str, reason: str) -> ModelFnBackend:
        self.backend = backend
        self._on_chosen(backend)
        logger.info("model_fn runs in the %s backend (%s)", kind, reason)
        return backend
