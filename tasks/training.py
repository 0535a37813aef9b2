"""Training tasks: ``train_round`` and ``evaluate``, on an Estimator kept warm in the process.

Tasks take and return paths and small values (frozen dataclasses). Behind them, one Estimator
per model (model_dir, model_fn, params, run config) stays alive in the worker process, with its
traced loops, its weights in memory and its training input iterator, so round N+1 neither
rebuilds nor reloads anything (tf.estimator's old cost per round). A task in a fresh process,
or one retried after a failure, builds it again from the latest checkpoint: the checkpoint is
the source of truth.

TensorBoard: besides what the Estimator writes to model_dir (``loss``, model_fn's summaries,
the model graph, ``eval_<name>/``), the live Estimator's session writes the run's parameters as
an HParams summary and ``global_step/sec``, counted by one ``StepCounterHook`` whose rates
also go to MLflow (``training/steps_per_sec``), so both show the same numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import estimator_core as est
from estimator_core.canned.premade import premade_estimator
from estimator_core.checkpoints import checkpoint_step, latest_checkpoint_step
from estimator_core.data import corrupt_shard_error, make_input_fn
from estimator_core.early_stopping import NoImprovement
from estimator_core.schedule import EvalSchedule
from tasks.params import EarlyStopping, EvalSet, PremadeSettings, TrainingParams, load_model_fn


@dataclasses.dataclass(frozen=True)
class StepLog:
    """Training at ``step``: the minibatch loss, and global steps per second since the last
    log (None at a round's first log when the step counter had nothing to measure from)."""

    step: int
    loss: float
    steps_per_sec: float | None


@dataclasses.dataclass(frozen=True)
class TrainedRound:
    """What a ``train-round`` did: from ``start_step`` to ``global_step`` in ``seconds``;
    ``stopped_early``: the input ended or a hook stopped training before the target."""

    start_step: int
    global_step: int
    stopped_early: bool
    seconds: float
    logs: tuple[StepLog, ...]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One evaluation of eval set ``name`` at ``global_step``: its metrics as plain floats."""

    name: str
    global_step: int
    metrics: dict[str, float]


@dataclasses.dataclass
class LiveModel:
    """The warm Estimator of one model in this process, its step counter and its input_fns."""

    estimator: est.Estimator
    input_fns: dict[tuple, Callable[[], tf.data.Dataset]] = dataclasses.field(default_factory=dict)
    _step_counter: est.StepCounterHook | None = None

    def step_counter(self, params: TrainingParams) -> est.StepCounterHook:
        """The hook that counts ``global_step/sec`` into TensorBoard (model_dir) for every
        round; made, with the HParams summary beside it, when this process first trains."""
        if self._step_counter is None:
            writer = tf.summary.create_file_writer(params.model_dir)
            write_hparams(writer, params)
            self._step_counter = est.StepCounterHook(
                params.run_config.log_step_count_steps, summary_writer=writer
            )
        return self._step_counter

    def input_fn(self, params: TrainingParams, split: str, batch: int, mode: str):
        """The input_fn of ``split``: the same object every round, so the Estimator continues
        its iterator (TRAIN) and builds the Dataset once (EVAL)."""
        key = (params.data_dir, split, batch, mode, params.shuffle_buffer)
        if key not in self.input_fns:
            self.input_fns[key] = make_input_fn(
                params.data_dir,
                split,
                batch,
                mode,
                shuffle_buffer=params.shuffle_buffer,
                seed=params.run_config.tf_random_seed if mode == est.ModeKeys.TRAIN else None,
            )
        return self.input_fns[key]

    def eval_input_fn(self, params: TrainingParams, eval_set: EvalSet):
        return self.input_fn(params, eval_set.split, eval_set.batch_size, est.ModeKeys.EVAL)


_SESSIONS: dict[str, LiveModel] = {}
_SESSIONS_LOCK = threading.Lock()


class QuietRoundCompletions(logging.Filter):
    """Drops the "Finished in state Completed()" line Prefect logs for every ``train-round``
    and ``evaluate`` task run: several a second with short rounds, each ~0.5 ms of console
    rendering and an API log record, while the task run's state already says it (and the
    flow logs one line per round). Failures, retries and other tasks log as before."""

    TASK_NAMES = frozenset({"train-round", "evaluate"})

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and getattr(record, "task_name", None) in self.TASK_NAMES
            and str(record.msg).startswith("Finished in state Completed")
        )


logging.getLogger("prefect.task_runs").addFilter(QuietRoundCompletions())


def configure_devices() -> None:
    """Let TensorFlow grow GPU memory as needed, so several workers can share a GPU host."""
    for gpu in tf.config.list_physical_devices("GPU"):
        # RuntimeError: already initialised by an earlier task in this process.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def local_strategy() -> tf.distribute.Strategy | None:
    """All local GPUs through MirroredStrategy when there are several; else None (one device).

    input_fn's batch is per replica (tf.estimator's rule), so N GPUs train on N x batch_size."""
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def latest_step(model_dir: str) -> int:
    """The global step of the latest checkpoint in ``model_dir`` (0 when there is none)."""
    return latest_checkpoint_step(model_dir) or 0


def round_schedule(params: TrainingParams) -> EvalSchedule:
    """The rounds of ``params``: each trains to the next multiple of ``round_steps`` (at most
    ``max_steps``) and is followed by every evaluation; finished at ``max_steps``."""
    return EvalSchedule(every_n_steps=params.round_steps, max_steps=params.max_steps)


def stopping_rule(early_stopping: EarlyStopping) -> NoImprovement:
    """The stopping rule of ``early_stopping`` over its eval set's recorded history."""
    return NoImprovement(
        early_stopping.metric,
        higher_is_better=early_stopping.mode == "max",
        patience_evals=early_stopping.patience,
        min_delta=early_stopping.min_delta,
    )


