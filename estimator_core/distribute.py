"""Distribution: the cluster described by ``TF_CONFIG`` and the strategy an Estimator trains with.

``TF_CONFIG`` is read as tf.estimator read it::

    {"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"], "evaluator": ["host2:2222"]},
     "task": {"type": "worker", "index": 0}}

Tasks of type ``chief`` and ``worker`` train together under
``tf.distribute.MultiWorkerMirroredStrategy`` (synchronous all-reduce); a task of type
``evaluator`` does not train, it evaluates the checkpoints the chief writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf

CHIEF, WORKER, EVALUATOR, PS, MASTER = "chief", "worker", "evaluator", "ps", "master"
# One per process: collective ops are configured once, when the strategy is created.
_multi_worker_strategy: tf.distribute.Strategy | None = None


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """This process's place in the cluster (tf.estimator.RunConfig's properties of that name).

    Without a ``cluster`` in ``TF_CONFIG``: a local run, ``task_type`` "worker", ``task_id`` 0,
    ``is_chief`` True, one worker replica, an empty ``cluster_spec``.

    With a cluster: ``is_chief`` is True for the ``chief`` task, or for ``worker`` 0 when the
    cluster has no ``chief`` (MultiWorkerMirroredStrategy's rule; tf.estimator required a
    chief). ``num_worker_replicas`` counts the ``chief`` and ``worker`` tasks.
    ``global_id_in_cluster``: 0 for the chief, then the tasks of every other type but ``ps``
    (types in alphabetical order, tasks by index), then the ``ps`` tasks; the ``evaluator``
    is not part of the training cluster: its ``cluster_spec`` is empty, its
    ``num_worker_replicas`` and ``num_ps_replicas`` 0 and its ``global_id_in_cluster`` None.
    ``master`` / ``evaluation_master``: the TF1 session targets tf.estimator derived from
    ``TF_CONFIG`` (``session_master``, ``eval_session_master``, or the task's ``grpc://``
    address); informational only, TensorFlow 2 has no sessions to point at them.
    """

    cluster_spec: tf.train.ClusterSpec
    task_type: str
    task_id: int
    is_chief: bool
    num_worker_replicas: int
    num_ps_replicas: int
    global_id_in_cluster: int | None
    master: str = ""
    evaluation_master: str = ""

    @property
    def is_multi_worker(self) -> bool:
        """True for a chief or worker task of a cluster with more than one training task."""
        return self.task_type in (CHIEF, WORKER) and self.num_worker_replicas > 1


def read_tf_config(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``TF_CONFIG`` of ``environ`` (default ``os.environ``) as a dict ({} when unset)."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}): {raw!r}") from err
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {raw!r}")
    return config


def cluster_info_from_env(environ: dict[str, str] | None = None) -> ClusterInfo:
    """Parse ``TF_CONFIG`` from ``environ`` (default ``os.environ``); ``ValueError`` if malformed."""
    return cluster_info(read_tf_config(environ))


def cluster_info(tf_config: dict[str, Any]) -> ClusterInfo:
    """This task's place in the cluster ``tf_config`` (a parsed ``TF_CONFIG``) describes.

    Refused with ``ValueError``, as tf.estimator refused them: a task other than ``worker`` 0
    without a cluster; a cluster without a task type or index, or without a ``chief``
    (unless it names a worker task: a cluster of workers only); more than one ``chief`` or
    ``evaluator``; a negative index; a task type or index the cluster does not have. Also
    refused: a ``master`` job (TF1's name for the chief; call it ``chief``).
    """
    task = tf_config.get("task") or {}
    if not isinstance(task, dict):
        raise ValueError(f'"task" in TF_CONFIG must be a dict, got {task!r}')
    raw_cluster = tf_config.get("cluster") or {}
    try:
        spec = tf.train.ClusterSpec(raw_cluster)
    except (TypeError, ValueError) as err:
        raise ValueError(f'"cluster" in TF_CONFIG is not a valid cluster: {err}') from err
    if not spec.jobs:
        return _local_task(task, tf_config)
    tasks = {job: len(spec.job_tasks(job)) for job in spec.jobs}
    if MASTER in tasks:
        raise ValueError(
            'TF_CONFIG: the cluster has a "master" job (TF1 between-graph replication), which '
            'is not supported; name that task "chief"'
        )
    if tasks.get(CHIEF, 0) > 1:
        raise ValueError('The "cluster" in TF_CONFIG must have only one "chief" node.')
    if tasks.get(EVALUATOR, 0) > 1:
        raise ValueError('The "cluster" in TF_CONFIG must have at most one "evaluator" node.')
    task_type, task_id = task.get("type"), task.get("index")
    if not task_type:
        if CHIEF not in tasks:
            raise ValueError(
                'If "cluster" is set in TF_CONFIG, it must have one "chief" node (a cluster '
                'of workers only is accepted when "task" names this task\'s type and index).'
            )
        raise ValueError('If "cluster" is set in TF_CONFIG, task type must be set.')
    if task_id is None:
        raise ValueError('If "cluster" is set in TF_CONFIG, task index must be set.')
    task_id = _task_index(task_id)
    if task_id < 0:
        raise ValueError(f"Task index must be non-negative number. Got {task_id} in TF_CONFIG.")
    if task_type == EVALUATOR:
        evaluation_master = tf_config.get("eval_session_master", "")
        return ClusterInfo(
            tf.train.ClusterSpec({}), EVALUATOR, task_id, False, 0, 0, None, "", evaluation_master
        )
    if task_type not in tasks:
        raise ValueError(
            f"{task_type} is not a valid task_type in the cluster_spec: {spec.as_dict()} "
            "(from the TF_CONFIG environment variable)"
        )
    if not 0 <= task_id < tasks[task_type]:
        raise ValueError(
            f"{task_id} is not a valid task_id for task_type {task_type} in the cluster_spec: "
            f"{spec.as_dict()} (from the TF_CONFIG environment variable)"
        )
    chiefs, workers = tasks.get(CHIEF, 0), tasks.get(WORKER, 0)
    if not chiefs and not workers:
        raise ValueError(
            f'If "cluster" is set in TF_CONFIG, it must have one "chief" node: {spec.as_dict()}'
        )
    return ClusterInfo(
        spec,
        task_type,
        task_id,
        task_type == CHIEF or (not chiefs and task_type == WORKER and task_id == 0),
        chiefs + workers,
        tasks.get(PS, 0),
        _global_id(tasks, task_type, task_id),
        _session_master(spec, tasks, task_type, task_id, tf_config),
        "",
    )


def _local_task(task: dict[str, Any], tf_config: dict[str, Any]) -> ClusterInfo:
    task_type = task.get("type", WORKER)
    if task_type != WORKER:
        raise ValueError(
            f'If "cluster" is not set in TF_CONFIG, task type must be WORKER. Got {task_type!r}.'
        )
    if _task_index(task.get("index", 0)) != 0:
        raise ValueError(
            'If "cluster" is not set in TF_CONFIG, task index must be 0. '
            f"Got {task.get('index')!r}."
        )
    return ClusterInfo(
        tf.train.ClusterSpec({}),
        WORKER,
        0,
        True,
        1,
        0,
        0,
        tf_config.get("session_master", ""),
        tf_config.get("eval_session_master", ""),
    )


def _task_index(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"TF_CONFIG: task index must be an integer, got {value!r}") from err


def _global_id(tasks: dict[str, int], task_type: str, task_id: int) -> int:
    """tf.estimator's order: the chief, the other types alphabetically, ps last."""
    others = sorted(t for t in tasks if t not in (CHIEF, PS, EVALUATOR))
    order = [CHIEF, *others, PS]
    return sum(tasks.get(t, 0) for t in order[: order.index(task_type)]) + task_id


def _session_master(
    spec: tf.train.ClusterSpec,
    tasks: dict[str, int],
    task_type: str,
    task_id: int,
    tf_config: dict[str, Any],
) -> str:
    if "session_master" in tf_config:
        return tf_config["session_master"]
    if sum(tasks.values()) == 1:
        return ""
    return "grpc://" + spec.task_address(task_type, task_id)


def training_strategy(
    train_distribute: tf.distribute.Strategy | None, cluster: ClusterInfo
) -> tf.distribute.Strategy | None:
    """The strategy to train with: ``train_distribute``, else MultiWorkerMirroredStrategy for a
    chief or worker of a multi-worker cluster, else None (one device)."""
    if train_distribute is not None:
        return train_distribute
    if cluster.task_type == PS or (cluster.is_multi_worker and cluster.num_ps_replicas):
        raise NotImplementedError(
            "TF_CONFIG names 'ps' tasks: parameter-server training is not supported; "
            "use a cluster of chief/worker tasks (MultiWorkerMirroredStrategy)"
        )
    if not cluster.is_multi_worker:
        return None
    global _multi_worker_strategy
    if _multi_worker_strategy is None:
        try:
            _multi_worker_strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:
            raise RuntimeError(
                "MultiWorkerMirroredStrategy could not be created (TF_CONFIG names a cluster): "
                "it must be created before TensorFlow runs any op in this process, so build "
                f"the Estimator before using TensorFlow: {err}"
            ) from err
    return _multi_worker_strategy


def input_context(
    strategy: tf.distribute.Strategy | None, cluster: ClusterInfo
) -> tf.distribute.InputContext | None:
    """What an input_fn declaring ``input_context`` receives (tf.estimator's argument): this
    worker's input pipeline among ``num_input_pipelines`` (one per training task) and the
    number of replicas. None without a strategy."""
    if strategy is None:
        return None
    multi = cluster.is_multi_worker and strategy is _multi_worker_strategy
    return tf.distribute.InputContext(
        num_input_pipelines=cluster.num_worker_replicas if multi else 1,
        input_pipeline_id=(cluster.global_id_in_cluster or 0) if multi else 0,
        num_replicas_in_sync=strategy.num_replicas_in_sync,
    )


def placeholder_element(element_spec: Any) -> Any:
    """A batch of one zero (or empty-string) example shaped like one replica's input.

    Variables under a strategy must be created eagerly (TensorFlow cannot lift a mirrored
    variable's initializer out of a function), so the model is built by running model_fn once
    on this batch.
    """

    def one(spec: Any) -> Any:
        if isinstance(spec, tf.TensorSpec):
            shape = [1 if d is None else d for d in spec.shape.as_list()]
            if spec.dtype == tf.string:
                return tf.fill(shape, "")
            return tf.zeros(shape, spec.dtype)
        if isinstance(spec, tf.SparseTensorSpec):
            shape = [1 if d is None else d for d in spec.shape.as_list()]
            return tf.SparseTensor(
                tf.zeros([0, len(shape)], tf.int64), tf.zeros([0], spec.dtype), shape
            )
        raise NotImplementedError(
            f"under a distribution strategy, input elements of type {spec} are not supported "
            "(dense and sparse tensors are)"
        )

    return tf.nest.map_structure(one, _one_replica_spec(element_spec))


def _one_replica_spec(element_spec: Any) -> Any:
    def unwrap(spec: Any) -> Any:
        value_specs = getattr(spec, "_value_specs", None)  # a PerReplicaSpec
        return value_specs[0] if value_specs else spec

    return tf.nest.map_structure(unwrap, element_spec)
