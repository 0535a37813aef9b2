"""How a model_fn is executed: the one interface between the Estimator and TensorFlow.

The Estimator owns the outer loop (checkpoints, hooks, summaries of results, stopping); a
backend runs model_fn in one mode for a number of steps and reports what happened. The TF2
backend (:mod:`estimator_core.function_backend`) traces model_fn into ``tf.function`` loops;
a later backend may run TF1-style model_fns in a ``tf.compat.v1`` graph behind the same methods.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from estimator_core.checkpoints import CheckpointFormat
from estimator_core.export.serving import ServingInputReceiver
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec
from estimator_core.variables import VariableStore


class LoopResult(NamedTuple):
    """What one call of :meth:`ModelFnBackend.train` or :meth:`ModelFnBackend.evaluate` did.

    ``steps``: steps run (fewer than asked when the input ended or the loss stopped being finite).
    ``values``: ``loss`` and the predictions (a dict key, or ``predictions`` for a single tensor)
    at the last step run, as numpy arrays.
    """

    steps: int
    values: dict[str, np.ndarray]


class ModelFnBackend(abc.ABC):
    """Runs model_fn. Variables live in ``store``; ``global_step`` counts training steps."""

    store: VariableStore
    global_step: tf.Variable

    def make_iterator(self, dataset: tf.data.Dataset, mode: str) -> Any:
        """The iterator over ``dataset`` that :meth:`train` / :meth:`evaluate` / :meth:`predict`
        take in ``mode``: ``iter(dataset)``, or a distributed iterator under a strategy."""
        return iter(dataset)

    @abc.abstractmethod
    def prepare(self, mode: str, iterator: Any, infinite: bool = False) -> None:
        """Build model_fn for ``mode`` and this input before the first step, when the backend can.

        Afterwards :meth:`traced_spec` returns the spec (and its hooks) for ``mode``.
        """

    @abc.abstractmethod
    def train(self, iterator: Any, num_steps: int, infinite: bool = False) -> LoopResult:
        """Run up to ``num_steps`` (>= 1) TRAIN steps on batches from ``iterator``.

        ``infinite``: the input never ends (a repeated dataset), so end-of-input checks can go.

        Each step calls model_fn, applies its ``train_op`` and adds one to ``global_step``.
        Stops early at the end of the input or after a step whose loss is not finite.
        Raises ``tf.errors.OutOfRangeError`` if the input has no batch at all.
        """

    @abc.abstractmethod
    def evaluate(self, iterator: Any, num_steps: int, infinite: bool = False) -> LoopResult:
        """Run up to ``num_steps`` (>= 1) EVAL steps, updating the streaming metrics."""

    @abc.abstractmethod
    def reset_metrics(self) -> None:
        """Zero the streaming metrics (``eval_metric_ops`` and the mean loss)."""

    @abc.abstractmethod
    def metric_results(self) -> dict[str, np.ndarray]:
        """The streaming metrics' values: each ``eval_metric_ops`` entry, and ``loss``."""

    @abc.abstractmethod
    def predict(self, iterator: Any, num_batches: int) -> list[Any]:
        """PREDICT-mode ``predictions`` (numpy) for up to ``num_batches`` batches, one per batch.

        Fewer (or none) at the end of the input.
        """

    @abc.abstractmethod
    def traced_spec(self, mode: str) -> EstimatorSpec | None:
        """The EstimatorSpec model_fn returned the last time it was traced in ``mode``."""

    @abc.abstractmethod
    def checkpoint_format(self, config: RunConfig, directory: str) -> CheckpointFormat:
        """How this backend's weights are saved to and restored from ``directory``."""

    @abc.abstractmethod
    def serving_functions(
        self, receiver: ServingInputReceiver
    ) -> tuple[dict[str, Callable[..., Any]], dict[str, tf.Variable]]:
        """Concrete functions per ``export_outputs`` signature, and the variables they use by key."""
