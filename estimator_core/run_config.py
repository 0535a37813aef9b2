"""RunConfig: where and how an Estimator runs, with tf.estimator's arguments, defaults and rules."""

from __future__ import annotations

import copy
import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from estimator_core.distribute import ClusterInfo, cluster_info, read_tf_config

logger = logging.getLogger(__name__)

_USE_DEFAULT = object()
DEFAULT_CHECKPOINT_SECS = 600
MIXED_PRECISION_POLICIES = (None, "mixed_float16", "mixed_bfloat16")
PROTOCOLS = (None, "grpc")
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

# tf.estimator's replaceable properties, then this project's additions.
_REPLACEABLE = (
    "model_dir",
    "tf_random_seed",
    "save_summary_steps",
    "save_checkpoints_steps",
    "save_checkpoints_secs",
    "session_config",
    "keep_checkpoint_max",
    "keep_checkpoint_every_n_hours",
    "log_step_count_steps",
    "train_distribute",
    "device_fn",
    "protocol",
    "eval_distribute",
    "experimental_distribute",
    "experimental_max_worker_delay_secs",
    "session_creation_timeout_secs",
    "checkpoint_save_graph_def",
    "iterations_per_loop",
    "run_eagerly",
    "jit_compile",
    "mixed_precision",
    "backend",
)


