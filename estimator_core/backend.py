"""How a model_fn is executed: the one interface between the Estimator and TensorFlow.

The Estimator owns the outer loop (checkpoints, hooks, summaries of results, stopping; the
hooks' methods are all called by :class:`estimator_core.hooked_loop.HookedLoop`); a backend runs
model_fn in one mode for a number of steps, fetches what the hooks asked for, and reports what
happened. The TF2 backend (:mod:`estimator_core.function_backend`) traces model_fn into
``tf.function`` loops and resolves fetches (names, or the tensors model_fn returned) from the
loop's values; the graph backend (:mod:`estimator_core.graph_backend`) runs TF1 model_fns in
``tf.compat.v1`` graphs and sessions and ``session.run``s the fetches (graph tensors, ops or
names) in the same run as the steps. Which one runs a model_fn: :mod:`estimator_core.backend_choice`.

Fetch requests (``requests``): one entry per hook, in hook order, each the ``SessionRunArgs``
the hook's ``before_run`` returned, or None. ``LoopResult.hook_values`` holds, for each entry,
a ``SessionRunValues`` of its ``fetches`` at the loop's last step, in their structure (None for
a None entry). A backend that cannot honour a request (a ``feed_dict`` without feeds, an
unknown name) raises ``ValueError``/``KeyError`` naming it. Every hook method is called inside
:meth:`ModelFnBackend.hook_scope` (a graph backend makes its graph the default there).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import tensorflow as tf

from estimator_core.checkpoints import CheckpointFormat
from estimator_core.export.serving import ServingInputReceiver
from estimator_core.hooks import SessionRunValues
from estimator_core.model_fn import as_dataset
from estimator_core.run_config import RunConfig
from estimator_core.spec import EstimatorSpec
from estimator_core.variables import VariableStore


class LoopResult(NamedTuple):
    """What one call of :meth:`ModelFnBackend.train` or :meth:`ModelFnBackend.evaluate` did.

    ``steps``: steps run (fewer than asked when the input ended or, in TRAIN mode, after a step
    whose loss is not finite). ``values``: ``loss`` and the predictions (a dict key, or
    ``predictions`` for a single tensor) at the last step run, as numpy arrays.
    ``hook_values``: the hooks' fetches at the last step, one per request (module docstring).
    """

    steps: int
    values: dict[str, Any]
    hook_values: list[SessionRunValues | None] | None = None


class ModelFnBackend(abc.ABC):
    """Runs model_fn. Variables live in ``store``; ``global_step`` counts training steps."""

    store: VariableStore
    global_step: tf.Variable

    def global_step_value(self) -> int:
        """The global step of the weights in memory."""
        return int(self.global_step.numpy())

    def make_input(self, call_input_fn: Callable[[], Any], mode: str) -> Any:
        """The input of ``call_input_fn`` (the user's input_fn with its arguments bound) in
        ``mode``: what :meth:`make_iterator` iterates. The Estimator builds it once per
        input_fn object. Default: a Dataset (:func:`~estimator_core.model_fn.as_dataset`)."""
        return as_dataset(call_input_fn())

    def is_infinite(self, data: Any) -> bool:
        """True when the input of :meth:`make_input` never ends."""
        return int(data.cardinality()) == int(tf.data.INFINITE_CARDINALITY)

    def session(self, mode: str) -> Any:
        """The session hooks receive in ``mode`` (``after_create_session``, ``end``,
        ``run_context.session``); None where there is none (the function backend)."""
        return None

    @contextlib.contextmanager
    def hook_scope(self, mode: str, hook: Any) -> Iterator[None]:
        """Where ``hook``'s methods run in ``mode`` (a graph backend: with its graph as the
        default graph). The function backend: anywhere."""
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
        self, iterator: Any, num_steps: int, infinite: bool = False, requests: Sequence[Any] = ()
    ) -> LoopResult:
        """Run up to ``num_steps`` (>= 1) TRAIN steps on batches from ``iterator``.

        ``infinite``: the input never ends (a repeated dataset), so end-of-input checks can go.
        ``requests``: the hooks' fetch requests (module docstring).

        Each step calls model_fn and applies its ``train_op``; the global step advances by one,
        unless the step itself moved it (a TF1 train_op that increments it: then by what it
        did). Stops early at the end of the input or after a step whose loss is not finite.
        Raises ``tf.errors.OutOfRangeError`` if the input has no batch at all.
        """

    @abc.abstractmethod
    def evaluate(
        self, iterator: Any, num_steps: int, infinite: bool = False, requests: Sequence[Any] = ()
    ) -> LoopResult:
        """Run up to ``num_steps`` (>= 1) EVAL steps, updating the streaming metrics."""

    @abc.abstractmethod
    def reset_metrics(self) -> None:
        """Zero the streaming metrics (``eval_metric_ops`` and the mean loss)."""

    @abc.abstractmethod
    def metric_results(self) -> dict[str, Any]:
        """The streaming metrics' values: each ``eval_metric_ops`` entry, and ``loss``."""

    @abc.abstractmethod
    def predict(
        self, iterator: Any, num_batches: int, requests: Sequence[Any] = ()
    ) -> tuple[list[Any], list[SessionRunValues | None]]:
        """PREDICT-mode ``predictions`` (numpy) for up to ``num_batches`` batches, one per
        batch with each output whole (whatever its first dimension), and the hooks' values at
        the last batch. Fewer at the end of the input; ``tf.errors.OutOfRangeError`` when
        there is none.
        """

    @abc.abstractmethod
    def traced_spec(self, mode: str) -> EstimatorSpec | None:
        """The EstimatorSpec model_fn returned the last time it was traced in ``mode``."""

    @abc.abstractmethod
    def checkpoint_format(self, config: RunConfig, directory: str) -> CheckpointFormat:
        """How this backend's weights are written to checkpoints in ``directory`` and read
        back (see :mod:`estimator_core.checkpoints`)."""

    @abc.abstractmethod
    def write_saved_model(
        self,
        export_dir: str,
        serving_input_receiver_fn: Callable[[], ServingInputReceiver],
        checkpoint_path: str,
    ) -> None:
        """Write a SavedModel of model_fn(PREDICT) on what serving_input_receiver_fn builds
        (called inside a graph: it may create placeholders), with the weights of
        ``checkpoint_path`` (the weights in memory equal it), into the new directory
        ``export_dir``. Its signatures are tf.estimator's: one per ``export_outputs`` entry and
        receiver, named, fed and given method names as
        :class:`~estimator_core.export.ExportOutput` says."""
