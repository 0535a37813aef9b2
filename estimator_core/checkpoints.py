"""Checkpoints in model_dir: when to save, which checkpoint to resume from, and the formats.

Every backend writes ``model.ckpt-<global step>.{index,data-*}`` and the standard
``checkpoint`` state file, so ``tf.train.latest_checkpoint(model_dir)`` finds them; what is in
them is the backend's :class:`CheckpointFormat`: object-based ``tf.train.Checkpoint`` files for
the function backend (:class:`ObjectCheckpointFormat`), name-based ``tf.compat.v1.train.Saver``
files, tf.estimator's own, for the graph backend. TensorFlow writes the data files before it
rewrites the state file (atomically), so a crash during a save leaves ``checkpoint`` pointing
at the previous, complete checkpoint.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from estimator_core.run_config import RunConfig
from estimator_core.variables import CHECKPOINT_ROOT, VariableStore, checkpoint_key

logger = logging.getLogger("estimator_core")

CHECKPOINT_NAME = "model.ckpt"


class CheckpointFormat(abc.ABC):
    """How one backend writes the weights in memory to checkpoints and reads them back."""

    #: the key of the global step in this format's checkpoints
    global_step_key: str

    @abc.abstractmethod
    def save(self, directory: str, step: int) -> str:
        """Write ``<directory>/model.ckpt-<step>`` and update the state file; returns its path.

        Keeps ``RunConfig.keep_checkpoint_max`` / ``keep_checkpoint_every_n_hours``."""

    @abc.abstractmethod
    def restore(self, path: str, reader: tf.train.CheckpointReader) -> None:
        """Make the weights (and the global step) equal to checkpoint ``path``."""

    @abc.abstractmethod
    def warm_start(self, settings: WarmStartSettings) -> None:
        """Initialise the variables ``settings`` selects; keep the global step."""

    @abc.abstractmethod
    def variable_names(self, reader: tf.train.CheckpointReader) -> list[str]:
        """The variable names (``get_variable_names()``) of a checkpoint of this format."""

    @abc.abstractmethod
    def variable_key(self, name: str) -> str:
        """The key of variable ``name`` in a checkpoint of this format."""


class ObjectCheckpointFormat(CheckpointFormat):
    """The function backend's: the store's checkpointed variables and the global step in a
    ``tf.train.Checkpoint`` (keys ``variables/<name>/.ATTRIBUTES/VARIABLE_VALUE``)."""

    global_step_key = "global_step/.ATTRIBUTES/VARIABLE_VALUE"

    def __init__(
        self, store: VariableStore, global_step: tf.Variable, config: RunConfig, directory: str
    ) -> None:
        self._store = store
        self._global_step = global_step
        self._root = tf.train.Checkpoint(global_step=global_step)
        self._root.variables = {}
        self._manager = tf.train.CheckpointManager(
            self._root,
            directory,
            max_to_keep=config.keep_checkpoint_max or None,
            keep_checkpoint_every_n_hours=config.keep_checkpoint_every_n_hours,
            checkpoint_name=CHECKPOINT_NAME,
        )

    def save(self, directory: str, step: int) -> str:
        for key, variable in self._store.checkpointed.items():
            if key not in self._root.variables:
                self._root.variables[key] = variable
        path = self._manager.save(checkpoint_number=step)
        self._store.set_pending_checkpoint(None)
        return path

    def restore(self, path: str, reader: tf.train.CheckpointReader) -> None:
        self._global_step.assign(reader.get_tensor(self.global_step_key))
        self._store.restore(reader, path, require_all=True)

    def warm_start(self, settings: WarmStartSettings) -> None:
        path, reader = _open(settings.ckpt_to_initialize_from, None)
        assigned = self._store.restore(reader, path, require_all=False, source=settings.source)
        logger.info("Warm-started %d variable(s) from %s.", len(assigned), path)

    def variable_names(self, reader: tf.train.CheckpointReader) -> list[str]:
        names = []
        suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
        for key in reader.get_variable_to_shape_map():
            if key == self.global_step_key:
                names.append("global_step")
            elif key.startswith(CHECKPOINT_ROOT + "/") and key.endswith(suffix):
                names.append(_unescape(key[len(CHECKPOINT_ROOT) + 1 : -len(suffix)]))
        return sorted(names)

    def variable_key(self, name: str) -> str:
        return self.global_step_key if name == "global_step" else checkpoint_key(name)


class Checkpointer:
    """When to save, and which checkpoint to resume from; the backend's :class:`CheckpointFormat`
    does the writing and reading.

    ``loaded_path`` is the checkpoint the variables in memory are equal to (``None`` when they
    equal none), which lets the Estimator skip restoring what it already holds. ``format`` may
    be set after construction (the Estimator learns its backend on its first call); only
    :meth:`latest` and the save policy work without it.

    ``save_dir`` (a non-chief worker's throwaway directory) receives the saves instead of
    model_dir; :meth:`latest` is then the latest there, or model_dir's before the first save
    (where a restarted cluster resumes from), so a worker never reads a chief's checkpoint
    mid-run, whose step may differ from its own for a moment.
    """

    def __init__(
        self,
        model_dir: str,
        checkpoint_format: CheckpointFormat | None,
        global_step: Callable[[], int],
        config: RunConfig,
        save_dir: str | None = None,
    ) -> None:
        self._model_dir = model_dir
        self._save_dir = save_dir
        self.format = checkpoint_format
        self._global_step = global_step
        self._every_steps = config.save_checkpoints_steps or None
        self._every_secs = config.save_checkpoints_secs or None
        self._last_save_time = time.time()
        self.loaded_path: str | None = None

    def latest(self) -> str | None:
        own = tf.train.latest_checkpoint(self._save_dir) if self._save_dir else None
        return own or tf.train.latest_checkpoint(self._model_dir)

    def save(self) -> str:
        """Write a checkpoint numbered by the global step; returns its path."""
        step = self._global_step()
        directory = self._save_dir or self._model_dir
        try:
            path = self.format.save(directory, step)
        except Exception:
            # A failed save (a full disk) leaves TensorFlow's temporary shard folder behind;
            # the state file still names the previous checkpoint, which stays valid.
            for leftover in tf.io.gfile.glob(
                os.path.join(directory, f"{CHECKPOINT_NAME}-{step}_temp*")
            ):
                tf.io.gfile.rmtree(leftover)
            raise
        self._last_save_time = time.time()
        self.loaded_path = path
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
                _verify(path, self.format.global_step_key)
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
        path, reader = _open(path, self.format.global_step_key)
        try:
            self.format.restore(path, reader)
        except tf.errors.OpError as err:  # a missing or damaged data file
            raise ValueError(f"cannot read checkpoint {path}: {err}") from err
        self.loaded_path = path

    def warm_start(self, settings: WarmStartSettings) -> None:
        """Initialise the variables ``settings`` selects from its checkpoint; keep the global step."""
        self.format.warm_start(settings)

    def reader(self) -> tf.train.CheckpointReader:
        """A reader of the latest checkpoint (``ValueError`` when there is none)."""
        latest = self.latest()
        if latest is None:
            raise ValueError(f"Could not find trained model in model_dir: {self._model_dir}.")
        return tf.train.load_checkpoint(latest)

    def variable_names(self) -> list[str]:
        """Names of the variables in the latest checkpoint (``global_step`` among them)."""
        reader = self.reader()
        assert self.format is not None, "a checkpoint decides the backend's format"
        return self.format.variable_names(reader)

    def variable_value(self, name: str) -> Any:
        """Value of variable ``name`` in the latest checkpoint."""
        reader = self.reader()
        assert self.format is not None, "a checkpoint decides the backend's format"
        key = self.format.variable_key(name)
        if not reader.has_tensor(key):
            raise ValueError(f"variable {name!r} is not in checkpoint {self.latest()}")
        return reader.get_tensor(key)

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


def resolve_checkpoint(path: str | os.PathLike) -> str:
    """A checkpoint prefix for ``path``: itself, a directory's latest checkpoint, or an
    exported SavedModel's variables."""
    path = os.fspath(path)
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return os.path.join(path, "variables", "variables")
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"no checkpoint found in directory {path}")
        return latest
    return path