class RunConfig:
    """Run settings for an :class:`~estimator_core.Estimator`, as ``tf.estimator.RunConfig``.

    Every argument and property of tf.estimator 2.15's RunConfig, with its defaults and its
    validation (``ValueError`` with its messages, in the constructor and in :meth:`replace`).
    The settings are read-only properties stored as ``_<name>`` attributes, so a subclass may
    override a property or set ``self._<name>`` in its ``__init__``, as with tf.estimator;
    :meth:`replace` returns an object of the same class.

    Checkpoints: ``save_checkpoints_steps`` and ``save_checkpoints_secs`` are mutually exclusive.
    Neither given: a checkpoint every 600 seconds. Both given as ``None``: no periodic
    checkpoints (``train()`` still saves one at its end). ``keep_checkpoint_max`` of 0 or
    ``None`` keeps every checkpoint; ``keep_checkpoint_every_n_hours`` additionally keeps one
    checkpoint per that many hours.

    Summaries: every ``save_summary_steps`` global steps (``None`` or 0: never); ``global_step/sec``
    is logged and recorded every ``log_step_count_steps`` steps (``None``: never).

    ``model_dir`` may also come from ``TF_CONFIG``'s ``model_dir`` (both given: they must be
    equal); an empty string in either is refused. ``TF_CONFIG``'s ``service`` (a dict) is
    :attr:`service`.

    Accepted for tf.estimator programs, with what they mean here:

    * ``device_fn``: a function of one argument ``op`` returning the device of each op
      model_fn creates (``tf.compat.v1.device(device_fn)`` around model_fn, as tf.estimator
      did); not applied under a distribution strategy (as in tf.estimator) nor with
      ``run_eagerly`` (TensorFlow has no device functions in eager mode).
    * ``protocol``: the server protocol, ``None`` or ``"grpc"`` (what multi-worker training
      uses); ``"grpc+verbs"`` is refused: TensorFlow 2 has no verbs transport.
    * ``experimental_distribute``: must be None (``tf.contrib``'s DistributeConfig is gone;
      pass ``train_distribute`` / ``eval_distribute``).
    * ``experimental_max_worker_delay_secs`` (an int or None), ``session_creation_timeout_secs``
      (> 0, default 7200) and ``checkpoint_save_graph_def`` (default True): stored and
      validated; they tuned TF1 sessions and graph files, which TensorFlow 2 does not have
      (workers start together; no ``graph.pbtxt`` or ``.meta`` files are written).

    Added for TensorFlow 2 (not in tf.estimator; keyword-only):

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

    ``session_config`` is a TF1 ``ConfigProto`` (or a non-empty dict of the TF2 settings it
    maps to) whose fields are applied to TF2's process-wide settings: see
    :func:`apply_session_config`.

    Distribution:

    * ``train_distribute``: a ``tf.distribute.Strategy`` (``MirroredStrategy`` for the local
      GPUs or logical CPUs, or ``MultiWorkerMirroredStrategy``) that ``train()`` runs each step
      under, one replica per device, gradients summed across replicas by all-reduce.
      Parameter-server strategies are refused. **Batch semantics (tf.estimator's):** the
      input_fn's Dataset yields *per-replica* batches.
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
      ``is_chief``, ``num_worker_replicas``, ``num_ps_replicas``, ``global_id_in_cluster``,
      ``master`` and ``evaluation_master`` (see :class:`~estimator_core.distribute.ClusterInfo`
      for the rules and what is refused).
    """

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
        train_distribute: tf.distribute.Strategy | None = None,
        device_fn: Callable[[Any], str] | None = None,
        protocol: str | None = None,
        eval_distribute: tf.distribute.Strategy | None = None,
        experimental_distribute: Any = None,
        experimental_max_worker_delay_secs: int | None = None,
        session_creation_timeout_secs: int = 7200,
        checkpoint_save_graph_def: bool = True,
        *,
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
        elif save_checkpoints_steps is not None and save_checkpoints_secs is not None:
            raise ValueError(_SAVE_CKPT_ERR)
        tf_config = read_tf_config()
        settings = {
            "model_dir": _model_dir(tf_config, model_dir),
            "tf_random_seed": tf_random_seed,
            "save_summary_steps": save_summary_steps,
            "save_checkpoints_steps": save_checkpoints_steps,
            "save_checkpoints_secs": save_checkpoints_secs,
            "session_config": session_config,
            "keep_checkpoint_max": keep_checkpoint_max,
            "keep_checkpoint_every_n_hours": keep_checkpoint_every_n_hours,
            "log_step_count_steps": log_step_count_steps,
            "train_distribute": train_distribute,
            "device_fn": device_fn,
            "protocol": protocol,
            "eval_distribute": eval_distribute,
            "experimental_distribute": experimental_distribute,
            "experimental_max_worker_delay_secs": experimental_max_worker_delay_secs,
            "session_creation_timeout_secs": session_creation_timeout_secs,
            "checkpoint_save_graph_def": checkpoint_save_graph_def,
            "iterations_per_loop": iterations_per_loop,
            "run_eagerly": bool(run_eagerly)
            or os.environ.get("ESTIMATOR_CORE_RUN_EAGERLY", "") not in ("", "0"),
            "jit_compile": bool(jit_compile),
            "mixed_precision": mixed_precision,
            "backend": configured_backend(backend),
        }
        for name, value in settings.items():
            setattr(self, f"_{name}", value)
        self._service = _service(tf_config)
        place = cluster_info(tf_config)
        self._cluster_spec = place.cluster_spec
        self._task_type = place.task_type
        self._task_id = place.task_id
        self._is_chief = place.is_chief
        self._num_worker_replicas = place.num_worker_replicas
        self._num_ps_replicas = place.num_ps_replicas
        self._global_id_in_cluster = place.global_id_in_cluster
        self._master = place.master
        self._evaluation_master = place.evaluation_master
        _validate(self)

    # -- checkpoints, summaries, logs ---------------------------------------------------------

    @property
    def model_dir(self) -> str | None:
        return self._model_dir

    @property
    def tf_random_seed(self) -> int | None:
        return self._tf_random_seed

    @property
    def save_summary_steps(self) -> int | None:
        return self._save_summary_steps

    @property
    def save_checkpoints_steps(self) -> int | None:
        return self._save_checkpoints_steps

    @property
    def save_checkpoints_secs(self) -> float | None:
        return self._save_checkpoints_secs

    @property
    def session_config(self) -> Any:
        return self._session_config

    @property
    def keep_checkpoint_max(self) -> int | None:
        return self._keep_checkpoint_max

    @property
    def keep_checkpoint_every_n_hours(self) -> float | None:
        return self._keep_checkpoint_every_n_hours

    @property
    def log_step_count_steps(self) -> int | None:
        return self._log_step_count_steps

    @property
    def checkpoint_save_graph_def(self) -> bool:
        return self._checkpoint_save_graph_def

    # -- devices and distribution ---------------------------------------------------------------

    @property
    def train_distribute(self) -> tf.distribute.Strategy | None:
        """Optional ``tf.distribute.Strategy`` for training."""
        return self._train_distribute

    @property
    def eval_distribute(self) -> tf.distribute.Strategy | None:
        """Optional ``tf.distribute.Strategy`` for evaluation (None or ``train_distribute``)."""
        return self._eval_distribute

    @property
    def experimental_distribute(self) -> Any:
        return self._experimental_distribute

    @property
    def device_fn(self) -> Callable[[Any], str] | None:
        return self._device_fn

    @property
    def protocol(self) -> str | None:
        return self._protocol

    @property
    def experimental_max_worker_delay_secs(self) -> int | None:
        return self._experimental_max_worker_delay_secs

    @property
    def session_creation_timeout_secs(self) -> int:
        return self._session_creation_timeout_secs

    # -- this project's additions ------------------------------------------------------------

    @property
    def iterations_per_loop(self) -> int:
        return self._iterations_per_loop

    @property
    def run_eagerly(self) -> bool:
        return self._run_eagerly

    @property
    def jit_compile(self) -> bool:
        return self._jit_compile

    @property
    def mixed_precision(self) -> str | None:
        return self._mixed_precision

    @property
    def backend(self) -> str:
        """``"auto"``, ``"graph"`` or ``"function"`` (see the class docstring)."""
        return self._backend

    # -- TF_CONFIG ----------------------------------------------------------------------------

    @property
    def service(self) -> dict[str, Any] | None:
        """``TF_CONFIG``'s ``service`` dict (platform-defined), or None."""
        return self._service

    @property
    def cluster_spec(self) -> tf.train.ClusterSpec:
        """The ``TF_CONFIG`` cluster (empty for a local run and for an evaluator)."""
        return self._cluster_spec

    @property
    def task_type(self) -> str:
        """``chief``, ``worker`` or ``evaluator`` (``worker`` for a local run)."""
        return self._task_type

    @property
    def task_id(self) -> int:
        """The task's index among the tasks of its type (0 for a local run)."""
        return self._task_id

    @property
    def is_chief(self) -> bool:
        """True for the task that writes checkpoints and summaries (True for a local run)."""
        return self._is_chief

    @property
    def num_worker_replicas(self) -> int:
        """Training tasks (chief and workers) in the cluster: 1 for a local run, 0 for an
        evaluator."""
        return self._num_worker_replicas

    @property
    def num_ps_replicas(self) -> int:
        """``ps`` tasks in the cluster (always 0 in a supported configuration)."""
        return self._num_ps_replicas

    @property
    def global_id_in_cluster(self) -> int | None:
        """0 for the chief, then the other tasks (see ``ClusterInfo``); None for an evaluator."""
        return self._global_id_in_cluster

    @property
    def master(self) -> str:
        """tf.estimator's TF1 session target (informational: TensorFlow 2 has no sessions)."""
        return self._master

    @property
    def evaluation_master(self) -> str:
        """tf.estimator's TF1 evaluation session target (informational)."""
        return self._evaluation_master

    @property
    def cluster(self) -> ClusterInfo:
        """This process's place in the ``TF_CONFIG`` cluster, from the properties above (so a
        subclass overriding one of them is heard)."""
        return ClusterInfo(
            self.cluster_spec,
            self.task_type,
            self.task_id,
            self.is_chief,
            self.num_worker_replicas,
            self.num_ps_replicas,
            self.global_id_in_cluster,
            self.master,
            self.evaluation_master,
        )

    def replace(self, **kwargs: Any) -> RunConfig:
        """A copy (of the same class) with the given properties replaced.

        Replaceable: the constructor's arguments. Replacing ``save_checkpoints_steps`` with a
        value sets ``save_checkpoints_secs`` to None and vice versa; replacing both with values
        is a ``ValueError``. The copy is validated as the constructor validates. The copy is
        shallow: strategies, ``session_config`` and ``device_fn`` are the same objects.
        """
        new = copy.copy(self)
        for key, value in kwargs.items():
            if key not in _REPLACEABLE:
                raise ValueError(
                    f"Replacing {key} is not supported. Allowed properties are "
                    f"{list(_REPLACEABLE)}."
                )
            if key == "model_dir":
                value = _path_to_str(value)
            setattr(new, f"_{key}", value)
        steps, secs = "save_checkpoints_steps" in kwargs, "save_checkpoints_secs" in kwargs
        if steps and secs:
            if new.save_checkpoints_steps is not None and new.save_checkpoints_secs is not None:
                raise ValueError(_SAVE_CKPT_ERR)
        elif steps and new.save_checkpoints_steps is not None:
            new._save_checkpoints_secs = None
        elif secs and new.save_checkpoints_secs is not None:
            new._save_checkpoints_steps = None
        _validate(new)
        return new

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in _REPLACEABLE)
        return f"{type(self).__name__}({settings})"


