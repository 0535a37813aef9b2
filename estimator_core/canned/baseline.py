"""Baseline estimators: BaselineClassifier, BaselineRegressor, BaselineEstimator.

They ignore the feature values and learn one bias per logit (``baseline/bias``): a classifier
learns the class distribution of its labels, a regressor their mean.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from estimator_core.canned.optimizers import get_optimizer_instance
from estimator_core.estimator import Estimator
from estimator_core.graph_checks import assert_that
from estimator_core.head.base_head import SUM_OVER_BATCH_SIZE, Head, weight_column_key
from estimator_core.head.head_utils import binary_or_multi_class_head
from estimator_core.head.regression_head import RegressionHead
from estimator_core.mode_keys import ModeKeys
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec
from estimator_core.variables import exact_names

_LEARNING_RATE = 0.3  # tf.estimator's rate for a named optimizer


def _batch_size(features: Any, weight_key: str | None) -> tf.Tensor:
    """The batch size every feature (the weights aside) agrees on."""
    if not isinstance(features, Mapping):
        features = {"": features}
    sizes = []
    for key, value in features.items():
        if key == weight_key:  # serving needs no weights
            continue
        if isinstance(value, tf.SparseTensor):
            sizes.append(value.dense_shape[0])
        elif isinstance(value, tf.RaggedTensor):
            sizes.append(value.nrows(out_type=tf.int64))
        else:
            sizes.append(tf.shape(value, out_type=tf.int64)[0])
    if not sizes:
        raise ValueError("features must not be empty: the baseline needs the batch size")
    checks = [
        assert_that(tf.equal(sizes[0], size), "features differ in batch size:", sizes[0], size)
        for size in sizes[1:]
    ]
    with tf.control_dependencies(checks):
        return tf.identity(sizes[0])


def _baseline_model_fn(
    head: Head, optimizer: Any, weight_column: Any
) -> Callable[..., EstimatorSpec]:
    weight_key = weight_column_key(weight_column) if weight_column is not None else None

    # Graph-style code: AutoGraph's conversion would only cost time.
    @tf.autograph.experimental.do_not_convert
    def model_fn(features, labels, mode):
        batch = _batch_size(features, weight_key)
        with exact_names(), tf.name_scope("baseline"):
            bias = tf.Variable(
                lambda: tf.zeros([head.logits_dimension]), name="bias", dtype=tf.float32
            )
        logits = bias * tf.ones(tf.stack([batch, head.logits_dimension]))
        opt = get_optimizer_instance(optimizer, _LEARNING_RATE) if mode == ModeKeys.TRAIN else None
        return head.create_estimator_spec(
            features=features, mode=mode, labels=labels, optimizer=opt, logits=logits
        )

    return model_fn


class BaselineClassifier(Estimator):
    """Predicts the class distribution of the training labels, whatever the features, as
    ``tf.estimator.BaselineClassifier``; a model to beat.

    ``optimizer``: as :class:`estimator_core.DNNClassifier`, a named one with learning rate
    0.3; default ``'Ftrl'``. Other arguments as :class:`estimator_core.DNNClassifier`.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
    ) -> None:
        head = binary_or_multi_class_head(
            n_classes, weight_column, label_vocabulary, loss_reduction
        )
        super().__init__(
            model_fn=_baseline_model_fn(head, optimizer, weight_column),
            model_dir=model_dir,
            config=config,
        )


class BaselineRegressor(Estimator):
    """Predicts the mean of the training labels, as ``tf.estimator.BaselineRegressor``."""

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
    ) -> None:
        head = RegressionHead(
            label_dimension=label_dimension,
            weight_column=weight_column,
            loss_reduction=loss_reduction,
        )
        super().__init__(
            model_fn=_baseline_model_fn(head, optimizer, weight_column),
            model_dir=model_dir,
            config=config,
        )


class BaselineEstimator(Estimator):
    """A baseline with a head of your choice, as ``tf.estimator.BaselineEstimator``."""

    def __init__(
        self,
        head: Head,
        model_dir: str | os.PathLike | None = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
    ) -> None:
        super().__init__(
            model_fn=_baseline_model_fn(head, optimizer, None),
            model_dir=model_dir,
            config=config,
        )
