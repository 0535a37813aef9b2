"""How a model_fn is executed: the one interface between the Estimator and TensorFlow.

The Estimator owns the outer loop (checkpoints, hooks, summaries of results, stopping); a
backend runs model_fn in one mode for a number of steps and reports what happened. The TF2
backend (:mod:`estimator_core.function_backend`) traces model_fn into ``tf.function`` loops;
the graph backend (:mod:`estimator_core.graph_backend`) runs TF1-style model_fns in
``tf.compat.v1`` graphs and sessions behind the same methods.

Hooks' fetches are resolved behind the backend: :meth:`ModelFnBackend.train` and its siblings
take the ``SessionRunArgs`` the hooks' ``before_run`` returned (``requests``) and give back one
``SessionRunValues`` per request (``hook_values``).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from estimator_core.checkpoints import CheckpointFormat
from estimator_core.hooks import SessionRunArgs, SessionRunValues
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
    hook_values: list[SessionRunValues | None] | None = None


class ModelFnBackend(abc.ABC):
    """Runs model_fn. Variables live in ``store``; ``global_step`` counts training steps."""

    store: VariableStore
    global_step: tf.Variable

    def global_step_value(self) -> int:
        """The global step of the weights in memory."""
        return int(self.global_step.numpy())

    def make_input(self, call_input_fn: Callable[[], Any], mode: str) -> Any:
        """The input of ``call_input_fn`` (the user's input_fn with its arguments) in ``mode``:
        what :meth:`make_iterator` iterates, built once per input_fn object."""
        dataset = call_input_fn()
        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError(
                "input_fn must return a tf.data.Dataset of (features, labels) or of features, "
                f"got {type(dataset).__name__}; TF1's dataset.make_one_shot_iterator().get_next() "
                "is replaced by returning the dataset itself (or run a TF1 model_fn in the graph "
                "backend, which takes both)"
            )
        return dataset

    def is_infinite(self, dataset: Any) -> bool:
        """True when the input of :meth:`make_input` never ends."""
        return int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY)

    def session(self, mode: str) -> Any:
        """The session hooks receive (``after_create_session``, ``end``, the run context);
        None where there is none."""
        return None

    @contextlib.contextmanager
    def hook_scope(self, mode: str, hook: Any) -> Iterator[None]:
        """Where ``hook``'s methods run (the graph backend: TF1 hooks with ``mode``'s graph as
        the default graph)."""
        yield

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
    def train(
        self,
        iterator: Any,
        num_steps: int,
        infinite: bool = False,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> LoopResult:
        """Run up to ``num_steps`` (>= 1) TRAIN steps on batches from ``iterator``.

        ``infinite``: the input never ends (a repeated dataset), so end-of-input checks can go.
        ``requests``: the hooks' fetches; ``LoopResult.hook_values`` holds their values at
        the last step run, in the same order.

        Each step calls model_fn, applies its ``train_op`` and adds one to ``global_step``.
        Stops early at the end of the input or after a step whose loss is not finite.
        Raises ``tf.errors.OutOfRangeError`` if the input has no batch at all.
        """

    @abc.abstractmethod
    def evaluate(
        self,
        iterator: Any,
        num_steps: int,
        infinite: bool = False,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> LoopResult:
        """Run up to ``num_steps`` (>= 1) EVAL steps, updating the streaming metrics."""

    @abc.abstractmethod
    def reset_metrics(self) -> None:
        """Zero the streaming metrics (``eval_metric_ops`` and the mean loss)."""

    @abc.abstractmethod
    def metric_results(self) -> dict[str, np.ndarray]:
        """The streaming metrics' values: each ``eval_metric_ops`` entry, and ``loss``."""

    @abc.abstractmethod
    def predict(
        self,
        iterator: Any,
        num_batches: int,
        requests: Sequence[SessionRunArgs | None] = (),
    ) -> tuple[list[Any], list[SessionRunValues | None] | None]:
        """PREDICT-mode ``predictions`` (numpy) for up to ``num_batches`` batches, one per batch
        (fewer, or none, at the end of the input), and the hooks' values at the last batch.
        """

    @abc.abstractmethod
    def traced_spec(self, mode: str) -> EstimatorSpec | None:
        """The EstimatorSpec model_fn returned the last time it was traced in ``mode``."""

    @abc.abstractmethod
    def checkpoint_format(self, config: RunConfig, directory: str) -> CheckpointFormat:
        """How this backend's weights are saved to and restored from ``directory``."""

    @abc.abstractmethod
    def write_saved_model(
        self,
        export_dir: str,
        serving_input_receiver_fn: Callable[[], Any],
        checkpoint_path: str | None,
    ) -> None:
        """Write a SavedModel of the weights in memory (equal to ``checkpoint_path``) into the
        new directory ``export_dir``: one signature per ``export_outputs`` entry."""


def resolve_named_fetches(
    requests: Sequence[SessionRunArgs | None],
    values: dict[str, Any],
    spec: EstimatorSpec | None,
) -> list[SessionRunValues | None]:
    """Hook requests answered from a loop's ``values`` (numpy, by name): each fetch is a name
    among ``values`` or a tensor model_fn returned as ``loss`` or a predictions value."""
    by_identity = {}
    if spec is not None:
        by_identity[id(spec.loss)] = "loss"
        if isinstance(spec.predictions, dict):
            by_identity.update({id(t): k for k, t in spec.predictions.items()})
        elif spec.predictions is not None:
            by_identity[id(spec.predictions)] = "predictions"

    def lookup(fetch: Any) -> Any:
        name = fetch if isinstance(fetch, str) else by_identity.get(id(fetch))
        if name is None or name not in values:
            raise KeyError(
                f"hook fetch {fetch!r} is not available; a hook can fetch {sorted(values)} "
                "(by name, or the loss/predictions tensors model_fn returned)"
            )
        return values[name]

    return [
        None
        if request is None
        else SessionRunValues(tf.nest.map_structure(lookup, request.fetches))
        for request in requests
    ]
