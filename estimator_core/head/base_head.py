"""The ``Head`` interface and what every head shares: label, logits and weight checks, loss
reduction, export outputs and the EstimatorSpec a head builds.

A head turns logits into predictions, a loss, evaluation metrics and export outputs; the
premade estimators are a logits network plus a head. The heads keep tf.estimator 2.15's
arguments, metric keys, prediction keys and export signature names.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.metric_keys import MetricKeys
from estimator_core.export.outputs import ClassificationOutput
from estimator_core.graph_checks import assert_that
from estimator_core.mode_keys import ModeKeys
from estimator_core.spec import EstimatorSpec

DEFAULT_SERVING_KEY = "serving_default"
# TF Serving knows serving_default; these three are tf.estimator's own convention.
CLASSIFY_SERVING_KEY = "classification"
REGRESS_SERVING_KEY = "regression"
PREDICT_SERVING_KEY = "predict"

SUM = "sum"
SUM_OVER_BATCH_SIZE = "sum_over_batch_size"
MEAN = "weighted_mean"
SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
# tf.losses.Reduction (Keras) and tf.compat.v1.losses.Reduction values → the reduction used.
_REDUCTIONS = {
    "sum": SUM,
    "weighted_sum": SUM,
    "sum_over_batch_size": SUM_OVER_BATCH_SIZE,
    "weighted_sum_over_batch_size": SUM_OVER_BATCH_SIZE,
    "auto": SUM_OVER_BATCH_SIZE,
    "weighted_mean": MEAN,
    "mean": MEAN,
    "weighted_sum_by_nonzero_weights": SUM_BY_NONZERO_WEIGHTS,
}


class Head(abc.ABC):
    """Interface of a model's head: logits in; predictions, loss, metrics and an EstimatorSpec
    out. ``tf.estimator.Head``'s methods and meaning::

        def model_fn(features, labels, mode):
            head = est.MultiClassHead(n_classes=3)
            logits = keras.layers.Dense(head.logits_dimension)(...)
            return head.create_estimator_spec(
                features=features, mode=mode, labels=labels, logits=logits,
                optimizer=keras.optimizers.Adagrad(0.05))
    """

    @property
    @abc.abstractmethod
    def name(self) -> str | None:
        """The head's name; metric keys end in ``/<name>`` when it is set."""

    @property
    @abc.abstractmethod
    def logits_dimension(self) -> int:
        """Size of the last dimension of the logits the head takes."""

    @property
    @abc.abstractmethod
    def loss_reduction(self) -> str:
        """How the training loss is reduced over the batch (a ``tf.losses.Reduction`` value)."""

    @abc.abstractmethod
    def loss(
        self,
        labels: Any,
        logits: Any,
        features: Mapping[str, Any] | None = None,
        mode: str | None = None,
        regularization_losses: Sequence[Any] | None = None,
    ) -> tf.Tensor:
        """The scalar training loss (reduced per ``loss_reduction``, regularization added)."""

    @abc.abstractmethod
    def predictions(self, logits: Any, keys: Sequence[str] | None = None) -> dict[str, Any]:
        """The predictions of ``logits``: all the head's keys, or only ``keys``."""

    @abc.abstractmethod
    def metrics(self, regularization_losses: Sequence[Any] | None = None) -> dict[str, Any]:
        """New Keras metrics keyed by metric key (not yet updated)."""

    @abc.abstractmethod
    def update_metrics(
        self,
        eval_metrics: dict[str, Any],
        features: Mapping[str, Any],
        logits: Any,
        labels: Any,
        regularization_losses: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """Update ``eval_metrics`` (from :meth:`metrics`) with this batch; returns them."""

    def _export_outputs(self, predictions: dict[str, Any]) -> dict[str, Any]:
        """The PREDICT-mode export outputs, keyed by signature name."""
        raise NotImplementedError(
            "Subclasses of Head must implement create_estimator_spec() or _export_outputs()."
        )

    def _eval_loss_and_metrics(
        self,
        features: Mapping[str, Any],
        logits: Any,
        labels: Any,
        regularization_losses: Sequence[Any] | None,
    ) -> tuple[tf.Tensor, dict[str, Any]]:
        """The EVAL spec's loss and updated metrics."""
        loss = self.loss(labels, logits, features, ModeKeys.EVAL, regularization_losses)
        metrics = self.metrics(regularization_losses)
        return loss, self.update_metrics(metrics, features, logits, labels, regularization_losses)

    def _predict_spec(self, features: Mapping[str, Any], logits: Any) -> EstimatorSpec:
        del features
        predictions = self.predictions(logits)
        return EstimatorSpec(
            ModeKeys.PREDICT,
            predictions=predictions,
            export_outputs=self._export_outputs(predictions),
        )

    def _summary_key(self, key: str) -> str:
        return f"{key}/{self.name}" if self.name else key

    # Graph-style code: AutoGraph's conversion (model_fn is converted) would only cost time.
    @tf.autograph.experimental.do_not_convert
    def create_estimator_spec(
        self,
        features: Mapping[str, Any],
        mode: str,
        logits: Any,
        labels: Any = None,
        optimizer: keras.optimizers.Optimizer | None = None,
        trainable_variables: Sequence[Any] | None = None,
        train_op_fn: Callable[[tf.Tensor], Any] | None = None,
        update_ops: Sequence[Any] | None = None,
        regularization_losses: Sequence[Any] | None = None,
    ) -> EstimatorSpec:
        """The :class:`EstimatorSpec` for ``mode``, as tf.estimator's heads built it.

        PREDICT: ``predictions`` and the head's export outputs (``serving_default``,
        ``classification`` and/or ``regression``, and ``predict``). EVAL: the loss and the
        head's metrics (the Estimator adds ``loss``, the mean of the batch losses). TRAIN: the
        loss and a train_op, from exactly one of

        - ``optimizer``: a Keras 3 optimizer minimising the loss over ``trainable_variables``,
          or, when that is None, over every trainable variable model_fn created;
        - ``train_op_fn(loss)``: returns what ``EstimatorSpec.train_op`` takes (a Keras
          optimizer, a callable ``train_op(tape)``, ...).

        ``update_ops`` are accepted and not needed: TF2 runs stateful ops (batch-norm moving
        averages) where they are created. ``regularization_losses`` are added to the loss.

        Unlike tf.estimator's, the TRAIN and EVAL specs carry no ``predictions``: the compiled
        loops compute whatever a spec holds at every step (tf.estimator's graphs ran only what
        was fetched), and the predictions cost ~30 % of a small model's training step.
        """
        del update_ops
        with tf.name_scope(self.name or "head"):
            if mode == ModeKeys.PREDICT:
                return self._predict_spec(features, logits)
            if mode == ModeKeys.EVAL:
                loss, metrics = self._eval_loss_and_metrics(
                    features, logits, labels, regularization_losses
                )
                return EstimatorSpec(mode, loss=loss, eval_metric_ops=metrics)
            loss = self.loss(labels, logits, features, mode, regularization_losses)
            train_op = train_op_from(optimizer, trainable_variables, train_op_fn, loss)
            return EstimatorSpec(mode, loss=loss, train_op=train_op)


def train_op_from(
    optimizer: Any,
    trainable_variables: Sequence[Any] | None,
    train_op_fn: Callable[[tf.Tensor], Any] | None,
    loss: tf.Tensor,
) -> Any:
    """The ``EstimatorSpec.train_op`` of a head's TRAIN spec (see
    :meth:`Head.create_estimator_spec`)."""
    if optimizer is not None and train_op_fn is not None:
        raise ValueError("train_op_fn and optimizer cannot both be set.")
    if optimizer is None and train_op_fn is None:
        raise ValueError("train_op_fn and optimizer cannot both be None.")
    if train_op_fn is not None:
        return train_op_fn(loss)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "The given optimizer is not a Keras 3 optimizer (keras.optimizers.*). "
            f"Received optimizer of type {type(optimizer).__name__}"
        )
    if trainable_variables is None:
        return optimizer
    if not isinstance(trainable_variables, (list, tuple)):
        raise ValueError(
            "trainable_variables should be a list or a tuple. Given type: "
            f"{type(trainable_variables).__name__}."
        )
    variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]

    def minimize(tape: tf.GradientTape) -> None:
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
        )

    return minimize


