"""Linear estimators: LinearClassifier, LinearRegressor, LinearEstimator.

The logits are :func:`estimator_core.feature_column.linear_model` of the feature columns
(categorical columns bare: one weight per id; ``sparse_combiner`` for multivalent ones).
Variables keep tf.estimator's names, ``linear/linear_model/<column>/weights`` and
``linear/linear_model/bias_weights``, so a tf.estimator 2.x checkpoint with the same columns
warm-starts these estimators.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from estimator_core.canned.dnn import WarmStart, check_features
from estimator_core.canned.optimizers import get_optimizer_instance
from estimator_core.estimator import Estimator
from estimator_core.feature_column import linear_model
from estimator_core.head.base_head import SUM_OVER_BATCH_SIZE, Head
from estimator_core.head.head_utils import binary_or_multi_class_head
from estimator_core.head.regression_head import RegressionHead
from estimator_core.mode_keys import ModeKeys
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec
from estimator_core.variables import exact_names

_LEARNING_RATE = 0.2  # tf.estimator's rate for a named optimizer
_SPARSE_COMBINERS = ("mean", "sqrtn", "sum")


def linear_logits(
    features: Mapping[str, Any], units: int, feature_columns: Sequence[Any], sparse_combiner: str
) -> tf.Tensor:
    """The ``[batch, units]`` logits of the linear model (variables under ``linear/``)."""
    with exact_names(), tf.name_scope("linear"):
        return linear_model(features, feature_columns, units, sparse_combiner)


def default_linear_learning_rate(num_columns: int, cap: float) -> float:
    """tf.estimator's rate for a linear model of ``num_columns`` columns:
    ``min(cap, 1 / sqrt(num_columns))``."""
    return min(cap, 1.0 / math.sqrt(num_columns))


def check_sparse_combiner(sparse_combiner: str) -> str:
    if sparse_combiner not in _SPARSE_COMBINERS:
        raise ValueError(
            f"sparse_combiner must be one of {_SPARSE_COMBINERS}, got {sparse_combiner!r}"
        )
    return sparse_combiner


def _linear_model_fn(
    head: Head, feature_columns: Iterable[Any], optimizer: Any, sparse_combiner: str
) -> Callable[..., EstimatorSpec]:
    feature_columns = tuple(feature_columns or ())
    sparse_combiner = check_sparse_combiner(sparse_combiner)

    # Graph-style code: AutoGraph's conversion would only cost time.
    @tf.autograph.experimental.do_not_convert
    def model_fn(features, labels, mode):
        check_features(features)
        logits = linear_logits(features, head.logits_dimension, feature_columns, sparse_combiner)
        opt = None
        if mode == ModeKeys.TRAIN:
            # None (not a tf.estimator default, but accepted there): FTRL at min(0.2, 1/sqrt(n)).
            if optimizer is None:
                rate = default_linear_learning_rate(len(feature_columns), _LEARNING_RATE)
                opt = get_optimizer_instance("Ftrl", rate)
            else:
                opt = get_optimizer_instance(optimizer, _LEARNING_RATE)
        return head.create_estimator_spec(
            features=features, mode=mode, labels=labels, optimizer=opt, logits=logits
        )

    return model_fn


class LinearClassifier(Estimator):
    """A linear classifier, as ``tf.estimator.LinearClassifier``::

        color = tf.feature_column.categorical_column_with_vocabulary_list("color", ["r", "g"])
        classifier = est.LinearClassifier(feature_columns=[color, age], n_classes=3)

    Loss, predictions, metrics and export signatures: those of
    :class:`estimator_core.head.BinaryClassHead` (``n_classes=2``) or
    :class:`estimator_core.head.MultiClassHead`.

    Args:
      feature_columns: dense or categorical feature columns (bare categorical columns get one
        weight per id; crossed and weighted columns too).
      model_dir, config, warm_start_from: as :class:`estimator_core.Estimator`.
      n_classes, weight_column, label_vocabulary, loss_reduction: as
        :class:`estimator_core.DNNClassifier`.
      optimizer: a Keras 3 optimizer, a callable returning one, or one of ``'Adagrad'``,
        ``'Adam'``, ``'Ftrl'``, ``'RMSProp'``, ``'SGD'`` with learning rate 0.2 (tf.estimator's).
        Default ``'Ftrl'``. (tf.estimator's ``LinearSDCA`` is not available.)
      sparse_combiner: how a multivalent categorical column's weights combine per example:
        ``"sum"`` (default), ``"mean"`` or ``"sqrtn"``.
    """

    def __init__(
        self,
        feature_columns: Iterable[Any],
        model_dir: str | os.PathLike | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
        warm_start_from: WarmStart = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
        sparse_combiner: str = "sum",
    ) -> None:
        head = binary_or_multi_class_head(
            n_classes, weight_column, label_vocabulary, loss_reduction
        )
        super().__init__(
            model_fn=_linear_model_fn(head, feature_columns, optimizer, sparse_combiner),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )


class LinearRegressor(Estimator):
    """A linear regressor, as ``tf.estimator.LinearRegressor``: squared-error loss and the
    predictions, metrics and export signatures of :class:`estimator_core.head.RegressionHead`.
    ``label_dimension``: targets per example; other arguments as :class:`LinearClassifier`."""

    def __init__(
        self,
        feature_columns: Iterable[Any],
        model_dir: str | os.PathLike | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
        warm_start_from: WarmStart = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
        sparse_combiner: str = "sum",
    ) -> None:
        head = RegressionHead(
            label_dimension=label_dimension,
            weight_column=weight_column,
            loss_reduction=loss_reduction,
        )
        super().__init__(
            model_fn=_linear_model_fn(head, feature_columns, optimizer, sparse_combiner),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )


class LinearEstimator(Estimator):
    """A linear model with a head of your choice, as ``tf.estimator.LinearEstimator``;
    arguments as :class:`LinearClassifier`."""

    def __init__(
        self,
        head: Head,
        feature_columns: Iterable[Any],
        model_dir: str | os.PathLike | None = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
        sparse_combiner: str = "sum",
        warm_start_from: WarmStart = None,
    ) -> None:
        super().__init__(
            model_fn=_linear_model_fn(head, feature_columns, optimizer, sparse_combiner),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )
