"""Iris as TensorFlow's ``iris_data.py`` sample module served it, from scikit-learn (no download).

``load_data()`` → ``(train_x, train_y), (test_x, test_y)``: dicts of column name → float32 array
(120 / 30 rows, a fixed shuffle) and int class ids; the input functions batch them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_iris

CSV_COLUMN_NAMES = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth", "Species"]
SPECIES = ["Setosa", "Versicolor", "Virginica"]


def load_data(seed: int = 0):
    """``(train_x, train_y), (test_x, test_y)``; the features keyed by ``CSV_COLUMN_NAMES``."""
    x, y = load_iris(return_X_y=True)
    order = np.random.RandomState(seed).permutation(len(y))
    train, test = order[:120], order[120:]

    def columns(rows):
        return {name: x[rows, i].astype(np.float32) for i, name in enumerate(CSV_COLUMN_NAMES[:4])}

    return (columns(train), y[train].astype(np.int64)), (columns(test), y[test].astype(np.int64))


def train_input_fn(features, labels, batch_size):
    """Shuffled, repeated batches for training."""
    dataset = tf.data.Dataset.from_tensor_slices((dict(features), labels))
    return dataset.shuffle(1000).repeat().batch(batch_size)


def eval_input_fn(features, labels, batch_size):
    """Batches for evaluation (``labels=None``: for prediction)."""
    features = dict(features)
    inputs = features if labels is None else (features, labels)
    return tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
