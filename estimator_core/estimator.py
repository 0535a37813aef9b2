"""The Estimator: train, evaluate, predict and export a model described by a model_fn."""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from estimator_core import hooks as hooks_lib
from estimator_core.backend import LoopResult, ModelFnBackend
from estimator_core.backend_choice import BackendChoice
from estimator_core.checkpoints import Checkpointer, WarmStartSettings
from estimator_core.distribute import EVALUATOR, PS, input_context, training_strategy
from estimator_core.eval_history import EvalRecorder, eval_dir
from estimator_core.export.serving import ServingInputReceiver
from estimator_core.hooked_loop import HookedLoop
from estimator_core.mode_keys import ModeKeys
from estimator_core.model_fn import ModelFn, check_model_fn, input_fn_call
from estimator_core.predictions import select_keys, single_examples
from estimator_core.run_config import RunConfig, apply_session_config
from estimator_core.spec import EstimatorSpec

logger = logging.getLogger("estimator_core")

_EVAL_INPUTS_KEPT = 8
_HOOKS = "hooks: each hook must be a SessionRunHook (or have its five methods)"
_LISTENERS = (
    "saving_listeners must be a list of CheckpointSaverListener (or of objects with its methods)"
)


class Estimator:
    """Trains, evaluates, predicts with and exports the model a ``model_fn`` describes.

    ``model_fn(features, labels, mode, params, config)`` (declaring any subset that includes
    ``features``) builds the model and returns an :class:`EstimatorSpec` for ``mode``. It may
    build Keras layers, optimizers and metrics on every call: they share one set of variables
    across calls and modes (see :mod:`estimator_core.variables`).

    The outer loop of :meth:`train`, in pseudo-code (the hooks' calls are
    :class:`~estimator_core.hooked_loop.HookedLoop`'s)::

        restore the latest checkpoint in model_dir unless the weights in memory already equal it
        iterator = iter(input_fn())
        hooks: begin, after_create_session, start_at     # the saver saves step 0 of a new model
        while global_step < target and no hook asked to stop:
            n = steps until the target, the next hook trigger (checkpoint saves among them)
                or iterations_per_loop
            hooks.before_run(); backend.train(iterator, n, fetches); hooks.after_run()
        hooks: end                                       # the saver saves the last step

    Args:
      model_fn: the model function.
      model_dir: where checkpoints and summaries go; must agree with ``config.model_dir`` when
        both are set; a new temporary directory when neither is.
      config: a :class:`RunConfig` (or an instance of a subclass, kept as it is).
      params: dict passed to model_fn (and to input_fns that declare ``params``); copied.
      warm_start_from: a :class:`WarmStartSettings`, or a checkpoint path, model_dir or exported
        SavedModel directory to warm-start every variable from. Applied only when model_dir has
        no checkpoint yet; the global step is not taken.
    """

    def __init__(
        self,
        model_fn: Callable[..., EstimatorSpec],
        model_dir: str | os.PathLike | None = None,
        config: RunConfig | None = None,
        params: dict[str, Any] | None = None,
        warm_start_from: str | os.PathLike | WarmStartSettings | None = None,
    ) -> None:
        config = config if config is not None else RunConfig()
        if not isinstance(config, RunConfig):
            raise ValueError(
                "config must be an instance of `RunConfig` (estimator_core.RunConfig), but "
                f"provided {config!r}."
            )
        model_dir = os.fspath(model_dir) if model_dir is not None else None
        if model_dir and config.model_dir and _norm(model_dir) != _norm(config.model_dir):
            raise ValueError(
                "`model_dir` are set both in constructor and `RunConfig`, but with different "
                f"values. In constructor: {model_dir!r}, in `RunConfig`: {config.model_dir!r}"
            )
        self._params = copy.deepcopy(dict(params or {}))
        check_model_fn(model_fn, self._params)
        model_dir = model_dir or config.model_dir
        if not model_dir:
            model_dir = tempfile.mkdtemp(prefix="estimator_core-")
            logger.warning("Using temporary folder as model directory: %s", model_dir)
        tf.io.gfile.makedirs(model_dir)
        apply_session_config(config.session_config)
        # Before any other TensorFlow op: MultiWorkerMirroredStrategy configures collectives.
        strategy = training_strategy(config.train_distribute, config.cluster)
        self._config = _with(config, model_dir=model_dir, train_distribute=strategy)
        self._input_context = input_context(strategy, config.cluster)
        if warm_start_from is not None and not isinstance(warm_start_from, WarmStartSettings):
            warm_start_from = WarmStartSettings(os.fspath(warm_start_from))
        self._warm_start_from = warm_start_from
        if config.tf_random_seed is not None:
            keras.utils.set_random_seed(config.tf_random_seed)
        if config.mixed_precision is not None:
            keras.mixed_precision.set_global_policy(config.mixed_precision)
            logger.info(
                "Keras global dtype policy set to %s (process-wide)", config.mixed_precision
            )
        self._model_fn = ModelFn(model_fn, self._params, self._config)
        # Only the chief writes checkpoints and summaries to model_dir; the other tasks write
        # theirs to a directory deleted with the Estimator (what TensorFlow's guides do).
        self._scratch = (
            None
            if self._config.is_chief
            else tempfile.TemporaryDirectory(prefix=f"estimator_core-{config.task_type}-")
        )
        private_dir = self._scratch.name if self._scratch is not None else None
        self._train_writer = tf.summary.create_file_writer(private_dir or model_dir)
        self._eval_recorder = EvalRecorder()
        self._train_input: tuple[Callable[..., Any], Any, bool] | None = None
        self._eval_inputs: list[tuple[Callable[..., Any], Any]] = []
        self._checkpointer = Checkpointer(model_dir, None, self._global_step, save_dir=private_dir)
        # Made here when RunConfig forces a backend; with backend="auto" on the first call, by
        # its checkpoint or its input (see backend_choice). The checkpoint is not looked at
        # here: a damaged model_dir is the first call's error, not the constructor's.
        self._backend: ModelFnBackend | None = None
        self._backend_choice = BackendChoice(
            self._model_fn, self._config, self._train_writer, self._adopt
        )
        if self._config.backend != "auto":
            self._backend_choice.without_input(None)

    # -- properties -------------------------------------------------------------------------

    @property
    def model_dir(self) -> str:
        return self._config.model_dir  # type: ignore[return-value]

    @property
    def config(self) -> RunConfig:
        """The RunConfig in use: the one given (its class kept), with model_dir filled in."""
        return self._config

    @property
    def params(self) -> dict[str, Any]:
        return copy.deepcopy(self._params)

    @property
    def model_fn(self) -> Callable[..., EstimatorSpec]:
        """model_fn with params bound: ``model_fn(features, labels, mode, config)`` → spec."""
        model_fn = self._model_fn

        def public_model_fn(features: Any, labels: Any, mode: str, config: Any) -> EstimatorSpec:
            return model_fn(features, labels, mode, config)

        return public_model_fn

    @property
    def warm_start_from(self) -> WarmStartSettings | None:
        """The warm start given to the constructor (as :class:`WarmStartSettings`), or None."""
        return self._warm_start_from

    # -- train ------------------------------------------------------------------------------

    def train(
        self,
        input_fn: Callable[..., tf.data.Dataset],
        hooks: Sequence[hooks_lib.SessionRunHook] | None = None,
        steps: int | None = None,
        max_steps: int | None = None,
        saving_listeners: Sequence[hooks_lib.CheckpointSaverListener] | None = None,
    ) -> Estimator:
        """Train on ``input_fn``'s data; returns ``self``.

        ``steps``: train this many steps more than the global step at the start of the call
        (two calls with ``steps=n`` train 2n steps). ``max_steps``: train until the global step
        reaches it (two calls with ``max_steps=n`` train n steps in all; a call that starts at
        or past it does nothing). Give at most one; with neither, train until the input ends.
        Training also ends at the end of the input, or when a hook requests a stop.

        Given the same ``input_fn`` object as the previous train() call, training continues that
        call's input pipeline where it stopped (tf.estimator restarted the data every call); a
        new callable, or an input that ended, is built anew by calling it.

        Starts from the latest checkpoint in model_dir (reusing the weights in memory when they
        already equal it). Checkpoints: a :class:`~estimator_core.CheckpointSaverHook` saves
        step 0 of a new model, every ``RunConfig.save_checkpoints_steps``/``_secs``, the steps
        ``saving_listeners`` ask for, and the last step; one passed in ``hooks`` replaces
        RunConfig's policy. ``training_chief_hooks`` run on the chief only. The global step
        advances by one per step, unless model_fn's train_op advances it itself (TF1).
        """
        if self._config.task_type in (EVALUATOR, PS):
            raise ValueError(
                "Train has been called wrong configuration. Please use "
                "tf.estimator.train_and_evaluate (estimator_core.train_and_evaluate), which "
                "calls the proper API for the task. Current task type: "
                f"{self._config.task_type!r}."
            )
        hooks = _checked(hooks, hooks_lib.is_session_run_hook, _HOOKS)
        listeners = _checked(saving_listeners, hooks_lib.is_saving_listener, _LISTENERS)
        if steps is not None and max_steps is not None:
            raise ValueError("Can not provide both steps and max_steps.")
        for name, value in (("steps", steps), ("max_steps", max_steps)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
                raise ValueError(f"Must specify {name} > 0, given: {value!r}")
        # With backend="auto" and no checkpoint yet, the input decides the backend (there is
        # nothing to restore before it but a warm start).
        training_input = (
            None if self._decide_backend_without_input() else self._training_input(input_fn)
        )
        self._restore_for_training()
        start = self._global_step()
        if max_steps is not None and start >= max_steps:
            logger.info("Skipping training since max_steps has already saved.")
            return self
        target = start + steps if steps is not None else max_steps
        saver, hooks = self._saver(hooks, listeners, start)
        iterator, infinite = training_input or self._training_input(input_fn)
        backend = self._chosen_backend()
        backend.prepare(ModeKeys.TRAIN, iterator, infinite)
        loop = HookedLoop(
            backend,
            ModeKeys.TRAIN,
            leading=[saver, *self._step_counter()],
            hooks=hooks + self._builtin_training_hooks(),
            chief=self._config.is_chief,
        )
        loop.begin(start)
        ran_any = False
        while target is None or self._global_step() < target:
            step = self._global_step()
            num_steps = _loop_length(
                self._config.iterations_per_loop, step, [target, loop.next_trigger(step)]
            )
            result, stop = loop.run(
                lambda requests, n=num_steps: backend.train(iterator, n, infinite, requests),
                num_steps,
                self._global_step,
            )
            if stop == "input":
                self._train_input = None  # the next call calls input_fn again
            if result is None:
                break
            ran_any = True
            if stop:
                break
        if not ran_any:
            raise ValueError("input_fn yielded no data: training ran no step")
        loop.end()
        self._train_writer.flush()
        return self

    # -- evaluate ---------------------------------------------------------------------------

    def evaluate(
        self,
        input_fn: Callable[..., tf.data.Dataset],
        steps: int | None = None,
        hooks: Sequence[hooks_lib.SessionRunHook] | None = None,
        checkpoint_path: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Evaluate the model on ``input_fn``'s data; returns the metrics.

        Evaluates ``checkpoint_path`` (a checkpoint prefix or a directory), by default the latest
        checkpoint in model_dir; nothing is reloaded when the weights in memory already equal
        it. Runs ``steps`` batches, or until the input ends when ``steps`` is None. Returns
        each ``eval_metric_ops`` value over all batches, ``loss`` (the mean of the batch losses)
        and ``global_step``, and writes them as summaries to :meth:`eval_dir` of ``name``.

        ``input_fn`` is called once per input_fn object: a later evaluate() with the same object
        iterates the same Dataset again from its beginning (pass a new callable to rebuild it).
        """
        hooks = _checked(hooks, hooks_lib.is_session_run_hook, _HOOKS)
        if steps is not None and steps <= 0:
            raise ValueError(f"Must specify steps > 0, given: {steps}")
        self._decide_backend_without_input(checkpoint_path)
        self._restore_for_inference(checkpoint_path, required=False)
        return self.evaluate_in_memory(input_fn, steps, hooks, name)

    def evaluate_in_memory(
        self,
        input_fn: Callable[..., tf.data.Dataset],
        steps: int | None = None,
        hooks: Sequence[hooks_lib.SessionRunHook] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`evaluate` on the weights in memory, as they are now: no checkpoint is read.

        Results and summaries as evaluate()'s (``global_step`` is the global step in memory).
        Safe between two compiled loops of train() (a hook or a saving listener may call it):
        it reads the variables without changing them, iterates its own Dataset (cached per
        input_fn object, apart from the training iterator) and resets only the evaluation
        metrics. :class:`~estimator_core.InMemoryEvaluatorHook` uses it.
        """
        hooks = _checked(hooks, hooks_lib.is_session_run_hook, _HOOKS)
        evaluation_input = self._evaluation_input(input_fn)
        backend = self._chosen_backend()
        infinite = backend.is_infinite(evaluation_input)
        if infinite and steps is None:
            raise ValueError(
                "evaluate: input_fn's dataset repeats forever, so the evaluation would never "
                "end; give steps, or do not repeat() the evaluation data"
            )
        iterator = backend.make_iterator(evaluation_input, ModeKeys.EVAL)
        backend.prepare(ModeKeys.EVAL, iterator, infinite)
        loop = HookedLoop(backend, ModeKeys.EVAL, hooks=hooks)
        step = self._global_step()
        loop.begin(step)
        backend.reset_metrics()
        done = 0
        while steps is None or done < steps:
            per_step = loop.next_trigger(step) is not None
            num_steps = 1 if per_step else self._config.iterations_per_loop
            if steps is not None:
                num_steps = min(num_steps, steps - done)
            result, stop = loop.run(
                lambda requests, n=num_steps: backend.evaluate(iterator, n, infinite, requests),
                num_steps,
                self._global_step,
            )
            if result is None:
                break
            done += result.steps
            if stop:
                break
        if done == 0:
            raise ValueError("input_fn yielded no data: evaluation ran no step")
        loop.end()
        results: dict[str, Any] = dict(backend.metric_results())
        results["global_step"] = step
        self._eval_recorder.record(self.eval_dir(name), results)
        logger.info(
            "Saving dict for global step %d: %s",
            results["global_step"],
            ", ".join(f"{k} = {_scalar_text(v)}" for k, v in sorted(results.items())),
        )
        return results

    # -- predict ----------------------------------------------------------------------------

    def predict(
        self,
        input_fn: Callable[..., tf.data.Dataset],
        predict_keys: str | Sequence[str] | None = None,
        hooks: Sequence[hooks_lib.SessionRunHook] | None = None,
        checkpoint_path: str | None = None,
        yield_single_examples: bool = True,
    ) -> Iterator[Any]:
        """Yield predictions for every element of ``input_fn``'s dataset.

        With ``yield_single_examples`` one dict (or value) per example: every output must have
        the batch as its first dimension (``ValueError`` "Batch length of predictions should
        be same" otherwise, as tf.estimator). Without it, one per batch, each output whole
        (whatever its first dimension). ``predict_keys`` limits the dict to those keys. Uses
        ``checkpoint_path`` or the latest checkpoint (a fresh initialisation, with a log line,
        when there is none).
        """
        hooks = _checked(hooks, hooks_lib.is_session_run_hook, _HOOKS)
        keys = [predict_keys] if isinstance(predict_keys, str) else predict_keys
        self._decide_backend_without_input(checkpoint_path)
        self._restore_for_inference(checkpoint_path, required=False)
        predict_input = self._input(input_fn, ModeKeys.PREDICT)
        backend = self._chosen_backend()
        iterator = backend.make_iterator(predict_input, ModeKeys.PREDICT)
        backend.prepare(ModeKeys.PREDICT, iterator)
        loop = HookedLoop(backend, ModeKeys.PREDICT, hooks=hooks)
        loop.begin(self._global_step())
        batches_per_call = 1 if loop.hooks else self._config.iterations_per_loop
        batches: list[Any] = []

        def run(requests: list[Any]) -> LoopResult:
            batches[:], hook_values = backend.predict(iterator, batches_per_call, requests)
            return LoopResult(len(batches), {}, hook_values)

        while True:
            result, stop = loop.run(run, batches_per_call, self._global_step)
            if result is None:
                break
            for batch in batches:
                predictions = select_keys(batch, keys)
                if yield_single_examples:
                    yield from single_examples(predictions)
                else:
                    yield predictions
            if stop:
                break
        loop.end()

    # -- export -----------------------------------------------------------------------------

    def export_saved_model(
        self,
        export_dir_base: str | bytes | os.PathLike,
        serving_input_receiver_fn: Callable[[], ServingInputReceiver],
        assets_extra: Mapping[str, str] | None = None,
        as_text: bool = False,
        checkpoint_path: str | None = None,
    ) -> str:
        """Export the model as a SavedModel in a new ``export_dir_base/<timestamp>`` directory.

        ``serving_input_receiver_fn`` is called inside a graph, so it may build
        ``tf.compat.v1.placeholder``s (see :mod:`estimator_core.export.serving`); model_fn is
        called in PREDICT mode on its features. One signature per ``export_outputs`` entry of
        the spec (``serving_default`` among them) and receiver (``<alternative>:<entry>`` for
        each of ``receiver_tensors_alternatives``), taking the receiver tensors under their
        keys. A ``ClassificationOutput`` or ``RegressionOutput`` over a receiver of one string
        tensor (serialized tf.Examples) becomes a TF Serving Classify or Regress signature
        taking it as ``inputs``, as tf.estimator wrote them; every other signature is a
        predict signature. ``assets_extra`` maps destination paths under ``assets.extra/`` to source
        files. ``as_text`` also writes ``saved_model.pbtxt``. The directory is written under
        a temporary name and renamed when complete. Returns its path (a ``str``;
        ``export_dir_base`` may be ``str``, ``bytes`` or a path object).
        """
        export_dir_base = os.fsdecode(export_dir_base)
        self._decide_backend_without_input(checkpoint_path)
        self._restore_for_inference(checkpoint_path, required=True)
        backend = self._chosen_backend()
        tf.io.gfile.makedirs(export_dir_base)
        final_dir = _fresh_timestamp_dir(export_dir_base)
        temp_dir = os.path.join(
            export_dir_base, f".temp-{os.path.basename(final_dir)}-{os.getpid()}"
        )
        try:
            backend.write_saved_model(
                temp_dir, serving_input_receiver_fn, self._checkpointer.loaded_path
            )
            if as_text:
                _write_pbtxt(temp_dir)
            for dest, source in (assets_extra or {}).items():
                target = os.path.join(temp_dir, "assets.extra", dest)
                tf.io.gfile.makedirs(os.path.dirname(target))
                tf.io.gfile.copy(source, target, overwrite=True)
            tf.io.gfile.rename(temp_dir, final_dir)
        except BaseException:
            if tf.io.gfile.exists(temp_dir):
                tf.io.gfile.rmtree(temp_dir)
            raise
        logger.info("SavedModel written to: %s", final_dir)
        return final_dir

    # -- inspection -------------------------------------------------------------------------

    def latest_checkpoint(self) -> str | None:
        """Path prefix of the latest checkpoint in model_dir, or None."""
        return self._checkpointer.latest()

    def get_variable_names(self) -> list[str]:
        """Names of the variables in the latest checkpoint (``global_step`` among them)."""
        self._decide_backend_without_input()
        return self._checkpointer.variable_names()

    def get_variable_value(self, name: str) -> np.ndarray:
        """Value of variable ``name`` (see :meth:`get_variable_names`) in the latest checkpoint."""
        self._decide_backend_without_input()
        return self._checkpointer.variable_value(name)

    def eval_dir(self, name: str | None = None) -> str:
        """Directory of evaluation summaries: ``model_dir/eval`` or ``model_dir/eval_<name>``."""
        return eval_dir(self.model_dir, name)

    def get_global_step_value(self) -> int:
        """The global step of the weights in memory."""
        return self._global_step()

    # -- internals --------------------------------------------------------------------------

    def _global_step(self) -> int:
        return self._backend.global_step_value() if self._backend is not None else 0

    def _chosen_backend(self) -> ModelFnBackend:
        assert self._backend is not None, "the backend is chosen by the call's input"
        return self._backend

    def _decide_backend_without_input(self, checkpoint_path: str | None = None) -> bool:
        """Choose the backend where no input is needed: when RunConfig forces one, or by the
        format of a checkpoint (``checkpoint_path`` or the latest in model_dir). True when the
        backend is chosen (see :mod:`estimator_core.backend_choice`)."""
        checkpoint = checkpoint_path or self._checkpointer.latest()
        return self._backend_choice.without_input(checkpoint) is not None

    def _adopt(self, backend: ModelFnBackend) -> None:
        self._backend = backend
        self._checkpointer.format = backend.checkpoint_format(
            self._config, self._checkpointer.directory
        )

    def _input(self, input_fn: Callable[..., Any], mode: str) -> Any:
        """``input_fn``'s input in the backend's form (a Dataset for the function backend);
        with backend="auto" the first one decides the backend."""
        context = self._input_context if mode != ModeKeys.PREDICT else None
        call = input_fn_call(input_fn, mode, self._params, self._config, context)
        if not self._decide_backend_without_input():
            return self._backend_choice.with_input(mode, call)
        return self._chosen_backend().make_input(call, mode)

    def _evaluation_input(self, input_fn: Callable[..., Any]) -> Any:
        """The input to evaluate on, built once per ``input_fn`` object (each evaluation
        iterates it from its beginning)."""
        for cached_fn, dataset in self._eval_inputs:
            if cached_fn is input_fn:
                return dataset
        dataset = self._input(input_fn, ModeKeys.EVAL)
        self._eval_inputs = [(input_fn, dataset), *self._eval_inputs[: _EVAL_INPUTS_KEPT - 1]]
        return dataset

    def _training_input(self, input_fn: Callable[..., Any]) -> tuple[Any, bool]:
        """The iterator to train on: the previous train() call's when ``input_fn`` is the same
        object and its input has not ended, else a new one from ``input_fn()``."""
        if self._train_input is None or self._train_input[0] is not input_fn:
            training_input = self._input(input_fn, ModeKeys.TRAIN)
            backend = self._chosen_backend()
            iterator = backend.make_iterator(training_input, ModeKeys.TRAIN)
            self._train_input = (input_fn, iterator, backend.is_infinite(training_input))
        return self._train_input[1], self._train_input[2]

    def _restore_for_training(self) -> None:
        restored = self._checkpointer.restore_latest()
        if (
            restored is None
            and self._warm_start_from is not None
            and self._checkpointer.loaded_path is None
        ):
            self._checkpointer.warm_start(self._warm_start_from)

    def _restore_for_inference(self, checkpoint_path: str | None, required: bool) -> None:
        path = checkpoint_path or self._checkpointer.restore_latest()
        if path is None:
            if required:
                raise ValueError(f"Could not find trained model in model_dir: {self.model_dir}.")
            logger.info(
                "Could not find trained model in model_dir: %s, running initialization.",
                self.model_dir,
            )
            return
        if path != self._checkpointer.loaded_path:
            self._checkpointer.restore(path)

    def _saver(
        self, hooks: list[Any], listeners: list[Any], start: int
    ) -> tuple[hooks_lib.CheckpointSaverHook, list[Any]]:
        """The checkpoint saver of a train() call (the caller's CheckpointSaverHook, else one
        for RunConfig's policy) with ``listeners`` added, and the other hooks."""
        given = [h for h in hooks if isinstance(h, hooks_lib.CheckpointSaverHook)]
        if given:
            saver = given[0]
        else:
            saver = hooks_lib.CheckpointSaverHook.for_policy(
                self.model_dir,
                self._config.save_checkpoints_steps,
                self._config.save_checkpoints_secs,
            )
        saver.listeners += [listener for listener in listeners if listener not in saver.listeners]
        if listeners and not saver.saves_periodically(start):
            raise ValueError(
                "There should be a CheckpointSaverHook to use saving_listeners: RunConfig "
                "saves no checkpoints during training (save_checkpoints_steps and "
                "save_checkpoints_secs are None) and no listener asks for a save step."
            )
        saver.bind(self._checkpointer)
        return saver, [h for h in hooks if h is not saver]

    def _step_counter(self) -> list[hooks_lib.SessionRunHook]:
        every = self._config.log_step_count_steps
        if not every:
            return []
        return [hooks_lib.StepCounterHook(every, summary_writer=self._train_writer)]

    def _builtin_training_hooks(self) -> list[hooks_lib.SessionRunHook]:
        """tf.estimator's: after the caller's hooks, so they see a diverging step too."""
        hooks: list[hooks_lib.SessionRunHook] = [hooks_lib.NanTensorHook("loss")]
        every = self._config.log_step_count_steps
        if every:
            hooks.append(
                hooks_lib.LoggingTensorHook(
                    {"loss": "loss", "step": "global_step"}, every_n_iter=every
                )
            )
        return hooks


def _with(config: RunConfig, **values: Any) -> RunConfig:
    """``config`` with ``values`` where they differ (the same object when none does)."""
    changed = {k: v for k, v in values.items() if getattr(config, k) is not v}
    if "model_dir" in changed and _norm(changed["model_dir"]) == _norm(config.model_dir or ""):
        del changed["model_dir"]
    return config.replace(**changed) if changed else config


def _checked(values: Sequence[Any] | None, valid: Callable[[Any], bool], what: str) -> list[Any]:
    """``values`` as a list, each ``valid``; else ``TypeError``: ``what``, given: the value."""
    values = list(values or ())
    for value in values:
        if not valid(value):
            raise TypeError(f"{what}, given: {value!r}")
    return values


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path)) if "://" not in path else path.rstrip("/")


def _loop_length(iterations_per_loop: int, step: int, bounds: list[int | None]) -> int:
    """Steps to run from ``step``: at most ``iterations_per_loop``, ending at the nearest bound."""
    num_steps = iterations_per_loop
    for bound in bounds:
        if bound is not None and bound > step:
            num_steps = min(num_steps, bound - step)
    return num_steps


def _fresh_timestamp_dir(base: str) -> str:
    stamp = int(time.time())
    while tf.io.gfile.exists(os.path.join(base, str(stamp))):
        stamp += 1
    return os.path.join(base, str(stamp))


def _write_pbtxt(directory: str) -> None:
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(directory, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    with tf.io.gfile.GFile(os.path.join(directory, "saved_model.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(proto))


def _scalar_text(value: Any) -> str:
    return f"{float(value):.6g}" if np.ndim(value) == 0 else str(np.shape(value))


__all__ = ["Estimator"]
