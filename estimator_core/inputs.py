"""``tf.estimator.inputs``: input_fns over NumPy arrays and pandas DataFrames, on ``tf.data``.

tf.estimator fed these through TF1 queues (``queue_capacity`` elements, ``num_threads``
enqueuing threads); here each input_fn returns a ``tf.data.Dataset`` of the same
``(features, target)`` batches:
``from_tensor_slices`` → ``repeat(num_epochs)`` → ``shuffle(queue_capacity)`` when ``shuffle``
→ ``batch(batch_size)``. As with the queues, a shuffle mixes neighbouring epochs (a shuffle
queue took the epochs one after the other), ``num_epochs=None`` repeats forever in full batches
only, and a finite ``num_epochs`` ends with a partial last batch. ``queue_capacity`` is the
shuffle buffer (it was the shuffle queue's capacity); ``num_threads`` only tuned the TF1
enqueuing and is accepted and ignored: the Dataset reads in order, so the order is
repeatable whatever its value (in TF1 it was repeatable only with one thread).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

_TARGET_KEY = "__target_key__"


def numpy_input_fn(
    x: Any,
    y: Any = None,
    batch_size: int = 128,
    num_epochs: int | None = 1,
    shuffle: bool | None = None,
    queue_capacity: int = 1000,
    num_threads: int = 1,
) -> Callable[[], tf.data.Dataset]:
    """An input_fn feeding a NumPy array or dict of arrays ``x`` (and targets ``y``: an array, a
    dict of arrays or None).

    Its elements are ``features`` (the batch of ``x``: a tensor for an array, a dict with the
    same keys for a dict) when ``y`` is None, else ``(features, target)`` (a tensor, or a dict
    with ``y``'s keys). ``shuffle`` must be given as a bool. Errors as tf.estimator's:
    ``ValueError`` for an empty ``x`` or ``y``, keys in both, arrays of different lengths;
    ``TypeError`` when ``x`` is neither a dict nor an array (raised when the input_fn is
    called, as tf.estimator did).
    """
    _check_common(shuffle, batch_size, num_epochs, queue_capacity)

    def input_fn() -> tf.data.Dataset:
        if isinstance(x, dict):
            if not x:
                raise ValueError("x cannot be an empty dict")
            data = dict(sorted(x.items()))
        elif isinstance(x, np.ndarray):
            if x.size == 0:
                raise ValueError("x cannot be an empty array")
            data = {"__direct_np_input__": x}
        else:
            raise TypeError(f"x must be a dict or array; got {type(x).__name__}")
        feature_keys = list(data)
        if y is None:
            target_keys = None
        elif isinstance(y, dict):
            if not y:
                raise ValueError("y cannot be empty dict, use None instead.")
            target_keys = sorted(y)
            duplicates = set(feature_keys) & set(target_keys)
            if duplicates:
                raise ValueError(
                    f"{len(duplicates)} duplicate keys are found in both x and y: {duplicates}"
                )
            data.update(y)
        else:
            target_keys = _TARGET_KEY
            while target_keys in data:
                target_keys += "_n"
            data[target_keys] = y
        lengths = {np.shape(v)[0] if np.ndim(v) else None for v in data.values()}
        if len(lengths) != 1:
            raise ValueError(
                "Length of tensors in x and y is mismatched. All elements in x and y must "
                "have the same length.\n"
                f"Shapes in x: { {k: np.shape(data[k]) for k in feature_keys} }\n"
                f"Shapes in y: {_shapes(y)}\n"
            )

        def split(batch: dict[str, tf.Tensor]) -> Any:
            features = (
                batch["__direct_np_input__"]
                if isinstance(x, np.ndarray)
                else {k: batch[k] for k in feature_keys}
            )
            if target_keys is None:
                return features
            if isinstance(target_keys, str):
                return features, batch[target_keys]
            return features, {k: batch[k] for k in target_keys}

        return _batches(data, batch_size, num_epochs, shuffle, queue_capacity).map(split)

    return input_fn


def pandas_input_fn(
    x: Any,
    y: Any = None,
    batch_size: int = 128,
    num_epochs: int | None = 1,
    shuffle: bool | None = None,
    queue_capacity: int | None = 1000,
    num_threads: int = 1,
    target_column: str = "target",
) -> Callable[[], tf.data.Dataset]:
    """An input_fn feeding a pandas DataFrame ``x`` (and target ``y``: a Series, a DataFrame or
    None; its index must equal ``x``'s).

    Elements: a dict of ``x``'s columns, and when ``y`` is given the target (a tensor for a
    Series; a dict of ``y``'s columns for a DataFrame). ``target_column`` names a Series
    target inside the reader (it must not be a column of ``x``). ``queue_capacity=None``
    means ``len(x)`` (``4 * len(x)`` when shuffling), as tf.estimator set it. Errors as
    tf.estimator's (``shuffle`` must be a bool; ``target_column`` a string; mismatched
    indexes).
    """
    try:
        import pandas as pd
    except ImportError as err:
        raise TypeError("pandas_input_fn should not be called without pandas installed") from err
    if queue_capacity is None:
        queue_capacity = 4 * len(x) if shuffle else len(x)
    _check_common(shuffle, batch_size, num_epochs, max(queue_capacity, 1))
    if not isinstance(target_column, str):
        raise TypeError("target_column must be a string type")
    if not isinstance(x, pd.DataFrame):
        raise TypeError(f"x must be a pandas DataFrame; got {type(x).__name__}")
    x = x.copy()
    target_columns: Any = None
    if y is not None:
        if target_column in x:
            raise ValueError(
                f"Cannot use name {target_column} for target column: DataFrame already has a "
                f"column with that name: {x.columns}"
            )
        if not np.array_equal(x.index, y.index):
            raise ValueError(
                f"Index for x and y are mismatched.\nIndex for x: {x.index}\n"
                f"Index for y: {y.index}\n"
            )
        if isinstance(y, pd.DataFrame):
            target_columns = {}
            for column in y.columns:
                inside = column if column not in x else f"{column}_{uuid.uuid4()}"
                target_columns[column] = inside
                x[inside] = y[column]
        else:
            target_columns = target_column
            x[target_column] = y
    data = {str(column): x[column].to_numpy() for column in x.columns}

    def input_fn() -> tf.data.Dataset:
        def split(batch: dict[str, tf.Tensor]) -> Any:
            features = dict(batch)
            if target_columns is None:
                return features
            if isinstance(target_columns, str):
                return features, features.pop(target_columns)
            return features, {k: features.pop(inside) for k, inside in target_columns.items()}

        return _batches(data, batch_size, num_epochs, shuffle, queue_capacity).map(split)

    return input_fn


def _check_common(shuffle: Any, batch_size: Any, num_epochs: Any, queue_capacity: Any) -> None:
    if not isinstance(shuffle, bool):
        raise ValueError(
            "shuffle must be provided and explicitly set as boolean (it is recommended to set "
            f"it as True for training); got {shuffle}"
        )
    for name, value in (("batch_size", batch_size), ("queue_capacity", queue_capacity)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if num_epochs is not None and (not isinstance(num_epochs, int) or num_epochs < 1):
        raise ValueError(f"num_epochs must be a positive integer or None; got {num_epochs!r}")


def _batches(
    data: dict[str, Any],
    batch_size: int,
    num_epochs: int | None,
    shuffle: bool,
    queue_capacity: int,
) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices(data).repeat(num_epochs)
    if shuffle:
        dataset = dataset.shuffle(queue_capacity)
    return dataset.batch(batch_size, drop_remainder=num_epochs is None)


def _shapes(y: Any) -> Any:
    if y is None:
        return None
    if isinstance(y, dict):
        return {k: np.shape(v) for k, v in y.items()}
    return np.shape(y)