# -- checks and conversions -------------------------------------------------------------------


def reduction_of(loss_reduction: Any) -> str:
    """The reduction named by ``loss_reduction`` (``tf.losses.Reduction.SUM``,
    ``"sum_over_batch_size"``, a ``tf.compat.v1.losses.Reduction`` value, ...); NONE and
    unknown values raise ``ValueError``."""
    reduction = _REDUCTIONS.get(str(loss_reduction).lower()) if loss_reduction else None
    if reduction is None:
        raise ValueError(
            f"Invalid loss_reduction: {loss_reduction!r}. See `tf.losses.Reduction` for valid "
            f"options (not NONE): {sorted(set(_REDUCTIONS))}."
        )
    return reduction


def check_logits_final_dim(logits: Any, expected_logits_dimension: int) -> tf.Tensor:
    """``logits`` as float32, checked to be ``[D0, ..., DN, expected_logits_dimension]``."""
    logits = tf.cast(logits, tf.float32)
    shape = logits.shape
    if shape.rank is not None and shape.rank < 2:
        raise ValueError(
            f"logits must have rank at least 2.  Received rank {shape.rank}, shape {shape}"
        )
    if shape.rank is not None and shape[-1] is not None and shape[-1] != expected_logits_dimension:
        raise ValueError(
            f"logits shape must be [D0, D1, ... DN, logits_dimension], got {shape}; this "
            f"head's logits_dimension is {expected_logits_dimension}"
        )
    return logits


