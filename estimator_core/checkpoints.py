"""Checkpoints in model_dir: when to save, how to save, how to restore.

Format: ``tf.train.Checkpoint`` files ``model.ckpt-<global step>.{index,data-*}`` and the
standard ``checkpoint`` state file, so ``tf.train.latest_checkpoint(model_dir)`` finds them.
TensorFlow writes the data files before it rewrites the state file (atomically), so a crash
during a save leaves ``checkpoint`` pointing at the previous, complete checkpoint.
"""

from __future__ import annotations

import logging
import os
import time

import tensorflow as tf

from estimator_core.run_config import RunConfig
from estimator_core.variables import VariableStore

logger = logging.getLogger("estimator_core")

CHECKPOINT_NAME = "model.ckpt"
GLOBAL_STEP_KEY = "global_step/.ATTRIBUTES/VARIABLE_VALUE"


class Checkpointer:
    """Saves the store's checkpointed variables and the global step; restores them.

    ``loaded_path`` is the checkpoint the variables in memory are equal to (``None`` when they
    equal none), which lets the Estimator skip restoring what it already holds.
    """

    def __init__(
        self, model_dir: str, store: VariableStore, global_step: tf.Variable, config: RunConfig
    ) -> None:
        self._model_dir = model_dir
        self._store = store
        self._global_step = global_step
        self._root = tf.train.Checkpoint(global_step=global_step)
        self._root.variables = {}
        self._manager = tf.train.CheckpointManager(
            self._root,
            model_dir,
            max_to_keep=config.keep_checkpoint_max or None,
            keep_checkpoint_every_n_hours=config.keep_checkpoint_every_n_hours,
            checkpoint_name=CHECKPOINT_NAME,
        )
        self._every_steps = config.save_checkpoints_steps or None
        self._every_secs = config.save_checkpoints_secs or None
        self._last_save_time = time.time()
        self.loaded_path: str | None = None

    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self._model_dir)

    def save(self) -> str:
        """Write a checkpoint numbered by the global step; returns its path."""
        for key, variable in self._store.checkpointed.items():
            if key not in self._root.variables:
                self._root.variables[key] = variable
        step = int(self._global_step.numpy())
        path = self._manager.save(checkpoint_number=step)
        self._last_save_time = time.time()
        self.loaded_path = path
        self._store.set_pending_checkpoint(None)
        return path

    def restore(self, path: str) -> None:
        """Make the variables equal to checkpoint ``path`` (a prefix or a directory)."""
        path, reader = _open(path)
        self._global_step.assign(reader.get_tensor(GLOBAL_STEP_KEY))
        self._store.restore(reader, path, require_all=True)
        self.loaded_path = path

    def warm_start(self, path: str) -> None:
        """Initialise the variables that checkpoint ``path`` holds from it; keep the global step."""
        path, reader = _open(path)
        self._store.restore(reader, path, require_all=False)
        logger.info("Warm-started from checkpoint %s.", path)

    def holds_step(self, global_step: int) -> bool:
        """True when the weights in memory equal a saved checkpoint of ``global_step``."""
        return self.loaded_path is not None and checkpoint_step(self.loaded_path) == global_step

    def next_save_step(self, global_step: int) -> int | None:
        """The next step at which a steps-based policy saves (``None`` without one)."""
        if self._every_steps is None:
            return None
        return (global_step // self._every_steps + 1) * self._every_steps

    def save_due(self, global_step: int) -> bool:
        if self._every_steps is not None:
            return global_step % self._every_steps == 0
        if self._every_secs is not None:
            return time.time() - self._last_save_time >= self._every_secs
        return False

    @property
    def checkpoint_paths(self) -> list[str]:
        """Checkpoints kept in model_dir, oldest first."""
        return list(self._manager.checkpoints)


def _open(path: str) -> tuple[str, tf.train.CheckpointReader]:
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"no checkpoint found in directory {path}")
        path = latest
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    if not reader.has_tensor(GLOBAL_STEP_KEY):
        raise ValueError(f"checkpoint {path} was not written by an estimator_core Estimator")
    return path, reader


def checkpoint_step(path: str) -> int:
    """``.../model.ckpt-1200`` → 1200."""
    return int(os.path.basename(path).rsplit("-", 1)[1])
