"""EstimatorSpec: what a model_fn returns, checked per mode."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from estimator_core.export.outputs import ExportOutput, PredictOutput
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


class EstimatorSpec(collections.namedtuple("EstimatorSpec", _FIELDS)):
    """The ops and objects a model_fn returns for one mode.

    Fields keep ``tf.estimator.EstimatorSpec``'s names; in TensorFlow 2 some hold different objects:

    * ``predictions``: a tensor or a dict of tensors. Required in PREDICT mode.
    * ``loss``: a scalar float tensor. Required in TRAIN and EVAL mode.
    * ``train_op``: required in TRAIN mode. One of

      - a Keras optimizer: the Estimator takes the gradient of ``loss`` with respect to every
        trainable variable model_fn created, applies it with this optimizer and advances the
        global step;
      - a callable ``train_op(tape)``: called with the ``tf.GradientTape`` that recorded
        model_fn, it performs the update itself (gradient clipping, a subset of variables,
        several optimizers); its return value is ignored;
      - anything else (e.g. the result of ``optimizer.apply_gradients`` done inside model_fn):
        the update already happened in model_fn.

      In every case the Estimator advances the global step by one per step.
    * ``eval_metric_ops``: dict of name to Keras metric objects that model_fn updated
      (``update_state``). They stream over the whole evaluation: the Estimator resets them
      before each evaluation and reads ``result()`` at its end. In a TF1 graph model_fn
      (the graph backend), ``(value_op, update_op)`` pairs as ``tf.compat.v1.metrics.*``
      return them.
    * ``export_outputs``: dict of signature name to :class:`estimator_core.export.ExportOutput`.
      In PREDICT mode, if absent, one ``PredictOutput(predictions)`` is used as
      ``serving_default``; with several entries, one must be named ``serving_default``.
    * ``training_chief_hooks``, ``training_hooks``, ``evaluation_hooks``, ``prediction_hooks``:
      :class:`estimator_core.SessionRunHook` objects run in that mode.
    * ``scaffold``: accepted for source compatibility and ignored (TF2 has no graph to finalize).
    """

    def __new__(
        cls,
        mode: str,
        predictions: Any = None,
        loss: Any = None,
        train_op: Any = None,
        eval_metric_ops: Mapping[str, keras.metrics.Metric] | None = None,
        export_outputs: Mapping[str, ExportOutput] | None = None,
        training_chief_hooks: Sequence[Any] | None = None,
        training_hooks: Sequence[Any] | None = None,
        scaffold: Any = None,
        evaluation_hooks: Sequence[Any] | None = None,
        prediction_hooks: Sequence[Any] | None = None,
    ) -> EstimatorSpec:
        if mode not in ModeKeys.ALL:
            raise ValueError(f"EstimatorSpec: mode must be one of {ModeKeys.ALL}, got {mode!r}")
        _require(mode, "loss", loss, (ModeKeys.TRAIN, ModeKeys.EVAL))
        _require(mode, "train_op", train_op, (ModeKeys.TRAIN,))
        _require(mode, "predictions", predictions, (ModeKeys.PREDICT,))
        if loss is not None:
            _check_scalar_loss(mode, loss)
        eval_metric_ops = dict(eval_metric_ops or {})
        for name, metric in eval_metric_ops.items():
            if not (isinstance(metric, keras.metrics.Metric) or is_tf1_metric(metric)):
                raise TypeError(
                    f"EstimatorSpec(mode={mode!r}): eval_metric_ops[{name!r}] must be a Keras "
                    f"metric that model_fn updated (e.g. estimator_core.metrics.accuracy(...)), "
                    f"or, in a TF1 graph model_fn, a (value_op, update_op) pair of graph "
                    f"tensors; got {type(metric).__name__}"
                )
        if mode == ModeKeys.PREDICT:
            export_outputs = _default_export_outputs(export_outputs, predictions)
        return super().__new__(
            cls,
            mode,
            predictions,
            loss,
            train_op,
            eval_metric_ops,
            export_outputs,
            tuple(training_chief_hooks or ()),
            tuple(training_hooks or ()),
            scaffold,
            tuple(evaluation_hooks or ()),
            tuple(prediction_hooks or ()),
        )


def is_tf1_metric(metric: Any) -> bool:
    """A TF1 streaming metric: a ``(value_op, update_op)`` pair of graph tensors or ops, as
    ``tf.compat.v1.metrics.*`` return (the graph backend runs them)."""
    return (
        isinstance(metric, (tuple, list))
        and len(metric) == 2
        and all(getattr(part, "graph", None) is not None for part in metric)
    )


def _require(mode: str, field: str, value: Any, modes: tuple[str, ...]) -> None:
    if mode in modes and value is None:
        raise ValueError(f"EstimatorSpec(mode={mode!r}) is missing required field {field!r}")


def _check_scalar_loss(mode: str, loss: Any) -> None:
    shape = getattr(loss, "shape", None)
    if shape is not None and shape.rank not in (None, 0) and shape.num_elements() != 1:
        raise ValueError(f"EstimatorSpec(mode={mode!r}): loss must be a scalar, got shape {shape}")


def _default_export_outputs(
    export_outputs: Mapping[str, ExportOutput] | None, predictions: Any
) -> dict[str, ExportOutput]:
    if not export_outputs:
        return {DEFAULT_SERVING_SIGNATURE: PredictOutput(predictions)}
    outputs = dict(export_outputs)
    for name, output in outputs.items():
        if not isinstance(output, ExportOutput):
            raise TypeError(
                f"EstimatorSpec: export_outputs[{name!r}] must be an estimator_core.export "
                f"ExportOutput (PredictOutput, ClassificationOutput, RegressionOutput), "
                f"got {type(output).__name__}"
            )
    if len(outputs) == 1:
        (only,) = outputs.values()
        outputs.setdefault(DEFAULT_SERVING_SIGNATURE, only)
    elif DEFAULT_SERVING_SIGNATURE not in outputs:
        raise ValueError(
            f"EstimatorSpec: with several export_outputs ({sorted(outputs)}), one must be "
            f"named {DEFAULT_SERVING_SIGNATURE!r}"
        )
    return outputs