def check_dense_labels_match_logits_and_reshape(
    labels: Any, logits: tf.Tensor, expected_labels_dimension: int
) -> tf.Tensor:
    """``labels`` shaped ``[D0, ..., DN, expected_labels_dimension]`` like ``logits``
    (``[D0, ..., DN]`` gains the last dimension when it is 1); a mismatch is a ``ValueError``
    when the shapes are known, else an ``InvalidArgumentError`` when the step runs."""
    if labels is None:
        raise ValueError(
            "You must provide a labels Tensor. Given: None. Check that your input_fn returns "
            "(features, labels) and that your data contains the label feature."
        )
    if isinstance(labels, (tf.SparseTensor, tf.compat.v1.SparseTensorValue)):
        raise ValueError(
            "SparseTensor labels are not supported. Labels must be a Tensor of shape "
            f"[D0, D1, ... DN, {expected_labels_dimension}], e.g. [batch_size, "
            f"{expected_labels_dimension}]; in your input_fn use tf.sparse.to_dense()."
        )
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank is not None and labels.shape.rank == logits.shape.rank - 1:
        labels = tf.expand_dims(labels, -1)
    if labels.shape.rank is not None and labels.shape.rank < 2:
        raise ValueError(f"labels must have rank at least 2.  Received shape {labels.shape}")
    last = labels.shape[-1] if labels.shape.rank else None
    if last is not None and last != expected_labels_dimension:
        raise ValueError(
            f"Mismatched label shape. Expected labels dimension={expected_labels_dimension}. "
            f"Received {last}. Check n_classes (or label_dimension) and the shape of your label."
        )
    expected = tf.concat([tf.shape(logits)[:-1], [expected_labels_dimension]], axis=0)
    check = tf.debugging.assert_equal(
        tf.shape(labels),
        expected,
        message=f"labels shape must be [D0, D1, ... DN, {expected_labels_dimension}] matching logits",
    )
    with tf.control_dependencies([check]):
        return tf.identity(labels)