def configured_backend(backend: str | None) -> str:
    """RunConfig's ``backend``: the argument, else ``$ESTIMATOR_CORE_BACKEND``, else ``"auto"``;
    ``ValueError`` for anything else."""
    value = backend if backend is not None else os.environ.get(BACKEND_ENV_VAR, "") or "auto"
    if value not in BACKENDS:
        source = "RunConfig.backend" if backend is not None else BACKEND_ENV_VAR
        raise ValueError(f"{source} must be one of {BACKENDS}, got {value!r}")
    return value


_SAVE_CKPT_ERR = "`save_checkpoints_steps` and `save_checkpoints_secs` cannot be both set."


def _path_to_str(path: Any) -> Any:
    return os.fspath(path) if isinstance(path, os.PathLike) else path


def _model_dir(tf_config: dict[str, Any], model_dir: Any) -> str | None:
    """The constructor's ``model_dir`` or ``TF_CONFIG``'s (tf.estimator's rules)."""
    model_dir = _path_to_str(model_dir)
    if model_dir == "":
        raise ValueError("model_dir should be non-empty.")
    from_env = tf_config.get("model_dir")
    if from_env == "":
        raise ValueError("model_dir in TF_CONFIG should be non-empty.")
    if from_env and model_dir and from_env != model_dir:
        raise ValueError(
            "`model_dir` provided in RunConfig construct, if set, must have the same value as "
            f"the model_dir in TF_CONFIG. model_dir: {model_dir}\n"
            f'TF_CONFIG["model_dir"]: {from_env}.\n'
        )
    if from_env and not model_dir:
        logger.info("Using model_dir in TF_CONFIG: %s", from_env)
    return model_dir or from_env


