"""What predict() yields: the PREDICT spec's outputs, per batch or per example."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


def select_keys(predictions: Any, keys: Sequence[str] | None) -> Any:
    """``predictions`` limited to ``keys`` (None: all of them)."""
    if keys is None:
        return predictions
    if not isinstance(predictions, dict):
        raise ValueError("predict_keys argument is not valid in case of non-dict predictions.")
    missing = [k for k in keys if k not in predictions]
    if len(missing) == len(keys):
        raise ValueError(
            f"Expected to run at least one output from {sorted(predictions)}, provided "
            f"predict_keys {list(keys)}."
        )
    if missing:
        raise ValueError(f"predict_keys {missing} are not in predictions {sorted(predictions)}")
    return {k: predictions[k] for k in keys}


def single_examples(predictions: Any) -> Iterator[Any]:
    """The examples of one batch of predictions: rows of a tensor, or dicts of rows.

    Every output must have the batch as its first dimension (tf.estimator's rule).
    """
    if not isinstance(predictions, dict):
        if np.ndim(predictions) == 0:
            raise ValueError(
                "Batch length of predictions should be same: the prediction is a scalar, "
                "not a batch; use yield_single_examples=False"
            )
        yield from predictions
        return
    length = None
    for key, value in predictions.items():
        size = np.shape(value)[0] if np.ndim(value) else None
        if length is None:
            length = size
        if size is None or size != length:
            raise ValueError(
                f"Batch length of predictions should be same. {key} has different batch "
                f"length than others ({dict((k, np.shape(v)) for k, v in predictions.items())}); "
                "use yield_single_examples=False to get each output whole per batch."
            )
    for i in range(length or 0):
        yield {k: v[i] for k, v in predictions.items()}
