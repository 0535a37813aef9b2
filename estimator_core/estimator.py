"""The Estimator: train, evaluate, predict and export a model described by a model_fn."""

from __future__ import annotations

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
from estimator_core.distribute import input_context, training_strategy
from estimator_core.eval_history import record_eval_result
from estimator_core.export.serving import ServingInputReceiver
from estimator_core.mode_keys import ModeKeys
from estimator_core.model_fn import ModelFn, input_fn_call
from estimator_core.run_config import RunConfig, apply_session_config
from estimator_core.spec import EstimatorSpec

logger = logging.getLogger("estimator_core")

_EVAL_INPUTS_KEPT = 8


class Estimator:
    """Trains, evaluates, predicts with and exports the model a ``model_fn`` describes.

    ``model_fn(features, labels, mode, params, config)`` (declaring any subset that includes
    ``features``) builds the model and returns an :class:`EstimatorSpec` for ``mode``. It may
    build Keras layers, optimizers and metrics on every call: they share one set of variables
    across calls and modes (see :mod:`estimator_core.variables`).

    The outer loop of :meth:`train`, in pseudo-code::

        restore the latest checkpoint in model_dir unless the weights in memory already equal it
        iterator = iter(input_fn())
        while global_step < target and no hook asked to stop:
            n = steps until the next checkpoint, hook trigger, target or iterations_per_loop
            hooks.before_run(); backend.train(iterator, n); hooks.after_run()
            save a checkpoint when RunConfig says so
        save a checkpoint

    Args:
      model_fn: the model function.
      model_dir: where checkpoints and summaries go; must agree with ``config.model_dir`` when
        both are set; a new temporary directory when neither is.
      config: a :class:`RunConfig`.
      params: dict passed to model_fn (and to input_fns that declare ``params``).
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
            raise TypeError(
                f"config must be an estimator_core.RunConfig, got {type(config).__name__}"
            )
        model_dir = os.fspath(model_dir) if model_dir is not None else None
        if model_dir and config.model_dir and _norm(model_dir) != _norm(config.model_dir):
            raise ValueError(
                f"model_dir {model_dir!r} and RunConfig.model_dir {config.model_dir!r} differ; "
                "set one of them or make them equal"
            )
        model_dir = model_dir or config.model_dir
        if not model_dir:
            model_dir = tempfile.mkdtemp(prefix="estimator_core-")
            logger.warning("Using temporary folder as model directory: %s", model_dir)
        tf.io.gfile.makedirs(model_dir)
        apply_session_config(config.session_config)
        # Before any other TensorFlow op: MultiWorkerMirroredStrategy configures collectives.
        strategy = training_strategy(config.train_distribute, config.cluster)
        self._config = config.replace(model_dir=model_dir, train_distribute=strategy)
        self._input_context = input_context(strategy, config.cluster)
        self._params = dict(params or {})
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
        self._model_fn = model_fn
        # Only the chief writes checkpoints and summaries to model_dir; the other tasks write
        # theirs to a directory deleted with the Estimator (what TensorFlow's guides do).
        self._scratch = (
            None
            if config.is_chief
            else tempfile.TemporaryDirectory(prefix=f"estimator_core-{config.task_type}-")
        )
        private_dir = self._scratch.name if self._scratch is not None else None
        self._train_writer = tf.summary.create_file_writer(private_dir or model_dir)
        self._eval_writers: dict[str, tf.summary.SummaryWriter] = {}
        self._train_input: tuple[Callable[..., Any], Any, bool] | None = None
        self._eval_inputs: list[tuple[Callable[..., Any], tf.data.Dataset]] = []
        # Why the last train() call ended early: "hook", "input" or None (read by
        # train_and_evaluate).
        self._last_train_stop: str | None = None
        self._checkpoint_dir = private_dir or model_dir
        self._checkpointer = Checkpointer(
            model_dir, None, self._global_step, self._config, save_dir=private_dir
        )
        # Decided here when forced; with backend="auto" on the first call (backend_choice).
        self._backend: ModelFnBackend | None = None
        self._backend_choice = BackendChoice(
            ModelFn(model_fn, self._params, self._config),  # checks model_fn's arguments now
            self._config,
            self._train_writer,
            self._adopt,
        )
        self._decide_backend_without_input()

    # -- properties -------------------------------------------------------------------------

    @property
    def model_dir(self) -> str:
        return self._config.model_dir  # type: ignore[return-value]

    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    @property
    def model_fn(self) -> Callable[..., EstimatorSpec]:
        return self._model_fn

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
        already equal it), saves checkpoints as ``RunConfig`` says, and one at the end.
        """
        if steps is not None and max_steps is not None:
            raise ValueError("Can not provide both steps and max_steps.")
        for name, value in (("steps", steps), ("max_steps", max_steps)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
                raise ValueError(f"Must specify {name} > 0, given: {value!r}")
        # With backend="auto" and no checkpoint yet, the input decides the backend (nothing to
        # restore before it but a warm start).
        training_input = (
            None if self._decide_backend_without_input() else self._training_input(input_fn)
        )
        self._restore_for_training()
        start = self._global_step()
        if max_steps is not None and start >= max_steps:
            logger.info("Skipping training since max_steps has already saved.")
            self._last_train_stop = None
            return self
        target = start + steps if steps is not None else max_steps
        iterator, infinite = training_input or self._training_input(input_fn)
        backend = self._chosen_backend()
        backend.prepare(ModeKeys.TRAIN, iterator, infinite)
        listeners = list(saving_listeners or ())
        hooks_set = _Hooks(
            backend, ModeKeys.TRAIN, self._builtin_training_hooks() + list(hooks or ())
        )
        hooks_set.start(start)
        for listener in listeners:
            listener.begin()
        ran_any, finite, stop = False, True, None
        while target is None or self._global_step() < target:
            step = self._global_step()
            bounds = [target, self._checkpointer.next_save_step(step)]
            bounds += [_next_trigger_step(hook, step) for hook in hooks_set.hooks]
            num_steps = _loop_length(self._config.iterations_per_loop, step, bounds)
            result, stop = self._run_hooked(
                lambda it, n, requests: backend.train(it, n, infinite, requests),
                iterator,
                ModeKeys.TRAIN,
                hooks_set,
                num_steps,
            )
            if stop == "input":
                self._train_input = None  # the next call calls input_fn again
            if result is None:
                break
            ran_any = True
            finite = bool(np.all(np.isfinite(result.values["loss"])))
            if not finite:
                break
            if self._checkpointer.save_due(self._global_step()) and self._save(listeners):
                stop = stop or "hook"
            if stop:
                break
        if not ran_any:
            raise ValueError("input_fn yielded no data: training ran no step")
        self._last_train_stop = stop
        step = self._global_step()
        if finite and not self._checkpointer.holds_step(step):
            self._save(listeners)
        for listener in listeners:
            listener.end(backend.session(ModeKeys.TRAIN), step)
        hooks_set.end()
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
        if steps is not None and steps <= 0:
            raise ValueError(f"Must specify steps > 0, given: {steps}")
        self._decide_backend_without_input(checkpoint_path)
        self._restore_for_inference(checkpoint_path, required=False)
        return self._evaluate_weights_in_memory(input_fn, steps, hooks, name)

    def _evaluate_weights_in_memory(
        self,
        input_fn: Callable[..., tf.data.Dataset],
        steps: int | None,
        hooks: Sequence[hooks_lib.SessionRunHook] | None,
        name: str | None,
    ) -> dict[str, Any]:
        """The body of :meth:`evaluate`, on the weights in memory (nothing is restored).

        Safe between two compiled loops of train() (``InMemoryEvaluatorHook``): it reads the
        variables without changing them, iterates its own Dataset (cached per input_fn object,
        apart from the training iterator) and resets only the evaluation metrics.
        """
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
        hooks_set = _Hooks(backend, ModeKeys.EVAL, list(hooks or ()))
        hooks_set.start(self._global_step())
        backend.reset_metrics()
        done = 0
        while steps is None or done < steps:
            step = self._global_step()
            per_step = any(_next_trigger_step(h, step) for h in hooks_set.hooks)
            num_steps = 1 if per_step else self._config.iterations_per_loop
            if steps is not None:
                num_steps = min(num_steps, steps - done)
            result, stop = self._run_hooked(
                lambda it, n, requests: backend.evaluate(it, n, infinite, requests),
                iterator,
                ModeKeys.EVAL,
                hooks_set,
                num_steps,
            )
            if result is None:
                break
            done += result.steps
            if stop:
                break
        if done == 0:
            raise ValueError("input_fn yielded no data: evaluation ran no step")
        hooks_set.end()
        results: dict[str, Any] = dict(backend.metric_results())
        results["global_step"] = self._global_step()
        self._write_eval_summaries(name, results)
        record_eval_result(self.eval_dir(name), results)
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

        With ``yield_single_examples`` one dict (or value) per example, else one per batch.
        ``predict_keys`` limits the dict to those keys. Uses ``checkpoint_path`` or the latest
        checkpoint (a fresh initialisation, with a log line, when there is none).
        """
        keys = [predict_keys] if isinstance(predict_keys, str) else predict_keys
        self._decide_backend_without_input(checkpoint_path)
        self._restore_for_inference(checkpoint_path, required=False)
        predict_input = self._input(input_fn, ModeKeys.PREDICT)
        backend = self._chosen_backend()
        iterator = backend.make_iterator(predict_input, ModeKeys.PREDICT)
        backend.prepare(ModeKeys.PREDICT, iterator)
        hooks_set = _Hooks(backend, ModeKeys.PREDICT, list(hooks or ()))
        hooks_set.start(self._global_step())
        batches_per_call = 1 if hooks_set.hooks else self._config.iterations_per_loop
        batches: list[Any] = []

        def run(it: Any, n: int, requests: list[Any]) -> LoopResult:
            batches[:], hook_values = backend.predict(it, n, requests)
            if not batches:
                raise tf.errors.OutOfRangeError(None, None, "end of the input")
            return LoopResult(len(batches), {}, hook_values)

        while True:
            _, stop = self._run_hooked(run, iterator, ModeKeys.PREDICT, hooks_set, batches_per_call)
            for batch in batches:
                predictions = _select_keys(batch, keys)
                if yield_single_examples:
                    yield from _single_examples(predictions)
                else:
                    yield predictions
            if stop or len(batches) < batches_per_call:
                break
        hooks_set.end()

    # -- export -----------------------------------------------------------------------------

    def export_saved_model(
        self,
        export_dir_base: str | os.PathLike,
        serving_input_receiver_fn: Callable[[], ServingInputReceiver],
        assets_extra: Mapping[str, str] | None = None,
        as_text: bool = False,
        checkpoint_path: str | None = None,
    ) -> str:
        """Export the model as a SavedModel in a new ``export_dir_base/<timestamp>`` directory.

        One signature per ``export_outputs`` entry of the PREDICT-mode spec (``serving_default``
        among them), taking the receiver's inputs. ``assets_extra`` maps destination paths under
        ``assets.extra/`` to source files. ``as_text`` also writes ``saved_model.pbtxt``. The
        directory is written under a temporary name and renamed when complete. Returns its path.
        """
        self._decide_backend_without_input(checkpoint_path)
        self._restore_for_inference(checkpoint_path, required=True)
        backend = self._chosen_backend()
        export_dir_base = os.fspath(export_dir_base)
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
        return os.path.join(self.model_dir, "eval" if not name else f"eval_{name}")

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
        self._checkpointer.format = backend.checkpoint_format(self._config, self._checkpoint_dir)

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

    def _training_input(self, input_fn: Callable[..., tf.data.Dataset]) -> tuple[Any, bool]:
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

    def _save(self, listeners: list[hooks_lib.CheckpointSaverListener]) -> bool:
        """Save a checkpoint; True when a listener asked training to stop."""
        step = self._global_step()
        session = self._chosen_backend().session(ModeKeys.TRAIN)
        for listener in listeners:
            listener.before_save(session, step)
        path = self._checkpointer.save()
        logger.info("Saving checkpoints for %d into %s.", step, path)
        stop = False
        for listener in listeners:
            stop = bool(listener.after_save(session, step)) or stop
        return stop

    def _builtin_training_hooks(self) -> list[hooks_lib.SessionRunHook]:
        hooks: list[hooks_lib.SessionRunHook] = [hooks_lib.NanTensorHook("loss")]
        every = self._config.log_step_count_steps
        if every:
            hooks.append(hooks_lib.StepCounterHook(every, summary_writer=self._train_writer))
            hooks.append(
                hooks_lib.LoggingTensorHook(
                    {"loss": "loss", "step": "global_step"}, every_n_iter=every
                )
            )
        return hooks

    def _run_hooked(
        self,
        run: Callable[[Any, int, list[Any]], LoopResult],
        iterator: Any,
        mode: str,
        hooks_set: _Hooks,
        num_steps: int,
    ) -> tuple[LoopResult | None, str | None]:
        """Run one compiled loop of ``num_steps`` between the hooks' before_run and after_run.

        The backend runs the hooks' fetches (``run(iterator, num_steps, requests)``) and
        returns their values; a hook's after_run is not called when no step completed, as
        in TF1. Returns ``(result, stop)``: ``stop`` is ``"hook"`` when a hook requested a
        stop, ``"input"`` when the input ended, else None; ``result`` is None when the input
        ended before the loop's first step.
        """
        backend = self._chosen_backend()
        context = hooks_lib.SessionRunContext(session=backend.session(mode))
        hooks = hooks_set.hooks
        requests = []
        for hook in hooks:
            with backend.hook_scope(mode, hook):
                requests.append(hook.before_run(context))
        try:
            result = run(iterator, num_steps, requests)
        except tf.errors.OutOfRangeError:
            return None, "input"
        if result.hook_values is not None:
            for hook, values in zip(hooks, result.hook_values, strict=True):
                with backend.hook_scope(mode, hook):
                    hook.after_run(context, values or hooks_lib.SessionRunValues(None))
        hooks_set.join_spec_hooks(self._global_step())
        if context.stop_requested:
            return result, "hook"
        return result, "input" if result.steps < num_steps else None

    def _write_eval_summaries(self, name: str | None, results: dict[str, Any]) -> None:
        directory = self.eval_dir(name)
        writer = self._eval_writers.get(directory)
        if writer is None:
            writer = self._eval_writers[directory] = tf.summary.create_file_writer(directory)
        with writer.as_default(step=results["global_step"]):
            for key, value in results.items():
                if key != "global_step" and np.ndim(value) == 0:
                    tf.summary.scalar(key, value)
        writer.flush()


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path)) if "://" not in path else path.rstrip("/")


def _next_trigger_step(hook: Any, global_step: int) -> int | None:
    """The hook's next_trigger_step; every step for a hook without one (TF's own
    ``tf.compat.v1.train.SessionRunHook`` subclasses)."""
    trigger = getattr(hook, "next_trigger_step", None)
    return trigger(global_step) if trigger is not None else global_step + 1


def _loop_length(iterations_per_loop: int, step: int, bounds: list[int | None]) -> int:
    """Steps to run from ``step``: at most ``iterations_per_loop``, ending at the nearest bound."""
    num_steps = iterations_per_loop
    for bound in bounds:
        if bound is not None and bound > step:
            num_steps = min(num_steps, bound - step)
    return num_steps


class _Hooks:
    """The hooks of one train/evaluate/predict call.

    The hooks of ``EstimatorSpec`` (``training_hooks``, ...) exist once model_fn has been traced,
    so on an Estimator's first call in a mode they join after its first compiled loop.
    """

    def __init__(self, backend: ModelFnBackend, mode: str, hooks: list[Any]) -> None:
        self._backend = backend
        self._mode = mode
        self._joined = False
        self.hooks = hooks

    def start(self, global_step: int) -> None:
        self._start(self.hooks, global_step)
        self.join_spec_hooks(global_step)

    def join_spec_hooks(self, global_step: int) -> None:
        if self._joined:
            return
        spec = self._backend.traced_spec(self._mode)
        if spec is None:
            return
        self._joined = True
        if self._mode == ModeKeys.TRAIN:
            added = list(spec.training_chief_hooks) + list(spec.training_hooks)
        elif self._mode == ModeKeys.EVAL:
            added = list(spec.evaluation_hooks)
        else:
            added = list(spec.prediction_hooks)
        self._start(added, global_step)
        self.hooks = self.hooks + added

    def end(self) -> None:
        for hook in self.hooks:
            with self._backend.hook_scope(self._mode, hook):
                hook.end(self._backend.session(self._mode))

    def _start(self, hooks: list[Any], global_step: int) -> None:
        """begin, after_create_session (with the backend's session, and a coordinator when
        there is a session), then start_at; in the backend's hook scope."""
        session = self._backend.session(self._mode)
        coordinator = tf.compat.v1.train.Coordinator() if session is not None else None
        for hook in hooks:
            with self._backend.hook_scope(self._mode, hook):
                hook.begin()
        for hook in hooks:
            with self._backend.hook_scope(self._mode, hook):
                hook.after_create_session(session, coordinator)
                start_at = getattr(hook, "start_at", None)
                if start_at is not None:
                    start_at(global_step)


def _select_keys(predictions: Any, keys: Sequence[str] | None) -> Any:
    if keys is None:
        return predictions
    if not isinstance(predictions, dict):
        raise ValueError("predict_keys given but model_fn's predictions is not a dict")
    missing = [k for k in keys if k not in predictions]
    if missing:
        raise ValueError(f"predict_keys {missing} are not in predictions {sorted(predictions)}")
    return {k: predictions[k] for k in keys}


def _single_examples(predictions: Any) -> Iterator[Any]:
    if not isinstance(predictions, dict):
        yield from predictions
        return
    sizes = {k: v.shape[0] if v.ndim else None for k, v in predictions.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(
            f"yield_single_examples needs every prediction to have the same batch size, got {sizes}"
        )
    for i in range(next(iter(sizes.values()))):
        yield {k: v[i] for k, v in predictions.items()}


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
