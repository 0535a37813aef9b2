"""Training tasks: ``train_round`` and ``evaluate``, on an Estimator kept warm in the process.

Tasks take and return paths and small values. Behind them, one Estimator per model (model_dir,
model_fn, params, run config) stays alive in the worker process, with its traced loops, its
weights in memory and its training input iterator, so round N+1 neither rebuilds nor reloads
anything (tf.estimator's old cost per round). A task in a fresh process, or one retried after a
failure, builds it again from the latest checkpoint: the checkpoint is the source of truth.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

import estimator_core as est
from estimator_core.checkpoints import checkpoint_step
from estimator_core.data import corrupt_shard_error, make_input_fn
from flows.params import EvalSet, TrainingParams, load_model_fn


@dataclasses.dataclass
class _Session:
    estimator: est.Estimator
    input_fns: dict[tuple, Callable[[], tf.data.Dataset]] = dataclasses.field(default_factory=dict)


_SESSIONS: dict[str, _Session] = {}
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
    latest = tf.train.latest_checkpoint(model_dir)
    return checkpoint_step(latest) if latest else 0


def run_config(params: TrainingParams) -> est.RunConfig:
    """The RunConfig of ``params``: a checkpoint at the end of every round, not in between,
    and every local GPU in use (:func:`local_strategy`)."""
    settings = params.run_config
    return est.RunConfig(
        train_distribute=local_strategy(),
        model_dir=params.model_dir,
        tf_random_seed=settings.tf_random_seed,
        save_summary_steps=settings.save_summary_steps,
        save_checkpoints_steps=None,
        save_checkpoints_secs=None,
        keep_checkpoint_max=settings.keep_checkpoint_max,
        log_step_count_steps=settings.log_step_count_steps,
        iterations_per_loop=settings.iterations_per_loop,
        jit_compile=settings.jit_compile,
        mixed_precision=settings.mixed_precision,
    )


def session(params: TrainingParams) -> _Session:
    """The live Estimator of ``params`` in this process (built on first use)."""
    key = json.dumps(
        [params.model_dir, params.model.model_dump(), params.run_config.model_dump()],
        sort_keys=True,
        default=str,
    )
    with _SESSIONS_LOCK:
        live = _SESSIONS.get(key)
        if live is None:
            configure_devices()  # before run_config(): GPUs must not be initialised yet
            estimator = est.Estimator(
                load_model_fn(params.model.model_fn),
                config=run_config(params),
                params=dict(params.model.params),
            )
            live = _SESSIONS[key] = _Session(estimator)
        return live


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


def _input_fn(live: _Session, params: TrainingParams, split: str, batch: int, mode: str):
    # The same input_fn object every round: the Estimator continues its iterator.
    key = (params.data_dir, split, batch, mode, params.shuffle_buffer)
    if key not in live.input_fns:
        live.input_fns[key] = make_input_fn(
            params.data_dir,
            split,
            batch,
            mode,
            shuffle_buffer=params.shuffle_buffer,
            seed=params.run_config.tf_random_seed if mode == est.ModeKeys.TRAIN else None,
        )
    return live.input_fns[key]


class LossRecorderHook(est.SessionRunHook):
    """Records ``(global_step, loss, global_step/sec)`` every ``every_n_steps`` steps."""

    def __init__(self, every_n_steps: int) -> None:
        self._every = every_n_steps
        self.records: list[dict[str, float]] = []
        self._last: tuple[int, float] | None = None

    def start_at(self, global_step: int) -> None:
        self._last = (global_step, time.perf_counter())

    def before_run(self, run_context: est.SessionRunContext) -> est.SessionRunArgs:
        return est.SessionRunArgs({"loss": "loss", "step": "global_step"})

    def after_run(self, run_context: est.SessionRunContext, run_values: est.SessionRunValues):
        step = int(run_values.results["step"])
        assert self._last is not None
        last_step, last_time = self._last
        if step // self._every == last_step // self._every:
            return
        now = time.perf_counter()
        self.records.append(
            {
                "step": step,
                "loss": float(run_values.results["loss"]),
                "global_step/sec": (step - last_step) / max(now - last_time, 1e-9),
            }
        )
        self._last = (step, now)

    def next_trigger_step(self, global_step: int) -> int:
        return (global_step // self._every + 1) * self._every


def train_to(params: TrainingParams, target_step: int) -> dict[str, Any]:
    """Train the model of ``params`` until global step ``min(target_step, max_steps)``.

    Returns ``{"start_step", "global_step", "stopped_early" (the input ended or a hook stopped
    training before the target), "seconds",
    "history": [{"step", "loss", "global_step/sec"}, ...]}``. On failure the live Estimator is
    dropped, so a retry continues from the latest checkpoint.
    """
    target = min(target_step, params.max_steps)
    live = session(params)
    estimator = live.estimator
    start = latest_step(params.model_dir)  # train() resumes from there
    recorder = LossRecorderHook(params.run_config.log_step_count_steps)
    began = time.perf_counter()
    with dropped_on_failure(params):
        estimator.train(
            _input_fn(live, params, params.train_split, params.batch_size, est.ModeKeys.TRAIN),
            hooks=[recorder],
            max_steps=target,
        )
    step = estimator.get_global_step_value()
    return {
        "start_step": start,
        "global_step": step,
        "stopped_early": step < target,
        "seconds": time.perf_counter() - began,
        "history": recorder.records,
    }


def evaluate_set(params: TrainingParams, eval_set: EvalSet) -> dict[str, float]:
    """Evaluate the latest weights on ``eval_set``; metrics as plain floats (+ global_step)."""
    live = session(params)
    with dropped_on_failure(params):
        results = live.estimator.evaluate(
            _input_fn(live, params, eval_set.split, eval_set.batch_size, est.ModeKeys.EVAL),
            steps=eval_set.steps,
            name=eval_set.name,
        )
    return {key: float(np.asarray(value)) for key, value in results.items()}


@task(name="train-round", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def train_round(params: TrainingParams, target_step: int) -> dict[str, Any]:
    """Train until ``target_step`` (never past ``params.max_steps``) from the latest checkpoint.

    Idempotent: a retry, or a second run with the same target, trains only the missing steps.
    """
    result = train_to(params, target_step)
    get_run_logger().debug(  # the flow logs the round
        "trained steps %d → %d in %.1f s%s",
        result["start_step"],
        result["global_step"],
        result["seconds"],
        " (stopped early)" if result["stopped_early"] else "",
    )
    return result


@task(name="evaluate", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def evaluate(params: TrainingParams, eval_set: EvalSet) -> dict[str, float]:
    """Evaluate the latest checkpoint's weights on one named eval set."""
    return evaluate_set(params, eval_set)  # the flow logs each round's evaluations together