def run_config(params: TrainingParams) -> est.RunConfig:
    """The RunConfig of ``params``: a checkpoint at the end of every round, not in between,
    and every local GPU in use (:func:`local_strategy`). ``log_step_count_steps`` is left to
    the session's own step counter (see the module doc), so the rate is computed once."""
    settings = params.run_config
    return est.RunConfig(
        train_distribute=local_strategy(),
        model_dir=params.model_dir,
        tf_random_seed=settings.tf_random_seed,
        save_summary_steps=settings.save_summary_steps,
        save_checkpoints_steps=None,
        save_checkpoints_secs=None,
        keep_checkpoint_max=settings.keep_checkpoint_max,
        log_step_count_steps=None,
        iterations_per_loop=settings.iterations_per_loop,
        jit_compile=settings.jit_compile,
        mixed_precision=settings.mixed_precision,
    )


def build_estimator(params: TrainingParams) -> est.Estimator:
    """The Estimator of ``params``: its ``model_fn`` with ``params``, or the premade estimator
    it names for the data set in ``data_dir`` (``premade_estimator``: feature columns from the
    data set's schema and statistics), with :func:`run_config`."""
    model = params.model
    if isinstance(model, PremadeSettings):
        return premade_estimator(
            model.premade, params.data_dir, model.arguments, config=run_config(params)
        )
    return est.Estimator(
        load_model_fn(model.model_fn), config=run_config(params), params=dict(model.params)
    )


def session(params: TrainingParams) -> LiveModel:
    """The live Estimator of ``params`` in this process (built on first use)."""
    key = json.dumps(
        [
            params.model_dir,
            params.data_dir,  # a premade estimator's columns come from the data set
            params.model.model_dump(),
            params.run_config.model_dump(),
        ],
        sort_keys=True,
        default=str,
    )
    with _SESSIONS_LOCK:
        live = _SESSIONS.get(key)
        if live is None:
            configure_devices()  # before run_config(): GPUs must not be initialised yet
            live = _SESSIONS[key] = LiveModel(build_estimator(params))
        return live


def hparams(params: TrainingParams) -> dict[str, bool | int | float | str]:
    """The run's parameters as TensorBoard HParams (``model.model_fn`` and ``model.<param>``,
    or ``model.premade`` and ``model.<argument>``; ``run_config.<field>``, batch size, shuffle
    buffer, round and max steps); unset values left out."""
    model = params.model
    if isinstance(model, PremadeSettings):
        values: dict[str, Any] = {f"model.{k}": v for k, v in model.arguments.items()}
        values["model.premade"] = model.premade
    else:
        values = {f"model.{k}": v for k, v in model.params.items()}
        values["model.model_fn"] = model.model_fn
    values |= {f"run_config.{k}": v for k, v in params.run_config.model_dump().items()}
    values |= params.model_dump(
        include={"batch_size", "shuffle_buffer", "round_steps", "max_steps"}
    )
    return {
        k: v if isinstance(v, bool | int | float | str) else str(v)
        for k, v in values.items()
        if v is not None
    }


def write_hparams(writer: tf.summary.SummaryWriter, params: TrainingParams) -> None:
    """An HParams summary of ``params`` in ``writer``'s log dir (TensorBoard's HParams tab)."""
    from tensorboard.plugins.hparams import api as hp

    with writer.as_default():
        hp.hparams(hparams(params), trial_id=os.path.basename(params.model_dir.rstrip("/")))
    writer.flush()


def forget_sessions(model_dir: str | None = None) -> None:
    """Drop the live Estimators (of ``model_dir`` only, when given): the next task rebuilds from
    the latest checkpoint. Called after a failure, whose in-memory state is not trusted."""
    with _SESSIONS_LOCK:
        for key, live in list(_SESSIONS.items()):
            if model_dir is None or live.estimator.model_dir == model_dir:
                del _SESSIONS[key]


@contextlib.contextmanager
def dropped_on_failure(params: TrainingParams) -> Iterator[None]:
    """Drop the live Estimator of ``params`` when the body fails (its state in memory is not
    trusted: the next task rebuilds it from the latest checkpoint); a corrupted record becomes
    a DataError naming its shard."""
    try:
        yield
    except tf.errors.DataLossError as err:
        forget_sessions(params.model_dir)
        raise corrupt_shard_error(params.data_dir, err) from err
    except BaseException:
        forget_sessions(params.model_dir)
        raise


