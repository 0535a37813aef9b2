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

CHIEF, WORKER, EVALUATOR, PS = "chief", "worker", "evaluator", "ps"
# One per process: collective ops are configured once, when the strategy is created.
_multi_worker_strategy: tf.distribute.Strategy | None = None


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """This process's place in the cluster (tf.estimator.RunConfig's properties of that name).

    Without ``TF_CONFIG`` (or without a ``cluster`` in it): a local run, ``task_type`` "worker",
    ``task_id`` 0, ``is_chief`` True, one worker replica, an empty ``cluster_spec``.

    With a cluster: ``is_chief`` is True for the ``chief`` task, or for ``worker`` 0 when the
    cluster has no ``chief`` (MultiWorkerMirroredStrategy's rule). ``num_worker_replicas`` counts
    the ``chief`` and ``worker`` tasks (0 for an ``evaluator``, which does not train).
    ``global_id_in_cluster``: 0 for the chief, then the workers in order, then the ``ps`` tasks;
    None for an evaluator.
    """

    cluster_spec: tf.train.ClusterSpec
    task_type: str
    task_id: int
    is_chief: bool
    num_worker_replicas: int
    num_ps_replicas: int
    global_id_in_cluster: int | None

    @property
    def is_multi_worker(self) -> bool:
        """True for a chief or worker task of a cluster with more than one training task."""
        return self.task_type in (CHIEF, WORKER) and self.num_worker_replicas > 1


def cluster_info_from_env(environ: dict[str, str] | None = None) -> ClusterInfo:
    """Parse ``TF_CONFIG`` from ``environ`` (default ``os.environ``); ``ValueError`` if malformed."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    config = json.loads(raw) if raw.strip() else {}
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {raw!r}")
    cluster = config.get("cluster") or {}
    if not cluster:
        return ClusterInfo(tf.train.ClusterSpec({}), WORKER, 0, True, 1, 0, 0)
    task = config.get("task") or {}
    task_type, task_id = task.get("type"), int(task.get("index", 0))
    if not task_type:
        raise ValueError(f"TF_CONFIG names a cluster but no task type: {raw}")
    jobs = {name: list(addresses) for name, addresses in cluster.items()}
    if task_type != EVALUATOR:
        if task_type not in jobs:
            raise ValueError(f"TF_CONFIG: task type {task_type!r} is not in the cluster {jobs}")
        if not 0 <= task_id < len(jobs[task_type]):
            raise ValueError(
                f"TF_CONFIG: task index {task_id} is out of range for {task_type!r} "
                f"({len(jobs[task_type])} task(s))"
            )
    chiefs, workers, ps = (len(jobs.get(name, ())) for name in (CHIEF, WORKER, PS))
    if chiefs > 1:
        raise ValueError(f"TF_CONFIG: at most one chief, got {jobs[CHIEF]}")
    if task_type == EVALUATOR:
        return ClusterInfo(tf.train.ClusterSpec(jobs), task_type, task_id, False, 0, ps, None)
    is_chief = task_type == CHIEF or (not chiefs and task_type == WORKER and task_id == 0)
    offset = {CHIEF: 0, WORKER: chiefs, PS: chiefs + workers}.get(task_type)
    return ClusterInfo(
        tf.train.ClusterSpec(jobs),
        task_type,
        task_id,
        is_chief,
        chiefs + workers,
        ps,
        offset + task_id if offset is not None else None,
    )


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