def _open(path: str, global_step_key: str | None) -> tuple[str, tf.train.CheckpointReader]:
    """``(prefix, reader)`` of ``path``; with ``global_step_key``, the checkpoint must hold it
    (it was written by an Estimator of this backend)."""
    path = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    if global_step_key is not None and not reader.has_tensor(global_step_key):
        raise ValueError(
            f"checkpoint {path} has no global step under {global_step_key!r}: it was not "
            "written by an Estimator of this backend (function backend: object-based "
            "tf.train.Checkpoint; graph backend: name-based tf.compat.v1.train.Saver)"
        )
    return path, reader


def _verify(path: str, global_step_key: str) -> None:
    """Read every tensor of checkpoint ``path``: TensorFlow checks each one's checksum."""
    _, reader = _open(path, global_step_key)
    for key in reader.get_variable_to_shape_map():
        try:
            reader.get_tensor(key)
        except (IndexError, tf.errors.OpError) as err:  # IndexError: a truncated data file
            raise ValueError(f"tensor {key!r} unreadable: {err}") from err


def _unescape(escaped: str) -> str:
    """Undo the object-based checkpoints' escaping of ``.`` and ``/`` in names."""
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
    """``.../model.ckpt-1200`` → 1200."""
    return int(os.path.basename(path).rsplit("-", 1)[1])
