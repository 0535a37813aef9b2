"""Heads: logits → predictions, loss, metrics and export outputs, as tf.estimator's heads.

The modules keep tf.estimator's names (``estimator_core.head.binary_class_head`` for
``tensorflow_estimator.python.estimator.head.binary_class_head``); the classes are also
``est.BinaryClassHead`` etc.
"""

from estimator_core.head.base_head import Head
from estimator_core.head.binary_class_head import BinaryClassHead
from estimator_core.head.multi_class_head import MultiClassHead
from estimator_core.head.multi_head import MultiHead
from estimator_core.head.multi_label_head import MultiLabelHead
from estimator_core.head.regression_head import (
    LogisticRegressionHead,
    PoissonRegressionHead,
    RegressionHead,
)

__all__ = [
    "BinaryClassHead",
    "Head",
    "LogisticRegressionHead",
    "MultiClassHead",
    "MultiHead",
    "MultiLabelHead",
    "PoissonRegressionHead",
    "RegressionHead",
]