def get_weights_and_check_match_logits(
    features: Mapping[str, Any] | None,
    weight_column: Any,
    logits: tf.Tensor,
    allow_per_logit_weights: bool = False,
) -> Any:
    """The example weights of ``weight_column`` as float32 ``[D0, ..., DN, 1]`` (or
    ``[..., logits_dimension]`` when ``allow_per_logit_weights``), or ``1.0`` without one.

    ``weight_column``: a feature name, or a ``numeric_column`` (its ``normalizer_fn`` applied).
    """
    if weight_column is None:
        return 1.0
    key, normalizer = weight_column_key(weight_column), None
    if not isinstance(weight_column, str):
        normalizer = weight_column.normalizer_fn
    if features is None or key not in features:
        known = sorted(features) if features is not None else []
        raise ValueError(f"weight_column {key!r} is not in features (keys: {known})")
    weights = features[key]
    if isinstance(weights, (tf.SparseTensor, tf.RaggedTensor)):
        raise ValueError(f"weight_column {key!r}: weights must be a dense Tensor")
    weights = tf.convert_to_tensor(weights)
    if normalizer is not None:
        weights = tf.convert_to_tensor(normalizer(weights))
    if not (weights.dtype.is_floating or weights.dtype.is_integer):
        raise ValueError(
            f"Weight column should be castable to float. Given dtype: {weights.dtype.name}"
        )
    weights = tf.cast(weights, tf.float32)
    if weights.shape.rank is not None and weights.shape.rank == logits.shape.rank - 1:
        weights = tf.expand_dims(weights, -1)
    last = weights.shape[-1] if weights.shape.rank else None
    allowed = {1, logits.shape[-1]} if allow_per_logit_weights else {1}
    if last is not None and last not in allowed:
        raise ValueError(
            f"weight_column {key!r}: weights shape must be [D0, D1, ... DN]"
            + (
                ", [D0, D1, ... DN, 1] or [D0, D1, ... DN, logits_dimension]"
                if allow_per_logit_weights
                else " or [D0, D1, ... DN, 1]"
            )
            + f"; logits shape {logits.shape}, weights shape {weights.shape}"
        )
    check = tf.debugging.assert_equal(
        tf.shape(weights)[:-1],
        tf.shape(logits)[:-1],
        message=f"weight_column {key!r}: weights must have the batch shape of the logits",
    )
    with tf.control_dependencies([check]):
        return tf.identity(weights)


def weight_column_key(weight_column: Any) -> str:
    """The feature name of ``weight_column`` (a string or a ``numeric_column``)."""
    if isinstance(weight_column, str):
        return weight_column
    if type(weight_column).__name__.lstrip("_") != "NumericColumn":
        raise TypeError(
            "Weight column must be either a string or NumericColumn. Given type: "
            f"{type(weight_column).__name__}."
        )
    return weight_column.key


def compute_weighted_loss(unweighted_loss: tf.Tensor, weights: Any, reduction: str) -> tf.Tensor:
    """The scalar training loss: ``unweighted_loss * weights`` summed, then divided per
    ``reduction``: by nothing (SUM), the number of loss elements (SUM_OVER_BATCH_SIZE), the
    sum of the weights (MEAN) or their number of non-zeros (SUM_BY_NONZERO_WEIGHTS)."""
    weights = tf.broadcast_to(tf.convert_to_tensor(weights, tf.float32), tf.shape(unweighted_loss))
    total = tf.reduce_sum(unweighted_loss * weights)
    if reduction == SUM:
        return total
    if reduction == SUM_OVER_BATCH_SIZE:
        return tf.math.divide_no_nan(total, tf.cast(tf.size(unweighted_loss), tf.float32))
    if reduction == MEAN:
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights))
    return tf.math.divide_no_nan(total, tf.cast(tf.math.count_nonzero(weights), tf.float32))


def check_label_range(labels: tf.Tensor, n_classes: int, message: str | None = None) -> tf.Tensor:
    """``labels``, with a check when the step runs that each is in ``[0, n_classes)``."""
    in_range = tf.logical_and(
        tf.reduce_all(labels >= tf.cast(0, labels.dtype)),
        tf.reduce_all(labels <= tf.cast(n_classes - 1, labels.dtype)),
    )
    check = assert_that(
        in_range,
        message or f"Labels must be in [0, {n_classes - 1}]; got min/max:",
        tf.reduce_min(labels),
        tf.reduce_max(labels),
    )
    with tf.control_dependencies([check]):
        return tf.identity(labels)


def label_ids_from_vocabulary(labels: tf.Tensor, label_vocabulary: Sequence[str]) -> tf.Tensor:
    """int64 position of each string label in ``label_vocabulary``; a label that is not in it
    fails the step with an ``InvalidArgumentError`` naming the vocabulary."""
    if labels.dtype != tf.string:
        raise ValueError(
            f"Labels dtype should be string if there is a vocabulary. Instead got {labels.dtype.name}"
        )
    matches = tf.equal(labels[..., None], tf.constant(list(label_vocabulary)))
    found = tf.reduce_any(matches, axis=-1)
    check = assert_that(
        tf.reduce_all(found),
        f"Labels must be in label_vocabulary {list(label_vocabulary)}; got",
        tf.boolean_mask(labels, tf.logical_not(found)),
    )
    with tf.control_dependencies([check]):
        return tf.argmax(tf.cast(matches, tf.int8), axis=-1)


