"""RunConfig: where and how an Estimator runs, with tf.estimator's defaults and rules."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import tensorflow as tf

from estimator_core.distribute import ClusterInfo, cluster_info_from_env

logger = logging.getLogger(__name__)

_USE_DEFAULT = object()
DEFAULT_CHECKPOINT_SECS = 600
MIXED_PRECISION_POLICIES = (None, "mixed_float16", "mixed_bfloat16")
BACKENDS = ("auto", "graph", "function")
BACKEND_ENV_VAR = "ESTIMATOR_CORE_BACKEND"

_SESSION_CONFIG_KEYS = (
    "intra_op_parallelism_threads",
    "inter_op_parallelism_threads",
    "allow_soft_placement",
    "log_device_placement",
    "gpu_allow_growth",
    "gpu_memory_limit_mb",
    "visible_gpus",
)


@dataclasses.dataclass(frozen=True, init=False)
class RunConfig:
    """Run settings for an :class:`~estimator_core.Estimator`, as ``tf.estimator.RunConfig``.

    Checkpoints: ``save_checkpoints_steps`` and ``save_checkpoints_secs`` are mutually exclusive.
    Neither given: a checkpoint every 600 seconds. Both given as ``None``: no periodic
    checkpoints (``train()`` still saves one at its end). ``keep_checkpoint_max`` of 0 or
    ``None`` keeps every checkpoint; ``keep_checkpoint_every_n_hours`` additionally keeps one
    checkpoint per that many hours.

    Summaries: every ``save_summary_steps`` global steps (``None`` or 0: never); ``global_step/sec``
    is logged and recorded every ``log_step_count_steps`` steps (``None``: never).

    Added for TensorFlow 2 (not in tf.estimator):

    * ``iterations_per_loop`` (TPUEstimator's name): the most training or evaluation steps run in
      one compiled ``tf.function`` call. Loops also end where a checkpoint, a log line or a hook
      needs the Python side, so values above 1 only change speed, never results.
    * ``run_eagerly``: call model_fn eagerly (no ``tf.function``) so ``print`` and debugger
      breakpoints work inside it. Also switched on by the environment variable
      ``ESTIMATOR_CORE_RUN_EAGERLY=1``.
    * ``jit_compile``: compile each train/eval/predict step with XLA (the input pipeline stays
      outside). Often faster (1.3-1.4x for the benchmark's MLP on CPU); ``tf.summary`` calls
      inside model_fn are not recorded under XLA (the loss still is).
    * ``mixed_precision``: ``"mixed_float16"`` or ``"mixed_bfloat16"`` sets Keras' global
      dtype policy when the Estimator is built (process-wide: layers compute in 16 bits, keep
      float32 variables); with ``mixed_float16`` a Keras optimizer ``train_op`` gets dynamic
      loss scaling. Cast the loss to float32 in model_fn.
    * ``backend``: which backend runs model_fn: ``"function"`` (TF2: ``tf.function`` loops,
      Keras 3), ``"graph"`` (TF1 model_fns unmodified: ``tf.compat.v1`` graphs and sessions)
      or ``"auto"`` (decided on the first call; see :mod:`estimator_core.backend_choice`).
      ``None`` reads the environment variable ``ESTIMATOR_CORE_BACKEND``, else ``"auto"``.

    ``session_config`` maps a TF1 ``ConfigProto``'s fields (or a dict of them) to TF2's process-wide
    settings: see :func:`apply_session_config`.

    Distribution:

    * ``train_distribute``: a ``tf.distribute.Strategy`` (``MirroredStrategy`` for the local
      GPUs or logical CPUs, or ``MultiWorkerMirroredStrategy``) that ``train()`` runs each step
      under, one replica per device, gradients summed across replicas by all-reduce.
      **Batch semantics (tf.estimator's):** the input_fn's Dataset yields *per-replica* batches.
      Each step gives one batch to every replica, so a step consumes ``num_replicas_in_sync``
      batches and the global batch is ``batch_size * num_replicas_in_sync``. Each replica's loss
      (model_fn's ``loss``, a mean over its batch) is divided by ``num_replicas_in_sync`` before
      its gradients are taken, so the summed gradient is the gradient of the mean loss over the
      global batch: N replicas on batches of B train as one device on batches of N*B. The loss
      reported (hooks, logs, summaries) is the mean of the replicas' losses. The input is not
      sharded: an input_fn declaring ``input_context`` gets a ``tf.distribute.InputContext``
      to shard or size its data with. A callable ``train_op`` is not supported under a strategy
      (give a Keras optimizer).
    * ``eval_distribute``: None or the same strategy object as ``train_distribute``.
      ``evaluate()`` runs under the training strategy in both cases (the variables, metrics
      included, live under one strategy; tf.estimator rebuilt its graph and accepted any),
      batches again per replica; metrics stream over all batches, so results do not depend on
      the number of replicas. ``predict()`` and ``export_saved_model()`` run on one device.
    * ``TF_CONFIG`` (read when the RunConfig is built): with a ``cluster`` of ``chief`` /
      ``worker`` tasks and no ``train_distribute``, chief and workers train with
      ``MultiWorkerMirroredStrategy`` (created when the Estimator is built, which must happen
      before TensorFlow runs any op in the process). Only the chief writes checkpoints and
      summaries to model_dir; the other workers write theirs to a temporary directory that is
      deleted with the Estimator. A task of type ``evaluator`` does not train:
      ``train_and_evaluate`` there evaluates each new checkpoint. ``ps`` tasks are not
      supported. The task's place is exposed as ``cluster_spec``, ``task_type``, ``task_id``,
      ``is_chief``, ``num_worker_replicas``, ``num_ps_replicas`` and ``global_id_in_cluster``
      (see :class:`~estimator_core.distribute.ClusterInfo`).
    """

    model_dir: str | None
    tf_random_seed: int | None
    save_summary_steps: int | None
    save_checkpoints_steps: int | None
    save_checkpoints_secs: int | None
    session_config: Any
    keep_checkpoint_max: int | None
    keep_checkpoint_every_n_hours: float | None
    log_step_count_steps: int | None
    train_distribute: Any
    eval_distribute: Any
    iterations_per_loop: int
    run_eagerly: bool
    jit_compile: bool
    mixed_precision: str | None
    backend: str

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        tf_random_seed: int | None = None,
        save_summary_steps: int | None = 100,
        save_checkpoints_steps: Any = _USE_DEFAULT,
        save_checkpoints_secs: Any = _USE_DEFAULT,
        session_config: Any = None,
        keep_checkpoint_max: int | None = 5,
        keep_checkpoint_every_n_hours: float | None = 10000,
        log_step_count_steps: int | None = 100,
        train_distribute: Any = None,
        eval_distribute: Any = None,
        iterations_per_loop: int = 100,
        run_eagerly: bool = False,
        jit_compile: bool = False,
        mixed_precision: str | None = None,
        backend: str | None = None,
    ) -> None:
        steps_default = save_checkpoints_steps is _USE_DEFAULT
        secs_default = save_checkpoints_secs is _USE_DEFAULT
        if steps_default and secs_default:
            save_checkpoints_steps, save_checkpoints_secs = None, DEFAULT_CHECKPOINT_SECS
        elif steps_default:
            save_checkpoints_steps = None
        elif secs_default:
            save_checkpoints_secs = None
        if save_checkpoints_steps is not None and save_checkpoints_secs is not None:
            raise ValueError(
                "RunConfig: save_checkpoints_steps and save_checkpoints_secs are mutually "
                f"exclusive, got {save_checkpoints_steps} and {save_checkpoints_secs}"
            )
        values = {
            "model_dir": os.fspath(model_dir) if model_dir is not None else None,
            "tf_random_seed": tf_random_seed,
            "save_summary_steps": save_summary_steps,
            "save_checkpoints_steps": save_checkpoints_steps,
            "save_checkpoints_secs": save_checkpoints_secs,
            "session_config": session_config,
            "keep_checkpoint_max": keep_checkpoint_max,
            "keep_checkpoint_every_n_hours": keep_checkpoint_every_n_hours,
            "log_step_count_steps": log_step_count_steps,
            "train_distribute": train_distribute,
            "eval_distribute": eval_distribute,
            "iterations_per_loop": iterations_per_loop,
            "run_eagerly": bool(run_eagerly)
            or os.environ.get("ESTIMATOR_CORE_RUN_EAGERLY", "") not in ("", "0"),
            "jit_compile": bool(jit_compile),
            "mixed_precision": mixed_precision,
            "backend": configured_backend(backend),
        }
        _validate(values)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_cluster", cluster_info_from_env())

    @property
    def cluster(self) -> ClusterInfo:
        """This process's place in the ``TF_CONFIG`` cluster (a local run without one)."""
        return self._cluster  # type: ignore[attr-defined]

    @property
    def cluster_spec(self) -> tf.train.ClusterSpec:
        """The ``TF_CONFIG`` cluster (empty for a local run)."""
        return self.cluster.cluster_spec

    @property
    def task_type(self) -> str:
        """``chief``, ``worker`` or ``evaluator`` (``worker`` for a local run)."""
        return self.cluster.task_type

    @property
    def task_id(self) -> int:
        """The task's index among the tasks of its type (0 for a local run)."""
        return self.cluster.task_id

    @property
    def is_chief(self) -> bool:
        """True for the task that writes checkpoints and summaries (True for a local run)."""
        return self.cluster.is_chief

    @property
    def num_worker_replicas(self) -> int:
        """Training tasks (chief and workers) in the cluster: 1 for a local run, 0 for an
        evaluator."""
        return self.cluster.num_worker_replicas

    @property
    def num_ps_replicas(self) -> int:
        """``ps`` tasks in the cluster (always 0 in a supported configuration)."""
        return self.cluster.num_ps_replicas

    @property
    def global_id_in_cluster(self) -> int | None:
        """0 for the chief, then the workers in order; None for an evaluator."""
        return self.cluster.global_id_in_cluster

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied; the same validation rules hold for the result."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"RunConfig.replace: unknown setting(s) {sorted(unknown)}")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if "save_checkpoints_steps" in changes and "save_checkpoints_secs" not in changes:
            values["save_checkpoints_secs"] = None
        if "save_checkpoints_secs" in changes and "save_checkpoints_steps" not in changes:
            values["save_checkpoints_steps"] = None
        values.update(changes)
        return RunConfig(**values)


def configured_backend(backend: str | None) -> str:
    """RunConfig's ``backend``: the argument, else ``$ESTIMATOR_CORE_BACKEND``, else ``"auto"``;
    ``ValueError`` for anything else."""
    value = backend if backend is not None else os.environ.get(BACKEND_ENV_VAR, "") or "auto"
    if value not in BACKENDS:
        source = "RunConfig.backend" if backend is not None else BACKEND_ENV_VAR
        raise ValueError(f"{source} must be one of {BACKENDS}, got {value!r}")
    return value


def _validate(values: dict[str, Any]) -> None:
    for name in ("save_summary_steps", "save_checkpoints_steps", "log_step_count_steps"):
        value = values[name]
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"RunConfig: {name} must be a non-negative int or None, got {value!r}")
    secs = values["save_checkpoints_secs"]
    if secs is not None and (not isinstance(secs, (int, float)) or secs < 0):
        raise ValueError(f"RunConfig: save_checkpoints_secs must be >= 0 or None, got {secs!r}")
    keep = values["keep_checkpoint_max"]
    if keep is not None and (not isinstance(keep, int) or keep < 0):
        raise ValueError(f"RunConfig: keep_checkpoint_max must be >= 0 or None, got {keep!r}")
    hours = values["keep_checkpoint_every_n_hours"]
    if hours is not None and (not isinstance(hours, (int, float)) or hours <= 0):
        raise ValueError(
            f"RunConfig: keep_checkpoint_every_n_hours must be > 0 or None, got {hours!r}"
        )
    loop = values["iterations_per_loop"]
    if not isinstance(loop, int) or loop < 1:
        raise ValueError(f"RunConfig: iterations_per_loop must be an int >= 1, got {loop!r}")
    seed = values["tf_random_seed"]
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"RunConfig: tf_random_seed must be an int or None, got {seed!r}")
    if values["mixed_precision"] not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"RunConfig: mixed_precision must be one of {MIXED_PRECISION_POLICIES}, "
            f"got {values['mixed_precision']!r}"
        )
    for name in ("train_distribute", "eval_distribute"):
        if values[name] is not None and not isinstance(values[name], tf.distribute.Strategy):
            raise TypeError(
                f"RunConfig: {name} must be a tf.distribute.Strategy or None, "
                f"got {type(values[name]).__name__}"
            )
    if (
        values["eval_distribute"] is not None
        and values["eval_distribute"] is not (values["train_distribute"])
    ):
        raise ValueError(
            "RunConfig: eval_distribute must be None or the same strategy object as "
            "train_distribute (the Estimator's variables live under one strategy, and "
            "evaluate() runs under the training strategy either way)"
        )


def session_config_to_dict(session_config: Any) -> dict[str, Any]:
    """Normalise a ``tf.compat.v1.ConfigProto`` or a dict into the settings TF2 can apply."""
    if session_config is None:
        return {}
    if isinstance(session_config, dict):
        unknown = set(session_config) - set(_SESSION_CONFIG_KEYS)
        if unknown:
            raise ValueError(
                f"RunConfig.session_config: unknown key(s) {sorted(unknown)}; "
                f"known: {list(_SESSION_CONFIG_KEYS)}"
            )
        return dict(session_config)
    if not isinstance(session_config, tf.compat.v1.ConfigProto):
        raise TypeError(
            "RunConfig.session_config must be a tf.compat.v1.ConfigProto or a dict, "
            f"got {type(session_config).__name__}"
        )
    proto = session_config
    if proto.gpu_options.per_process_gpu_memory_fraction:
        raise ValueError(
            "RunConfig.session_config: gpu_options.per_process_gpu_memory_fraction has no TF2 "
            "equivalent; use session_config={'gpu_memory_limit_mb': N} instead"
        )
    settings: dict[str, Any] = {
        "intra_op_parallelism_threads": proto.intra_op_parallelism_threads,
        "inter_op_parallelism_threads": proto.inter_op_parallelism_threads,
        "allow_soft_placement": proto.allow_soft_placement,
        "log_device_placement": proto.log_device_placement,
        "gpu_allow_growth": proto.gpu_options.allow_growth,
    }
    if proto.gpu_options.visible_device_list:
        settings["visible_gpus"] = [
            int(i) for i in proto.gpu_options.visible_device_list.split(",")
        ]
    if proto.device_count.get("GPU", None) == 0:
        settings["visible_gpus"] = []
    return {key: value for key, value in settings.items() if value}


def apply_session_config(session_config: Any) -> dict[str, Any]:
    """Apply a session config's settings to this process; returns the settings applied.

    Mapping (TF1 ``ConfigProto`` field → TF2 call):

    * ``intra_op_parallelism_threads`` / ``inter_op_parallelism_threads`` →
      ``tf.config.threading.set_*_parallelism_threads``;
    * ``allow_soft_placement`` → ``tf.config.set_soft_device_placement``;
    * ``log_device_placement`` → ``tf.debugging.set_log_device_placement``;
    * ``gpu_options.allow_growth`` (dict key ``gpu_allow_growth``) →
      ``tf.config.experimental.set_memory_growth`` on every visible GPU;
    * ``gpu_options.visible_device_list`` / ``device_count={'GPU': 0}`` (dict key
      ``visible_gpus``, a list of indices) → ``tf.config.set_visible_devices``;
    * dict key ``gpu_memory_limit_mb`` → one logical device per GPU with that memory limit
      (what ``per_process_gpu_memory_fraction`` was used for).

    These are process-wide and only take effect before TensorFlow initialises its devices;
    a setting that can no longer be applied is logged as a warning and skipped.
    """
    settings = session_config_to_dict(session_config)
    applied: dict[str, Any] = {}
    gpus = tf.config.list_physical_devices("GPU")
    actions = {
        "intra_op_parallelism_threads": tf.config.threading.set_intra_op_parallelism_threads,
        "inter_op_parallelism_threads": tf.config.threading.set_inter_op_parallelism_threads,
        "allow_soft_placement": tf.config.set_soft_device_placement,
        "log_device_placement": tf.debugging.set_log_device_placement,
        "visible_gpus": lambda indices: tf.config.set_visible_devices(
            [gpus[i] for i in indices], "GPU"
        ),
        "gpu_allow_growth": lambda grow: [
            tf.config.experimental.set_memory_growth(gpu, grow) for gpu in gpus
        ],
        "gpu_memory_limit_mb": lambda limit: [
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)]
            )
            for gpu in gpus
        ],
    }
    for key, value in settings.items():
        try:
            actions[key](value)
        except (RuntimeError, ValueError, IndexError) as err:
            logger.warning("session_config %s=%r not applied: %s", key, value, err)
            continue
        applied[key] = value
    return applied