class LossRecorderHook(est.SessionRunHook):
    """Records ``(global_step, loss)`` every ``every_n_steps`` steps."""

    def __init__(self, every_n_steps: int) -> None:
        self._every = every_n_steps
        self.records: list[tuple[int, float]] = []

    def before_run(self, run_context: est.SessionRunContext) -> est.SessionRunArgs:
        return est.SessionRunArgs({"loss": "loss", "step": "global_step"})

    def after_run(self, run_context: est.SessionRunContext, run_values: est.SessionRunValues):
        step = int(run_values.results["step"])
        if step % self._every == 0:
            self.records.append((step, float(run_values.results["loss"])))

    def next_trigger_step(self, global_step: int) -> int:
        return (global_step // self._every + 1) * self._every


def train_to(params: TrainingParams, target_step: int) -> TrainedRound:
    """Train the model of ``params`` until global step ``min(target_step, max_steps)``. On
    failure the live Estimator is dropped, so a retry continues from the latest checkpoint."""
    target = min(target_step, params.max_steps)
    live = session(params)
    estimator = live.estimator
    start = latest_step(params.model_dir)  # train() resumes from there
    recorder = LossRecorderHook(params.run_config.log_step_count_steps)
    counter = live.step_counter(params)
    counted = len(counter.rates)
    began = time.perf_counter()
    with dropped_on_failure(params):
        estimator.train(
            live.input_fn(params, params.train_split, params.batch_size, est.ModeKeys.TRAIN),
            hooks=[recorder, counter],
            max_steps=target,
        )
    step = estimator.get_global_step_value()
    rates = dict(counter.rates[counted:])
    return TrainedRound(
        start_step=start,
        global_step=step,
        stopped_early=step < target,
        seconds=time.perf_counter() - began,
        logs=tuple(StepLog(s, loss, rates.get(s)) for s, loss in recorder.records),
    )


def evaluate_set(params: TrainingParams, eval_set: EvalSet) -> Evaluation:
    """Evaluate the latest weights on ``eval_set``."""
    live = session(params)
    with dropped_on_failure(params):
        results = live.estimator.evaluate(
            live.eval_input_fn(params, eval_set),
            steps=eval_set.steps,
            name=eval_set.name,
        )
    metrics = {key: float(np.asarray(value)) for key, value in results.items()}
    return Evaluation(eval_set.name, int(metrics.pop("global_step")), metrics)


def _train_round_name(parameters: dict[str, Any]) -> str:
    params = parameters["params"]
    target = min(parameters["target_step"], params.max_steps)
    return f"train[{latest_step(params.model_dir)}→{target}]"


def _evaluate_name(parameters: dict[str, Any]) -> str:
    return f"evaluate[{parameters['eval_set'].name}@{latest_step(parameters['params'].model_dir)}]"


@task(
    name="train-round",
    task_run_name=_train_round_name,
    retries=2,
    retry_delay_seconds=1,
    cache_policy=NO_CACHE,
)
def train_round(params: TrainingParams, target_step: int) -> TrainedRound:
    """Train until ``target_step`` (never past ``params.max_steps``) from the latest checkpoint.

    Idempotent: a retry, or a second run with the same target, trains only the missing steps.
    Its task runs are named ``train[<from>→<to>]``.
    """
    result = train_to(params, target_step)
    get_run_logger().debug(  # the flow logs the round
        "trained steps %d → %d in %.1f s%s",
        result.start_step,
        result.global_step,
        result.seconds,
        " (stopped early)" if result.stopped_early else "",
    )
    return result


@task(
    name="evaluate",
    task_run_name=_evaluate_name,
    retries=1,
    retry_delay_seconds=1,
    cache_policy=NO_CACHE,
)
def evaluate(params: TrainingParams, eval_set: EvalSet) -> Evaluation:
    """Evaluate the latest checkpoint's weights on one named eval set; its task runs are named
    ``evaluate[<eval name>@<step>]``."""
    return evaluate_set(params, eval_set)  # the flow logs each round's evaluations together


def checkpoint_files(model_dir: str, step: int) -> list[str]:
    """The files of checkpoint ``model.ckpt-<step>`` and the ``checkpoint`` state file (which
    names the checkpoints kept at this moment), so that a copy of them restores."""
    prefix = f"model.ckpt-{step}."
    names = sorted(n for n in tf.io.gfile.listdir(model_dir) if n.startswith(prefix))
    return [os.path.join(model_dir, name) for name in [*names, "checkpoint"]]


def kept_checkpoint_steps(model_dir: str) -> list[int]:
    """The global steps of the checkpoints the state file keeps, oldest first."""
    state = tf.train.get_checkpoint_state(model_dir)
    return sorted(checkpoint_step(p) for p in state.all_model_checkpoint_paths) if state else []