def all_class_ids(logits: tf.Tensor, n_classes: int) -> tf.Tensor:
    """int32 ``[batch, n_classes]``: ``0 .. n_classes-1`` on every row."""
    return tf.tile(tf.range(n_classes)[None, :], [tf.shape(logits)[0], 1])


def all_classes(
    logits: tf.Tensor, n_classes: int, label_vocabulary: Sequence[str] | None = None
) -> tf.Tensor:
    """string ``[batch, n_classes]``: the class names (the vocabulary, or the ids as strings)."""
    if label_vocabulary:
        names = tf.constant([list(label_vocabulary)])
    else:
        names = tf.strings.as_string(tf.range(n_classes)[None, :])
    return tf.tile(names, [tf.shape(logits)[0], 1])


def class_names(class_ids: tf.Tensor, label_vocabulary: Sequence[str] | None) -> tf.Tensor:
    """The name of each class id: its vocabulary entry, or the id as a string."""
    if label_vocabulary:
        return tf.gather(tf.constant(list(label_vocabulary)), class_ids)
    return tf.strings.as_string(class_ids)


def classification_output(
    scores: tf.Tensor, n_classes: int, label_vocabulary: Sequence[str] | None = None
) -> ClassificationOutput:
    """A ClassificationOutput of ``scores`` with every class name (TF Serving's Classify)."""
    return ClassificationOutput(
        scores=scores, classes=all_classes(scores, n_classes, label_vocabulary)
    )


def check_prediction_keys(keys: Sequence[str], valid_keys: Sequence[str]) -> None:
    for key in keys:
        if key not in valid_keys:
            raise ValueError(
                f"Prediction key must be in PredictionKeys, given: {key}. Valid prediction "
                f"keys include {list(valid_keys)}."
            )


def check_label_vocabulary(label_vocabulary: Any, n_classes: int | None = None) -> tuple | None:
    """``label_vocabulary`` as a tuple of distinct strings (None stays None)."""
    if label_vocabulary is None:
        return None
    if not isinstance(label_vocabulary, (list, tuple)):
        raise ValueError(
            f"label_vocabulary should be a list or a tuple. Given type: {type(label_vocabulary)}"
        )
    vocabulary = tuple(label_vocabulary)
    if not all(isinstance(v, str) for v in vocabulary):
        raise ValueError(f"label_vocabulary must hold strings, got {list(vocabulary)}")
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError(f"label_vocabulary has duplicates: {list(vocabulary)}")
    if n_classes is not None and len(vocabulary) != n_classes:
        raise ValueError(
            '"label_vocabulary" does not have "n_classes" items. '
            f"len(label_vocabulary)={len(vocabulary)}, n_classes={n_classes}, "
            f"label_vocabulary={list(vocabulary)}"
        )
    return vocabulary


def add_regularization(loss: tf.Tensor, regularization_losses: Sequence[Any] | None) -> tf.Tensor:
    if not regularization_losses:
        return loss
    return loss + tf.math.add_n([tf.cast(r, tf.float32) for r in regularization_losses])


def update_mean(metric: keras.metrics.Metric, values: tf.Tensor, weights: Any) -> None:
    """Update a Mean metric with ``values`` weighted by ``weights`` broadcast to their shape."""
    values = tf.cast(values, tf.float32)
    weights = tf.broadcast_to(tf.convert_to_tensor(weights, tf.float32), tf.shape(values))
    metric.update_state(values, sample_weight=weights)


def thresholds_of(thresholds: Any) -> tuple[float, ...]:
    """``thresholds`` as a tuple, each checked to be in (0, 1)."""
    thresholds = tuple(float(t) for t in thresholds) if thresholds else ()
    for threshold in thresholds:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"thresholds not in (0, 1): {thresholds}.")
    return thresholds


def regularization_metric(
    metrics: dict[str, Any], key: str, regularization_losses: Sequence[Any] | None
) -> None:
    """Add the ``regularization_loss`` Mean metric when there are regularization losses."""
    if regularization_losses is not None:
        metrics[key] = keras.metrics.Mean(name=MetricKeys.LOSS_REGULARIZATION)


def update_regularization(
    metrics: dict[str, Any], key: str, regularization_losses: Sequence[Any] | None
) -> None:
    if regularization_losses is not None:
        metrics[key].update_state(tf.math.add_n(list(regularization_losses)))
