"""EstimatorSpec: what a model_fn returns, validated as tf.estimator validated it."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.export.outputs import ExportOutput, PredictOutput
from estimator_core.hooks import is_session_run_hook
from estimator_core.mode_keys import ModeKeys

DEFAULT_SERVING_SIGNATURE = "serving_default"


_FIELDS = (
    "mode",
    "predictions",
    "loss",
    "train_op",
    "eval_metric_ops",
    "export_outputs",
    "training_chief_hooks",
    "training_hooks",
    "scaffold",
    "evaluation_hooks",
    "prediction_hooks",
)

# Graph ops that may write a resource variable they take as an input: assignments, and
# calls of nested functions (tf.cond / tf.while_loop bodies, tf.function calls) that may.
_WRITES = ("Assign", "ResourceScatter", "ResourceApply", "If", "While", "Case", "PartitionedCall")


class EstimatorSpec(collections.namedtuple("EstimatorSpec", _FIELDS)):
    """The ops and objects a model_fn returns for one mode.

    Fields and checks are ``tf.estimator.EstimatorSpec``'s (the same ``TypeError`` /
    ``ValueError`` for the same mistakes); some fields accept TensorFlow 2 forms besides the
    TF1 ones:

    * ``mode``: the mode model_fn was called in (None: that mode, for a model_fn that does not
      take ``mode``).
    * ``predictions``: a tensor or a dict of tensors. Required in PREDICT mode.
    * ``loss``: a float tensor of one element, required in TRAIN and EVAL mode. A loss of shape
      ``[1]`` (or ``[None, 1]`` etc.) is reshaped to a scalar; more elements are an error.
    * ``train_op``: required in TRAIN mode. One of

      - a ``tf.Operation`` or tensor: an update model_fn already made (what TF1's
        ``optimizer.minimize(loss, global_step)`` returns, or ``optimizer.apply_gradients``
        done inside model_fn);
      - a Keras 3 optimizer: the Estimator takes the gradient of ``loss`` with respect to every
        trainable variable model_fn created and applies it with this optimizer;
      - a callable ``train_op(tape)``: called with the ``tf.GradientTape`` that recorded
        model_fn, it performs the update itself (gradient clipping, a subset of variables,
        several optimizers); its return value is ignored.

      Anything else (a ``tf.compat.v1.train`` or ``tf_keras`` optimizer object, a number) is
      a ``TypeError`` naming its type. A train_op that advances the global step itself (TF1's
      contract) is honoured: the Estimator then does not add one (see ``Estimator.train``).
    * ``eval_metric_ops``: dict of name to a metric object that model_fn updated (a Keras
      metric: ``update_state`` called; the Estimator resets it before each evaluation and
      reads ``result()`` at its end), or a TF1 ``(value, update_op)`` pair as
      ``tf.compat.v1.metrics.*`` return them (the graph backend runs them; the TF2 function
      backend refuses them at evaluate()).
    * ``export_outputs``: dict of signature name to :class:`estimator_core.export.ExportOutput`.
      In PREDICT mode, if absent, one ``PredictOutput(predictions)`` is used as
      ``serving_default``; with several entries, one must be named ``serving_default``.
    * ``training_chief_hooks`` (run on the chief only), ``training_hooks``,
      ``evaluation_hooks``, ``prediction_hooks``: hooks run in that mode; a hook is an
      ``estimator_core.SessionRunHook`` or ``tf.compat.v1.train.SessionRunHook``, or any object
      with their five methods.
    * ``scaffold``: a ``tf.compat.v1.train.Scaffold``: the graph backend finalizes it and runs
      its ``init_op``, ``local_init_op``, ``init_fn`` and ``saver``; the function backend
      ignores it (TF2 has no graph to finalize).

    ``_replace`` validates the new fields again and cannot change ``mode``.
    """

    def __new__(
        cls,
        mode: str | None,
        predictions: Any = None,
        loss: Any = None,
        train_op: Any = None,
        eval_metric_ops: Mapping[str, Any] | None = None,
        export_outputs: Mapping[str, ExportOutput] | None = None,
        training_chief_hooks: Sequence[Any] | None = None,
        training_hooks: Sequence[Any] | None = None,
        scaffold: Any = None,
        evaluation_hooks: Sequence[Any] | None = None,
        prediction_hooks: Sequence[Any] | None = None,
    ) -> EstimatorSpec:
        if mode is not None and mode not in ModeKeys.ALL:
            raise ValueError(f"EstimatorSpec: mode must be one of {ModeKeys.ALL}, got {mode!r}")
        train_op = _validate_train_op(mode, train_op)
        loss = _validate_loss(mode, loss)
        predictions = _validate_predictions(mode, predictions)
        if mode == ModeKeys.PREDICT:
            export_outputs = _default_export_outputs(export_outputs, predictions)
        return super().__new__(
            cls,
            mode,
            predictions,
            loss,
            train_op,
            _validate_eval_metric_ops(eval_metric_ops),
            export_outputs,
            _validate_hooks(training_chief_hooks),
            _validate_hooks(training_hooks),
            scaffold,
            _validate_hooks(evaluation_hooks),
            _validate_hooks(prediction_hooks),
        )

    def _replace(self, **fields: Any) -> EstimatorSpec:
        """A new spec with ``fields`` replaced, validated again; ``mode`` cannot change."""
        if "mode" in fields and fields["mode"] != self.mode:
            raise ValueError("mode of EstimatorSpec cannot be changed.")
        return EstimatorSpec(**{**self._asdict(), **fields})


def is_tensor(value: Any) -> bool:
    """A dense tensor or a variable (what tf.estimator called a Tensor); not a sparse tensor."""
    return isinstance(value, tf.__internal__.types.Tensor)


_REQUIRED = {
    "train_op": ((ModeKeys.TRAIN,), "an update op, a Keras optimizer or a callable train_op(tape)"),
    "loss": ((ModeKeys.TRAIN, ModeKeys.EVAL), "a float tensor of one element"),
    "predictions": ((ModeKeys.PREDICT,), "a tensor or a dict of tensors"),
}


def _missing(field: str, value: Any, mode: str | None) -> bool:
    """True when ``value`` is None; ``ValueError`` when ``mode`` requires ``field``."""
    if value is not None:
        return False
    modes, what = _REQUIRED[field]
    if mode in modes:
        raise ValueError(f"Missing {field}. EstimatorSpec(mode={mode!r}) needs {field}: {what}.")
    return True


def _validate_train_op(mode: str | None, train_op: Any) -> Any:
    if _missing("train_op", train_op, mode):
        return None
    if isinstance(train_op, (tf.Operation, keras.optimizers.Optimizer)) or is_tensor(train_op):
        return train_op
    if hasattr(train_op, "apply_gradients"):
        kind = f"{type(train_op).__module__}.{type(train_op).__qualname__}"
        raise TypeError(
            f"train_op must be Operation or Tensor, given: an optimizer object ({kind}) that "
            "is not a Keras 3 optimizer. Pass optimizer.minimize(loss, global_step) (a TF1 "
            "optimizer's update op), or a keras.optimizers optimizer object (Keras 3; "
            "tf_keras optimizers are not Keras 3 optimizers)."
        )
    if callable(train_op):
        return train_op
    raise TypeError(
        f"train_op must be Operation or Tensor, given: {train_op!r} "
        f"({type(train_op).__name__}). train_op is an update op or tensor, a Keras 3 "
        "optimizer, or a callable train_op(tape)."
    )


def _validate_loss(mode: str | None, loss: Any) -> Any:
    if _missing("loss", loss, mode):
        return None
    if not is_tensor(loss):
        raise TypeError(f"loss must be Tensor, given: {loss!r} ({type(loss).__name__})")
    shape = loss.shape
    if shape.num_elements() not in (None, 1):
        raise ValueError(f"Loss must be scalar, given: {loss!r} of shape {shape}")
    if not shape.is_compatible_with(tf.TensorShape([])):
        loss = tf.reshape(loss, [])
    return loss


def _validate_predictions(mode: str | None, predictions: Any) -> Any:
    if _missing("predictions", predictions, mode):
        return None
    if isinstance(predictions, dict):
        for key, value in predictions.items():
            if not is_tensor(value):
                raise TypeError(
                    f"predictions[{key}] must be Tensor, given: {value!r} ({type(value).__name__})"
                )
    elif not is_tensor(predictions):
        raise TypeError(
            f"predictions must be Tensor, given: {predictions!r} ({type(predictions).__name__})"
        )
    return predictions


def _validate_eval_metric_ops(eval_metric_ops: Any) -> dict[str, Any]:
    if eval_metric_ops is None:
        return {}
    if not isinstance(eval_metric_ops, dict):
        raise TypeError(f"eval_metric_ops must be a dict, given: {eval_metric_ops!r}")
    for key, value in eval_metric_ops.items():
        if is_metric_object(value):
            if not _updated(value):
                raise ValueError(
                    f'Please call update_state(...) on the "{value.name}" metric '
                    f"(eval_metric_ops[{key!r}]) inside model_fn."
                )
        elif not (isinstance(value, tuple) and len(value) == 2):
            raise TypeError(
                f"Values of eval_metric_ops must be (metric_value, update_op) tuples, given: "
                f"{value!r} for key: {key}. A Keras metric object that model_fn updated "
                "(e.g. estimator_core.metrics.accuracy(...)) is the TF2 form."
            )
    return dict(eval_metric_ops)


def is_tf1_metric(metric: Any) -> bool:
    """A TF1 streaming metric: a ``(value_op, update_op)`` pair of graph tensors or ops, as
    ``tf.compat.v1.metrics.*`` return (the graph backend runs them)."""
    return (
        isinstance(metric, (tuple, list))
        and len(metric) == 2
        and all(getattr(part, "graph", None) is not None for part in metric)
    )


def is_metric_object(value: Any) -> bool:
    """A streaming metric object: a Keras metric, or anything with its methods."""
    return isinstance(value, keras.metrics.Metric) or all(
        callable(getattr(value, m, None)) for m in ("update_state", "result", "reset_state")
    )


def _updated(metric: Any) -> bool:
    """False when model_fn's graph certainly never updates ``metric``'s variables.

    Only a graph can tell (a TF1 graph, or the trace of a tf.function); eagerly it is True.
    An op that may write a variable (an assignment, or a nested function such as a tf.cond
    branch taking the variable) counts as an update.
    """
    if tf.executing_eagerly():
        return True
    graph = tf.compat.v1.get_default_graph()
    handles = {id(h) for h in _handles(metric)}
    if not handles:
        return True
    captured = {id(ext): internal for ext, internal in getattr(graph, "captures", ())}
    inside = {id(captured[h]) for h in handles if h in captured} | handles
    for op in graph.get_operations():
        writes = op.type.startswith(_WRITES) or op.type.startswith("Stateful")
        if writes and any(id(t) in inside for t in op.inputs):
            return True
    return False


def _handles(metric: Any) -> list[Any]:
    handles = []
    for variable in getattr(metric, "variables", ()):
        handle = getattr(variable, "handle", None)
        if handle is None:
            handle = getattr(getattr(variable, "value", None), "handle", None)
        if handle is not None:
            handles.append(handle)
    return handles


def _validate_hooks(hooks: Sequence[Any] | None) -> tuple[Any, ...]:
    hooks = tuple(hooks or ())
    for hook in hooks:
        if not is_session_run_hook(hook):
            raise TypeError(f"All hooks must be SessionRunHook instances, given: {hook!r}")
    return hooks


def _default_export_outputs(
    export_outputs: Mapping[str, ExportOutput] | None, predictions: Any
) -> dict[str, ExportOutput]:
    if export_outputs is None:
        return {DEFAULT_SERVING_SIGNATURE: PredictOutput(predictions)}
    if not isinstance(export_outputs, dict):
        raise TypeError(f"export_outputs must be dict, given: {export_outputs!r}")
    for name, output in export_outputs.items():
        if not isinstance(output, ExportOutput):
            raise TypeError(
                f"Values in export_outputs must be ExportOutput objects (PredictOutput, "
                f"ClassificationOutput, RegressionOutput), given: {output!r} for key {name!r}"
            )
    outputs = dict(export_outputs)
    if len(outputs) == 1:
        (only,) = outputs.values()
        outputs.setdefault(DEFAULT_SERVING_SIGNATURE, only)
    elif DEFAULT_SERVING_SIGNATURE not in outputs:
        raise ValueError(
            f"Multiple export_outputs were provided ({sorted(outputs)}), but none of them is "
            f"named {DEFAULT_SERVING_SIGNATURE!r}, the default signature; one must be."
        )
    return outputs
