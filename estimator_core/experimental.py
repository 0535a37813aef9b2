"""``tf.estimator.experimental``: the names tf.estimator kept there (early stopping, the
in-memory evaluator), at that path."""

from estimator_core.early_stopping import (
    make_early_stopping_hook,
    stop_if_higher_hook,
    stop_if_lower_hook,
    stop_if_no_decrease_hook,
    stop_if_no_increase_hook,
)
from estimator_core.hooks import InMemoryEvaluatorHook

__all__ = [
    "InMemoryEvaluatorHook",
    "make_early_stopping_hook",
    "stop_if_higher_hook",
    "stop_if_lower_hook",
    "stop_if_no_decrease_hook",
    "stop_if_no_increase_hook",
]
