"""Checkpoints in model_dir: when to save, how to save, how to restore.

Format: ``tf.train.Checkpoint`` files ``model.ckpt-<global step>.{index,data-*}`` and the
standard ``checkpoint`` state file, so ``tf.train.latest_checkpoint(model_dir)`` finds them.
TensorFlow writes the data files before it rewrites the state file (atomically), so a crash
during a save leaves ``checkpoint`` pointing at the previous, complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any

import tensorflow as tf

from estimator_core.run_config import RunConfig
from estimator_core.variables import CHECKPOINT_ROOT, VariableStore, checkpoint_key

logger = logging.getLogger("estimator_core")

CHECKPOINT_NAME = "model.ckpt"
GLOBAL_STEP_KEY = "global_step/.ATTRIBUTES/VARIABLE_VALUE"


class Checkpointer:
    """Saves the store's checkpointed variables and the global step; restores them.

    ``loaded_path`` is the checkpoint the variables in memory are equal to (``None`` when they
    equal none), which lets the Estimator skip restoring what it already holds.

    ``save_dir`` (a non-chief worker's throwaway directory) receives the saves instead of
    model_dir; :meth:`latest` is then the latest there, or model_dir's before the first save
    (where a restarted cluster resumes from), so a worker never reads a chief's checkpoint
    mid-run, whose step may differ from its own for a moment.
    """

    def __init__(
        self,
        model_dir: str,
        store: VariableStore,
        global_step: tf.Variable,
        config: RunConfig,
        save_dir: str | None = None,
    ) -> None:
        self._model_dir = model_dir
        self._save_dir = save_dir
        self._store = store
        self._global_step = global_step
        self._root = tf.train.Checkpoint(global_step=global_step)
        self._root.variables = {}
        self._manager = tf.train.CheckpointManager(
            self._root,
            save_dir or model_dir,
            max_to_keep=config.keep_checkpoint_max or None,
            keep_checkpoint_every_n_hours=config.keep_checkpoint_every_n_hours,
            checkpoint_name=CHECKPOINT_NAME,
        )
        self.loaded_path: str | None = None

    @property
    def model_dir(self) -> str:
        return self._model_dir

    def latest(self) -> str | None:
        own = tf.train.latest_checkpoint(self._save_dir) if self._save_dir else None
        return own or tf.train.latest_checkpoint(self._model_dir)

    def save(self) -> str:
        """Write a checkpoint numbered by the global step; returns its path."""
        for key, variable in self._store.checkpointed.items():
            if key not in self._root.variables:
                self._root.variables[key] = variable
        step = int(self._global_step.numpy())
        try:
            path = self._manager.save(checkpoint_number=step)
        except Exception:
            # A failed save (a full disk) leaves TensorFlow's temporary shard folder behind;
            # the state file still names the previous checkpoint, which stays valid.
            directory = self._save_dir or self._model_dir
            for leftover in tf.io.gfile.glob(
                os.path.join(directory, f"{CHECKPOINT_NAME}-{step}_temp*")
            ):
                tf.io.gfile.rmtree(leftover)
            raise
        self.loaded_path = path
        self._store.set_pending_checkpoint(None)
        return path

    def restore_latest(self) -> str | None:
        """Restore the newest checkpoint that reads back whole; returns its path (None: there is
        no checkpoint). Every tensor is read once first (restores may be lazy and would meet
        damage late): a damaged checkpoint (truncated, corrupted, missing files) is skipped with
        a warning naming it, and the next older one is tried; when every checkpoint is damaged,
        ``ValueError``: training never silently starts again from scratch."""
        damaged = []
        for path in self._candidates():
            if path == self.loaded_path:
                return path
            try:
                _verify(path)
                self.restore(path)
            except (ValueError, tf.errors.OpError) as err:
                logger.warning("Checkpoint %s is damaged, trying an older one: %s", path, err)
                damaged.append(path)
                continue
            return path
        if damaged:
            raise ValueError(
                f"every checkpoint is damaged: {damaged}; refusing to start from scratch "
                "(move them away to train anew)"
            )
        return None

    def _candidates(self) -> list[str]:
        """The checkpoints to resume from, newest first (those of ``latest()``'s directory)."""
        latest = self.latest()
        if latest is None:
            return []
        directory = os.path.dirname(latest)
        state = tf.train.get_checkpoint_state(directory)
        older = [
            p if os.path.isabs(p) or "://" in p else os.path.join(directory, p)
            for p in (state.all_model_checkpoint_paths if state else [])
        ]
        return [latest] + [p for p in reversed(older) if p != latest]

    def restore(self, path: str) -> None:
        """Make the variables equal to checkpoint ``path`` (a prefix or a directory)."""
        path, reader = _open(path)
        self._global_step.assign(reader.get_tensor(GLOBAL_STEP_KEY))
        self._store.restore(reader, path, require_all=True)
        self.loaded_path = path

    def warm_start(self, settings: WarmStartSettings) -> None:
        """Initialise the variables ``settings`` selects from its checkpoint; keep the global step."""
        path, reader = _open(settings.ckpt_to_initialize_from, require_global_step=False)
        assigned = self._store.restore(reader, path, require_all=False, source=settings.source)
        logger.info("Warm-started %d variable(s) from %s.", len(assigned), path)

    def holds_step(self, global_step: int) -> bool:
        """True when the weights in memory equal a saved checkpoint of ``global_step``."""
        return self.loaded_path is not None and checkpoint_step(self.loaded_path) == global_step

    @property
    def checkpoint_paths(self) -> list[str]:
        """Checkpoints kept in model_dir, oldest first."""
        return list(self._manager.checkpoints)


@dataclasses.dataclass(frozen=True)
class WarmStartSettings:
    """Where and what to warm-start from, as ``tf.estimator.WarmStartSettings``.

    ``ckpt_to_initialize_from``: a checkpoint prefix, a model_dir (its latest checkpoint) or a
    SavedModel directory written by ``export_saved_model``. ``vars_to_warm_start``: a regular
    expression matched (``re.match``) against variable names (``get_variable_names()``), or a
    list of names. ``var_name_to_prev_var_name``: names in the checkpoint of renamed variables.
    Only variables found in the checkpoint are warm-started; the global step is not.
    """

    ckpt_to_initialize_from: str
    vars_to_warm_start: str | list[str] | None = ".*"
    var_name_to_prev_var_name: dict[str, str] | None = None

    def source(self, key: str) -> str | None:
        """The checkpoint name to initialise variable ``key`` from, or None to leave it."""
        wanted = self.vars_to_warm_start
        if wanted is None:
            return None
        if isinstance(wanted, str):
            if not re.match(wanted, key):
                return None
        elif key not in wanted:
            return None
        return (self.var_name_to_prev_var_name or {}).get(key, key)


def _open(path: str, require_global_step: bool = True) -> tuple[str, tf.train.CheckpointReader]:
    path = os.fspath(path)
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        path = os.path.join(path, "variables", "variables")
    elif tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"no checkpoint found in directory {path}")
        path = latest
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    if require_global_step and not reader.has_tensor(GLOBAL_STEP_KEY):
        raise ValueError(f"checkpoint {path} was not written by an estimator_core Estimator")
    return path, reader


def _verify(path: str) -> None:
    """Read every tensor of checkpoint ``path``: TensorFlow checks each one's checksum."""
    _, reader = _open(path)
    for key in reader.get_variable_to_shape_map():
        try:
            reader.get_tensor(key)
        except (IndexError, tf.errors.OpError) as err:  # IndexError: a truncated data file
            raise ValueError(f"tensor {key!r} unreadable: {err}") from err


def variable_names(reader: tf.train.CheckpointReader) -> list[str]:
    """The Estimator's names of the variables in a checkpoint (``global_step`` among them)."""
    names = []
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    for key in reader.get_variable_to_shape_map():
        if key == GLOBAL_STEP_KEY:
            names.append("global_step")
        elif key.startswith(CHECKPOINT_ROOT + "/") and key.endswith(suffix):
            names.append(_unescape(key[len(CHECKPOINT_ROOT) + 1 : -len(suffix)]))
    return sorted(names)


def variable_value(reader: tf.train.CheckpointReader, name: str, path: str | None) -> Any:
    """The value of variable ``name`` (see :func:`variable_names`) in checkpoint ``path``."""
    key = GLOBAL_STEP_KEY if name == "global_step" else checkpoint_key(name)
    if not reader.has_tensor(key):
        raise ValueError(f"variable {name!r} is not in checkpoint {path}")
    return reader.get_tensor(key)


def _unescape(escaped: str) -> str:
    """Undo the object-name escaping of :func:`~estimator_core.variables.checkpoint_key`."""
    out, i = [], 0
    while i < len(escaped):
        if escaped[i] == "." and i + 1 < len(escaped):
            out.append("/" if escaped[i + 1] == "S" else escaped[i + 1])
            i += 2
        else:
            out.append(escaped[i])
            i += 1
    return "".join(out)


def checkpoint_step(path: str) -> int:
    """``.../model.ckpt-1200`` → 1200 (``ValueError`` for a path without a step)."""
    try:
        return int(os.path.basename(os.fspath(path)).rsplit("-", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"checkpoint path {path!r} does not end in -<global step>") from None


def latest_checkpoint_step(directory: str | os.PathLike) -> int | None:
    """The global step of the latest checkpoint in ``directory``, or None when it has none."""
    latest = tf.train.latest_checkpoint(os.fspath(directory))
    return checkpoint_step(latest) if latest else None
