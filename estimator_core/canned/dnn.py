"""Deep neural network estimators: DNNClassifier, DNNRegressor, DNNEstimator.

The network is tf.estimator's: the feature columns' :func:`input_layer`, then one Keras
``Dense`` layer per ``hidden_units`` entry (``activation_fn``, Glorot-uniform kernel, zero
bias), each followed by dropout (training only) and batch normalization when asked, then a
linear ``logits`` layer. Variables keep tf.estimator's names::

    dnn/input_from_feature_columns/input_layer/<column>_embedding/embedding_weights
    dnn/hiddenlayer_<i>/kernel, dnn/hiddenlayer_<i>/bias
    dnn/hiddenlayer_<i>/batchnorm_<i>/{gamma,beta,moving_mean,moving_variance}
    dnn/logits/kernel, dnn/logits/bias

so a tf.estimator 2.x checkpoint of the same architecture warm-starts these estimators.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from estimator_core.canned.optimizers import get_optimizer_instance
from estimator_core.checkpoints import WarmStartSettings
from estimator_core.estimator import Estimator
from estimator_core.feature_column import input_layer
from estimator_core.head.base_head import SUM_OVER_BATCH_SIZE, Head
from estimator_core.head.head_utils import binary_or_multi_class_head
from estimator_core.head.regression_head import RegressionHead
from estimator_core.mode_keys import ModeKeys
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec
from estimator_core.variables import exact_names

# tf.estimator 1.x's rate for a named optimizer. tf.estimator 2.x used Keras' defaults
# instead (Adagrad: 0.001), with which its DNNClassifier barely learned iris in 1,000 steps.
_LEARNING_RATE = 0.05
_BATCH_NORM_MOMENTUM = 0.999  # tf.estimator's (Keras' 0.99 failed on some problems)

WarmStart = str | os.PathLike | WarmStartSettings | None


def dnn_logits(
    features: Mapping[str, Any],
    mode: str,
    units: int,
    hidden_units: Sequence[int],
    feature_columns: Sequence[Any],
    activation_fn: Callable[[tf.Tensor], tf.Tensor] | str | None,
    dropout: float | None,
    batch_norm: bool,
) -> tf.Tensor:
    """The ``[batch, units]`` logits of the DNN over ``features`` (variables named as in the
    module docstring)."""
    training = mode == ModeKeys.TRAIN
    with exact_names(), tf.name_scope("dnn"):
        with tf.name_scope("input_from_feature_columns"):
            net = input_layer(features, feature_columns)
        for index, width in enumerate(hidden_units):
            name = f"hiddenlayer_{index}"
            layer_scope = f"{tf.get_current_name_scope()}/{name}/"
            net = keras.layers.Dense(
                width, activation=activation_fn, kernel_initializer="glorot_uniform", name=name
            )(net)
            if dropout is not None and training:
                net = tf.nn.dropout(net, rate=dropout)
            if batch_norm:
                # Inside the hidden layer's own scope (re-entered by its absolute name).
                with tf.name_scope(layer_scope):
                    net = keras.layers.BatchNormalization(
                        momentum=_BATCH_NORM_MOMENTUM, name=f"batchnorm_{index}"
                    )(net, training=training)
        return keras.layers.Dense(units, kernel_initializer="glorot_uniform", name="logits")(net)


def check_hidden_units(hidden_units: Any) -> tuple[int, ...]:
    """``hidden_units`` as a tuple of positive ints, or a ``ValueError``."""
    try:
        units = tuple(hidden_units)
    except TypeError:
        raise ValueError(
            f"hidden_units must be an iterable of ints, e.g. [64, 32]; got {hidden_units!r}"
        ) from None
    if not units or not all(isinstance(u, int) and u > 0 for u in units):
        raise ValueError(f"hidden_units must be positive ints, e.g. [64, 32]; got {hidden_units!r}")
    return units


def check_dropout(dropout: Any) -> float | None:
    if dropout is not None and not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1) or None, got {dropout!r}")
    return None if dropout is None else float(dropout)


def check_features(features: Any) -> None:
    if not isinstance(features, dict):
        raise ValueError(
            f"features should be a dictionary of `Tensor`s. Given type: {type(features)}"
        )


def _dnn_model_fn(
    head: Head,
    hidden_units: Iterable[int],
    feature_columns: Iterable[Any],
    optimizer: Any,
    activation_fn: Any,
    dropout: float | None,
    batch_norm: bool,
) -> Callable[..., EstimatorSpec]:
    hidden_units = check_hidden_units(hidden_units)
    feature_columns = tuple(feature_columns or ())
    dropout = check_dropout(dropout)

    # Graph-style code: AutoGraph's conversion would only cost time.
    @tf.autograph.experimental.do_not_convert
    def model_fn(features, labels, mode):
        check_features(features)
        logits = dnn_logits(
            features,
            mode,
            head.logits_dimension,
            hidden_units,
            feature_columns,
            activation_fn,
            dropout,
            batch_norm,
        )
        opt = get_optimizer_instance(optimizer, _LEARNING_RATE) if mode == ModeKeys.TRAIN else None
        return head.create_estimator_spec(
            features=features, mode=mode, labels=labels, optimizer=opt, logits=logits
        )

    return model_fn


class DNNClassifier(Estimator):
    """A classifier for TensorFlow DNN models, as ``tf.estimator.DNNClassifier``::

        classifier = est.DNNClassifier(
            feature_columns=[tf.feature_column.numeric_column("x", shape=(4,))],
            hidden_units=[10, 10],
            n_classes=3,
        )
        classifier.train(input_fn, steps=1000)

    Loss: softmax (``n_classes > 2``) or sigmoid (2) cross-entropy, weighted by
    ``weight_column``, reduced per ``loss_reduction``. Predictions, metrics and export
    signatures: those of :class:`estimator_core.head.MultiClassHead` /
    :class:`estimator_core.head.BinaryClassHead`.

    Args:
      hidden_units: units per hidden layer, e.g. ``[64, 32]``.
      feature_columns: dense feature columns (numeric, bucketized, indicator, embedding).
      model_dir, config, warm_start_from: as :class:`estimator_core.Estimator`.
      n_classes: number of classes (> 1).
      weight_column: a feature name or ``numeric_column``: each example's weight.
      label_vocabulary: the class names when labels are strings (``n_classes`` of them).
      optimizer: a Keras 3 optimizer, a callable returning one, or one of ``'Adagrad'``,
        ``'Adam'``, ``'Ftrl'``, ``'RMSProp'``, ``'SGD'`` with learning rate 0.05 (tf.estimator
        1.x's; 2.x gave names Keras' own defaults). Default ``'Adagrad'``.
      activation_fn: activation of the hidden layers (a function or a Keras name).
      dropout: probability of dropping a hidden unit in training, or None.
      loss_reduction: a ``tf.losses.Reduction`` value; default ``SUM_OVER_BATCH_SIZE``.
      batch_norm: batch normalization after each hidden layer (momentum 0.999).
    """

    def __init__(
        self,
        hidden_units: Iterable[int],
        feature_columns: Iterable[Any],
        model_dir: str | os.PathLike | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        optimizer: Any = "Adagrad",
        activation_fn: Any = tf.nn.relu,
        dropout: float | None = None,
        config: RunConfig | None = None,
        warm_start_from: WarmStart = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
        batch_norm: bool = False,
    ) -> None:
        head = binary_or_multi_class_head(
            n_classes, weight_column, label_vocabulary, loss_reduction
        )
        super().__init__(
            model_fn=_dnn_model_fn(
                head, hidden_units, feature_columns, optimizer, activation_fn, dropout, batch_norm
            ),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )


class DNNRegressor(Estimator):
    """A regressor for TensorFlow DNN models, as ``tf.estimator.DNNRegressor``.

    Loss: squared error, weighted by ``weight_column``, reduced per ``loss_reduction``;
    predictions, metrics and export signatures of :class:`estimator_core.head.RegressionHead`.
    ``label_dimension``: regression targets per example. Other arguments as
    :class:`DNNClassifier`.
    """

    def __init__(
        self,
        hidden_units: Iterable[int],
        feature_columns: Iterable[Any],
        model_dir: str | os.PathLike | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        optimizer: Any = "Adagrad",
        activation_fn: Any = tf.nn.relu,
        dropout: float | None = None,
        config: RunConfig | None = None,
        warm_start_from: WarmStart = None,
        loss_reduction: str = SUM_OVER_BATCH_SIZE,
        batch_norm: bool = False,
    ) -> None:
        head = RegressionHead(
            label_dimension=label_dimension,
            weight_column=weight_column,
            loss_reduction=loss_reduction,
        )
        super().__init__(
            model_fn=_dnn_model_fn(
                head, hidden_units, feature_columns, optimizer, activation_fn, dropout, batch_norm
            ),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )


class DNNEstimator(Estimator):
    """A DNN with a head of your choice, as ``tf.estimator.DNNEstimator``::

        est.DNNEstimator(head=est.MultiLabelHead(n_classes=3), hidden_units=[32],
                         feature_columns=columns)

    Arguments as :class:`DNNClassifier`; the head decides loss, predictions, metrics and
    export signatures.
    """

    def __init__(
        self,
        head: Head,
        hidden_units: Iterable[int],
        feature_columns: Iterable[Any],
        model_dir: str | os.PathLike | None = None,
        optimizer: Any = "Adagrad",
        activation_fn: Any = tf.nn.relu,
        dropout: float | None = None,
        config: RunConfig | None = None,
        warm_start_from: WarmStart = None,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(
            model_fn=_dnn_model_fn(
                head, hidden_units, feature_columns, optimizer, activation_fn, dropout, batch_norm
            ),
            model_dir=model_dir,
            config=config,
            warm_start_from=warm_start_from,
        )