def _service(tf_config: dict[str, Any]) -> dict[str, Any] | None:
    service = tf_config.get("service")
    if service is not None and not isinstance(service, dict):
        raise TypeError(
            f'If "service" is set in TF_CONFIG, it must be a dict. Given {type(service)}'
        )
    return service


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(config: RunConfig) -> None:
    """tf.estimator's checks (its messages first, then what was given)."""

    def check(name: str, ok: Callable[[Any], bool], message: str) -> None:
        value = getattr(config, name)
        if value is not None and not ok(value):
            raise ValueError(f"{message} (got {name}={value!r})")

    def count(value: Any) -> bool:
        return _is_int(value) and value >= 0

    check("model_dir", lambda d: isinstance(d, str) and d, "model_dir should be non-empty")
    check("save_summary_steps", count, "save_summary_steps should be >= 0 (an int)")
    check("save_checkpoints_steps", count, "save_checkpoints_steps should be >= 0 (an int)")
    check(
        "save_checkpoints_secs",
        lambda s: isinstance(s, (int, float)) and s >= 0,
        "save_checkpoints_secs should be >= 0",
    )
    check(
        "session_config",
        lambda c: isinstance(c, tf.compat.v1.ConfigProto) or (isinstance(c, dict) and c),
        "session_config must be instance of ConfigProto (or a non-empty dict of "
        f"{list(_SESSION_CONFIG_KEYS)})",
    )
    session_config_to_dict(config.session_config)  # unknown keys, fields without a TF2 meaning
    check("keep_checkpoint_max", count, "keep_checkpoint_max should be >= 0 (an int)")
    check(
        "keep_checkpoint_every_n_hours",
        lambda h: isinstance(h, (int, float)) and h > 0,
        "keep_checkpoint_every_n_hours should be > 0",
    )
    check(
        "log_step_count_steps",
        lambda n: _is_int(n) and n > 0,
        "log_step_count_steps should be > 0 (an int)",
    )
    check("tf_random_seed", _is_int, "tf_random_seed must be integer.")
    check(
        "experimental_max_worker_delay_secs",
        _is_int,
        "experimental_max_worker_delay_secs must be an integer if set.",
    )
    check(
        "session_creation_timeout_secs",
        lambda s: isinstance(s, (int, float)) and s > 0,
        "session_creation_timeout_secs should be > 0",
    )
    check("device_fn", _takes_only_op, 'device_fn must be callable with exactly one argument "op".')
    check(
        "protocol",
        lambda p: p in PROTOCOLS,
        "protocol should be grpc (TensorFlow 2 has no grpc+verbs transport)",
    )
    if config.experimental_distribute is not None:
        raise ValueError(
            "experimental_distribute (tf.contrib.distribute.DistributeConfig) is not "
            "supported; pass train_distribute and eval_distribute to RunConfig instead"
        )
    loop = config.iterations_per_loop
    if not _is_int(loop) or loop < 1:
        raise ValueError(f"RunConfig: iterations_per_loop must be an int >= 1, got {loop!r}")
    if config.mixed_precision not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"RunConfig: mixed_precision must be one of {MIXED_PRECISION_POLICIES}, "
            f"got {config.mixed_precision!r}"
        )
    if config.backend not in BACKENDS:
        raise ValueError(f"RunConfig.backend must be one of {BACKENDS}, got {config.backend!r}")
    _validate_strategies(config.train_distribute, config.eval_distribute)


def _takes_only_op(fn: Any) -> bool:
    if not callable(fn):
        return False
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    return [p.name for p in parameters] == ["op"] and parameters[0].kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.POSITIONAL_ONLY,
    )


def _validate_strategies(train: Any, evaluation: Any) -> None:
    parameter_server = (
        tf.distribute.experimental.ParameterServerStrategy,
        tf.compat.v1.distribute.experimental.ParameterServerStrategy,
    )
    for name, value in (("train_distribute", train), ("eval_distribute", evaluation)):
        if value is None:
            continue
        if not isinstance(value, tf.distribute.Strategy):
            raise TypeError(
                f"RunConfig: {name} must be a tf.distribute.Strategy or None, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, parameter_server):
            raise ValueError(
                f"RunConfig: {name} is a {type(value).__name__}: parameter-server training is "
                "not supported (tf.estimator asked for `tf.compat.v1.distribute.experimental."
                "ParameterServerStrategy` there); use MirroredStrategy or "
                "MultiWorkerMirroredStrategy"
            )
    if evaluation is not None and evaluation is not train:
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
