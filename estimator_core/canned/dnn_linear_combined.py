"""Wide-and-deep estimators: DNNLinearCombinedClassifier, DNNLinearCombinedRegressor,
DNNLinearCombinedEstimator.

The logits are the sum of a linear model's (``linear/...`` variables, see
:mod:`estimator_core.canned.linear`) and a DNN's (``dnn/...``, see
:mod:`estimator_core.canned.dnn`); each part is trained by its own optimizer. With both parts
the train_op is a callable (which a distribution strategy of several replicas refuses); with
one part, that part's optimizer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import tensorflow as tf

from estimator_core.canned.dnn import (
    WarmStart,
    check_dropout,
    check_features,
    check_hidden_units,
    dnn_logits,
)
from estimator_core.canned.linear import (
    check_sparse_combiner,
    default_linear_learning_rate,
    linear_logits,
)
from estimator_core.canned.optimizers import get_optimizer_instance
from estimator_core.estimator import Estimator
from estimator_core.head.base_head import SUM_OVER_BATCH_SIZE, Head
from estimator_core.head.head_utils import binary_or_multi_class_head
from estimator_core.head.regression_head import RegressionHead
from estimator_core.mode_keys import ModeKeys
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec

# tf.estimator's rates for named optimizers here (lower than the single models' rates).
_DNN_LEARNING_RATE = 0.001
_LINEAR_LEARNING_RATE = 0.005


@contextlib.contextmanager
def _recorded_variables() -> Iterator[list[tf.Variable]]:
    """The variables created (or handed back by the Estimator's store) inside the block."""
    recorded: list[tf.Variable] = []

    def record(next_creator: Any, **kwargs: Any) -> tf.Variable:
        variable = next_creator(**kwargs)
        recorded.append(variable)
        return variable

    with tf.variable_creator_scope(record):
        yield recorded


def _trainable(variables: list[tf.Variable]) -> list[tf.Variable]:
    unique = {id(v): v for v in variables if v.trainable}
    return list(unique.values())


def _combined_model_fn(
    head: Head,
    linear_feature_columns: Iterable[Any] | None,
    linear_optimizer: Any,
    dnn_feature_columns: Iterable[Any] | None,
    dnn_optimizer: Any,
    dnn_hidden_units: Iterable[int] | None,
    dnn_activation_fn: Any,
    dnn_dropout: float | None,
    batch_norm: bool,
    linear_sparse_combiner: str,
) -> Callable[..., EstimatorSpec]:
    linear_columns = tuple(linear_feature_columns or ())
    dnn_columns = tuple(dnn_feature_columns or ())
    if not linear_columns and not dnn_columns:
        raise ValueError("Either linear_feature_columns or dnn_feature_columns must be defined.")
    if dnn_columns and not dnn_hidden_units:
        raise ValueError("dnn_hidden_units must be defined when dnn_feature_columns is specified.")
    hidden_units = check_hidden_units(dnn_hidden_units) if dnn_columns else ()
    dropout = check_dropout(dnn_dropout)
    combiner = check_sparse_combiner(linear_sparse_combiner)

    # Graph-style code: AutoGraph's conversion would only cost time.
    @tf.autograph.experimental.do_not_convert
    def model_fn(features, labels, mode):
        check_features(features)
        parts = []  # (logits, variables, optimizer)
        if dnn_columns:
            with _recorded_variables() as variables:
                logits = dnn_logits(
                    features,
                    mode,
                    head.logits_dimension,
                    hidden_units,
                    dnn_columns,
                    dnn_activation_fn,
                    dropout,
                    batch_norm,
                )
            parts.append((logits, variables, dnn_optimizer, _DNN_LEARNING_RATE))
        if linear_columns:
            with _recorded_variables() as variables:
                logits = linear_logits(features, head.logits_dimension, linear_columns, combiner)
            rate = default_linear_learning_rate(len(linear_columns), _LINEAR_LEARNING_RATE)
            parts.append((logits, variables, linear_optimizer, rate))
        logits = tf.math.add_n([part[0] for part in parts])
        if mode != ModeKeys.TRAIN:
            return head.create_estimator_spec(
                features=features, mode=mode, labels=labels, logits=logits
            )
        optimizers = [
            (get_optimizer_instance(opt, rate), _trainable(variables))
            for _, variables, opt, rate in parts
        ]
        if len(optimizers) == 1:
            return head.create_estimator_spec(
                features=features,
                mode=mode,
                labels=labels,
                logits=logits,
                optimizer=optimizers[0][0],
            )

        def train_op_fn(loss: tf.Tensor) -> Callable[[tf.GradientTape], None]:
            def train_op(tape: tf.GradientTape) -> None:
                every = [v for _, variables in optimizers for v in variables]
                gradients = iter(tape.gradient(loss, every))
                for optimizer, variables in optimizers:
                    pairs = [(next(gradients), v) for v in variables]
                    optimizer.apply_gradients([(g, v) for g, v in pairs if g is not None])

            return train_op

        return head.create_estimator_spec(
            features=features, mode=mode, labels=labels, logits=logits, train_op_fn=train_op_fn
        )

    return model_fn


class DNNLinearCombinedClassifier(Estimator):
    """A wide-and-deep classifier, as ``tf.estimator.DNNLinearCombinedClassifier``::

        est.DNNLinearCombinedClassifier(
            linear_feature_columns=[color_x_city],          # wide
            dnn_feature_columns=[age, color_embedding],     # deep
            dnn_hidden_units=[64, 32],
        )

    Args:
      linear_feature_columns, linear_optimizer, linear_sparse_combiner: the linear part, as
        :class:`estimator_core.LinearClassifier`; a named optimizer gets learning rate
        ``min(0.005, 1 / sqrt(len(linear_feature_columns)))``. Default ``'Ftrl'``.
      dnn_feature_columns, dnn_optimizer, dnn_hidden_units, dnn_activation_fn, dnn_dropout,
        batch_norm: the DNN part, as :class:`estimator_core.DNNClassifier`; a named optimizer
        gets learning rate 0.001. Default ``'Adagrad'``. (Both rates are tf.estimator's.)
      n_classes, weight_column, label_vocabulary, loss_reduction, model_dir, config,
        warm_start_from: as :class:`estimator_core.DNNClassifier`.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        linear_feature_columns: Iterable[Any] | None = None,
        linear_optimizer: Any = "Ftrl",
        dnn_feature_columns: Iterable[Any] | None = None,
        dnn_optimizer: Any = "Adagrad",
        dnn_hidden_units: Iterable[int] | None = None,
        dnn_activation_fn: Any = tf.nn.relu,
        dnn_dropout: float | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        config: RunConfig | None = None,
        warm_start_from: WarmStart = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
        batch_norm: bool = False,
        linear_sparse_combiner: str = "sum",
    ) -> None:
        head = binary_or_multi_class_head(
            n_classes, weight_column, label_vocabulary, loss_reduction
        )
        super().__init__(
            model_fn=_combined_model_fn(
                head,
                linear_feature_columns,
                linear_optimizer,
                dnn_feature_columns,
                dnn_optimizer,
                dnn_hidden_units,
                dnn_activation_fn,
                dnn_dropout,
                batch_norm,
                linear_sparse_combiner,
            ),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )


class DNNLinearCombinedRegressor(Estimator):
    """A wide-and-deep regressor, as ``tf.estimator.DNNLinearCombinedRegressor``: the head of
    :class:`estimator_core.DNNRegressor` (``label_dimension`` targets), the parts of
    :class:`DNNLinearCombinedClassifier`."""

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        linear_feature_columns: Iterable[Any] | None = None,
        linear_optimizer: Any = "Ftrl",
        dnn_feature_columns: Iterable[Any] | None = None,
        dnn_optimizer: Any = "Adagrad",
        dnn_hidden_units: Iterable[int] | None = None,
        dnn_activation_fn: Any = tf.nn.relu,
        dnn_dropout: float | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        config: RunConfig | None = None,
        warm_start_from: WarmStart = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
        batch_norm: bool = False,
        linear_sparse_combiner: str = "sum",
    ) -> None:
        head = RegressionHead(
            label_dimension=label_dimension,
            weight_column=weight_column,
            loss_reduction=loss_reduction,
        )
        super().__init__(
            model_fn=_combined_model_fn(
                head,
                linear_feature_columns,
                linear_optimizer,
                dnn_feature_columns,
                dnn_optimizer,
                dnn_hidden_units,
                dnn_activation_fn,
                dnn_dropout,
                batch_norm,
                linear_sparse_combiner,
            ),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )


class DNNLinearCombinedEstimator(Estimator):
    """Wide and deep with a head of your choice, as ``tf.estimator.DNNLinearCombinedEstimator``
    (which had no ``warm_start_from``; it is accepted here as everywhere)."""

    def __init__(
        self,
        head: Head,
        model_dir: str | os.PathLike | None = None,
        linear_feature_columns: Iterable[Any] | None = None,
        linear_optimizer: Any = "Ftrl",
        dnn_feature_columns: Iterable[Any] | None = None,
        dnn_optimizer: Any = "Adagrad",
        dnn_hidden_units: Iterable[int] | None = None,
        dnn_activation_fn: Any = tf.nn.relu,
        dnn_dropout: float | None = None,
        config: RunConfig | None = None,
        batch_norm: bool = False,
        linear_sparse_combiner: str = "sum",
        warm_start_from: WarmStart = None,
    ) -> None:
        super().__init__(
            model_fn=_combined_model_fn(
                head,
                linear_feature_columns,
                linear_optimizer,
                dnn_feature_columns,
                dnn_optimizer,
                dnn_hidden_units,
                dnn_activation_fn,
                dnn_dropout,
                batch_norm,
                linear_sparse_combiner,
            ),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )
