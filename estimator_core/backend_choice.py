"""Which backend runs a model_fn: ``RunConfig(backend="auto" | "graph" | "function")``.

``"graph"`` and ``"function"`` (or the environment variable ``ESTIMATOR_CORE_BACKEND``, read
when the RunConfig is built) force a backend. ``"auto"``, the default, decides once per
Estimator, on its first train/evaluate/predict/export call, and logs the choice and its reason:

1. a checkpoint in model_dir decides by its format: name-based (``tf.compat.v1.train.Saver``,
   tf.estimator's) → graph; object-based (``tf.train.Checkpoint``) → function;
2. ``RunConfig.run_eagerly`` → function (model_fn is only ever called eagerly; the graph
   backend refuses ``run_eagerly``: a graph cannot be eager);
3. otherwise model_fn is called once, in that call's mode, in a TF1 graph on that call's
   input (the graph backend's own build, kept when it wins), and what it built decides:

   * TF1 evidence → graph: an ``eval_metric_ops`` value is a ``(value_op, update_op)``
     pair; model_fn used ``tf.compat.v1.layers``/``.keras``/``.nn.rnn_cell``, created
     variables with ``tf.compat.v1.get_variable`` (or a layer built on it), wrote
     ``tf.compat.v1.summary`` ops, or returned a ``Scaffold``;
   * TF2 evidence → function: ``train_op`` is a Keras optimizer or a callable; an
     ``eval_metric_ops`` value is a Keras metric;
   * both → ``ValueError`` naming them (force a backend to say which is meant);
   * a ``train_op`` that is a ``tf.Operation``/``tf.Tensor`` (``minimize(...)``, or an update
     model_fn applied itself, which the function backend also takes) → graph, unless there is
     TF2 evidence;
   * nothing of these (a PREDICT-only call on plain ops, or model_fn failing in a graph
     where it gave no TF1 evidence first) → function, today's default.

The probe costs one model_fn call in a graph for a model_fn the function backend then runs.
"""

from __future__ import annotations

import logging
import os

import keras
import tensorflow as tf

from estimator_core.spec import EstimatorSpec, is_tf1_metric

logger = logging.getLogger("estimator_core")

BACKENDS = ("auto", "graph", "function")
ENV_VAR = "ESTIMATOR_CORE_BACKEND"
_VARIABLE_STORE_KEY = ("__variable_store",)
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def configured_backend(backend: str | None) -> str:
    """RunConfig's ``backend`` setting: the argument, else ``$ESTIMATOR_CORE_BACKEND``, else
    ``"auto"``; ``ValueError`` for anything else."""
    value = backend if backend is not None else os.environ.get(ENV_VAR, "") or "auto"
    if value not in BACKENDS:
        source = "RunConfig.backend" if backend is not None else ENV_VAR
        raise ValueError(f"{source} must be one of {BACKENDS}, got {value!r}")
    return value


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
    """``(tf1, tf2, graph_train_op)``: what in ``spec`` and the graph model_fn built in is a
    TF1 graph idiom, a TF2 one, and a graph ``train_op`` (either), as phrases for the log."""
    tf1: list[str] = sorted(tf1_names)[:3]
    tf2: list[str] = []
    stores = graph.get_collection(_VARIABLE_STORE_KEY) if graph is not None else []
    created = {name for store in stores for name in getattr(store, "_vars", {})}
    if created - {"global_step"}:  # the Estimator creates the global step so
        tf1.append("variables from tf.compat.v1.get_variable")
    if graph is not None and graph.get_collection(tf.compat.v1.GraphKeys.SUMMARIES):
        tf1.append("tf.compat.v1.summary ops")
    graph_train_op: list[str] = []
    if spec is None:
        return tf1, tf2, graph_train_op
    train_op = spec.train_op
    if isinstance(train_op, (tf.Operation, tf.Tensor, tf.Variable)):
        graph_train_op.append(f"train_op is a graph {type(train_op).__name__}")
    elif isinstance(train_op, keras.optimizers.Optimizer):
        tf2.append("train_op is a Keras optimizer")
    elif callable(train_op):
        tf2.append("train_op is a callable")
    for name, metric in spec.eval_metric_ops.items():
        if is_tf1_metric(metric):
            tf1.append(f"eval_metric_ops[{name!r}] is a (value_op, update_op) pair")
        elif isinstance(metric, keras.metrics.Metric):
            tf2.append(f"eval_metric_ops[{name!r}] is a Keras metric")
    if spec.scaffold is not None:
        tf1.append("a Scaffold")
    return tf1, tf2, graph_train_op


def decide(tf1: list[str], tf2: list[str], graph_train_op: list[str]) -> tuple[str, str]:
    """``(backend, reason)`` the evidence points to (see the module docstring)."""
    if tf1 and tf2:
        raise ValueError(
            f"model_fn mixes TF1 graph idioms ({'; '.join(tf1)}) with TF2 ones "
            f"({'; '.join(tf2)}); no backend runs both: give RunConfig(backend='graph') or "
            "backend='function' and write model_fn in that style"
        )
    if tf2:
        return "function", "; ".join(tf2)
    if tf1 or graph_train_op:
        return "graph", "TF1 graph idioms: " + "; ".join(tf1 + graph_train_op)
    return "function", "no TF1 graph idioms in model_fn"


def log_choice(backend: str, reason: str) -> None:
    logger.info("model_fn runs in the %s backend (%s)", backend, reason)
