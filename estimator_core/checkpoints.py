"""Checkpoints in model_dir: which checkpoint to resume from, saving, restoring, the formats.

Every backend writes ``model.ckpt-<global step>.{index,data-*}`` and the standard
``checkpoint`` state file, so ``tf.train.latest_checkpoint(model_dir)`` finds them; what is in
them is the backend's :class:`CheckpointFormat`: object-based ``tf.train.Checkpoint`` files for
the function backend (:class:`ObjectCheckpointFormat`), name-based ``tf.compat.v1.train.Saver``
files, tf.estimator's own, for the graph backend
(:class:`~estimator_core.graph_backend.SaverCheckpointFormat`). When to save is the
:class:`~estimator_core.CheckpointSaverHook`'s. TensorFlow writes the data files before it rewrites the state file (atomically), so a crash
during a save leaves ``checkpoint`` pointing at the previous, complete checkpoint.

The state file is not trusted blindly: when it is unreadable (truncated, garbled), missing
while checkpoints are on disk, or names a checkpoint whose files are gone, the checkpoints are
found by listing ``model.ckpt-*.index`` (with all their data files), training resumes from the
newest whole one and the chief rewrites the state file, with a warning saying so. When nothing
on disk can be resumed from, that is an error saying what to do, never a silent restart at
step 0 (TensorFlow itself only logs "Checkpoint ignored" and starts again).
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import os
import re
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from estimator_core.run_config import RunConfig
from estimator_core.variables import CHECKPOINT_ROOT, VariableStore, checkpoint_key

logger = logging.getLogger("estimator_core")

CHECKPOINT_NAME = "model.ckpt"
STATE_FILE = "checkpoint"
_INDEX_FILE = re.compile(rf"^{re.escape(CHECKPOINT_NAME)}-(\d+)\.index$")
_DATA_FILE = re.compile(rf"^{re.escape(CHECKPOINT_NAME)}-(\d+)\.data-\d+-of-(\d+)$")


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
    """Which checkpoint to resume from, and saving and restoring through the backend's
    :class:`CheckpointFormat`.

    ``loaded_path`` is the checkpoint the variables in memory are equal to (``None`` when they
    equal none), which lets the Estimator skip restoring what it already holds. ``format`` may
    be set after construction (the Estimator learns its backend on its first call); only
    :meth:`latest` works without it.

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
        save_dir: str | None = None,
    ) -> None:
        self._model_dir = model_dir
        self._save_dir = save_dir
        self.format = checkpoint_format
        self._global_step = global_step
        self._reported: set[str] = set()
        if save_dir is None:  # only the chief writes model_dir
            _repair_state_file(model_dir)
        self.loaded_path: str | None = None

    @property
    def directory(self) -> str:
        """Where the saves go: model_dir, or a non-chief worker's ``save_dir``."""
        return self._save_dir or self._model_dir

    @property
    def model_dir(self) -> str:
        return self._model_dir

    def latest(self) -> str | None:
        """The checkpoint to resume from (None: there is none). Raises ``ValueError`` when
        model_dir's state file names checkpoints but none is on disk."""
        candidates = self._candidates()
        return candidates[0] if candidates else None

    def save(self) -> str:
        """Write a checkpoint numbered by the global step; returns its path."""
        step = self._global_step()
        directory = self.directory
        try:
            path = self._require_format().save(directory, step)
        except Exception:
            # A failed save (a full disk) leaves TensorFlow's temporary shard folder behind;
            # the state file still names the previous checkpoint, which stays valid.
            for leftover in tf.io.gfile.glob(
                os.path.join(directory, f"{CHECKPOINT_NAME}-{step}_temp*")
            ):
                tf.io.gfile.rmtree(leftover)
            raise
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
                _verify(path, self._require_format().global_step_key)
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
        """The whole checkpoints to resume from, newest first: the save_dir's when it has some,
        else model_dir's (see :func:`find_checkpoints`)."""
        for directory in (self._save_dir, self._model_dir):
            if directory is None:
                continue
            found = find_checkpoints(directory)
            if found.paths:
                if found.problem and found.problem not in self._reported:
                    self._reported.add(found.problem)
                    logger.warning(
                        "The checkpoint state file %s %s: resuming from the newest whole "
                        "checkpoint on disk, %s (found by listing %s-*.index).",
                        os.path.join(directory, STATE_FILE),
                        found.problem,
                        found.paths[0],
                        CHECKPOINT_NAME,
                    )
                return found.paths
            if found.problem:
                state = os.path.join(directory, STATE_FILE)
                raise ValueError(
                    f"The checkpoint state file {state} {found.problem}, and no whole "
                    f"checkpoint is in {directory} (no {CHECKPOINT_NAME}-<step>.index with all "
                    f"its data files): restore the checkpoint files, or remove {state} (or use "
                    "a new model_dir) to train from scratch."
                )
        return []

    def restore(self, path: str) -> None:
        """Make the variables equal to checkpoint ``path`` (a prefix or a directory)."""
        checkpoint_format = self._require_format()
        path, reader = _open(path, checkpoint_format.global_step_key)
        try:
            checkpoint_format.restore(path, reader)
        except (
            IndexError,
            tf.errors.OpError,
        ) as err:  # a damaged data file (IndexError: truncated)
            raise ValueError(f"cannot read checkpoint {path}: {err}") from err
        self.loaded_path = path

    def warm_start(self, settings: WarmStartSettings) -> None:
        """Initialise the variables ``settings`` selects from its checkpoint; keep the global step."""
        self._require_format().warm_start(settings)

    def variable_names(self) -> list[str]:
        """Names of the variables in the latest checkpoint (``global_step`` among them)."""
        reader = self._latest_reader()  # no checkpoint: its ValueError, before any format
        return self._require_format().variable_names(reader)

    def variable_value(self, name: str) -> Any:
        """Value of variable ``name`` (see :meth:`variable_names`) in the latest checkpoint."""
        reader = self._latest_reader()
        key = self._require_format().variable_key(name)
        if not reader.has_tensor(key):
            raise ValueError(f"variable {name!r} is not in checkpoint {self.latest()}")
        return reader.get_tensor(key)

    def _latest_reader(self) -> tf.train.CheckpointReader:
        latest = self.latest()
        if latest is None:
            raise ValueError(f"Could not find trained model in model_dir: {self._model_dir}.")
        return tf.train.load_checkpoint(latest)

    def _require_format(self) -> CheckpointFormat:
        assert self.format is not None, "the backend (and its format) is chosen first"
        return self.format

    def holds_step(self, global_step: int) -> bool:
        """True when the weights in memory equal a saved checkpoint of ``global_step``."""
        return self.loaded_path is not None and checkpoint_step(self.loaded_path) == global_step


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
    """A checkpoint prefix for ``path``: itself, a directory's newest whole checkpoint, or an
    exported SavedModel's variables."""
    path = os.fspath(path)
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return os.path.join(path, "variables", "variables")
    if tf.io.gfile.isdir(path):
        found = find_checkpoints(path)
        if not found.paths:
            problem = f" (its state file {found.problem})" if found.problem else ""
            raise ValueError(f"no checkpoint found in directory {path}{problem}")
        if found.problem:
            logger.warning(
                "The checkpoint state file in %s %s: reading the newest whole checkpoint, %s.",
                path,
                found.problem,
                found.paths[0],
            )
        return found.paths[0]
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


@dataclasses.dataclass(frozen=True)
class FoundCheckpoints:
    """The checkpoints of a directory that can be resumed from (``paths``, newest first), and
    what is wrong with its state file (``problem``: None when it agrees with the disk)."""

    paths: list[str]
    problem: str | None


def find_checkpoints(directory: str) -> FoundCheckpoints:
    """The whole checkpoints in ``directory`` (an index file and all its data files), newest
    first; the state file's latest first when that one is whole, as TensorFlow would pick it."""
    directory = os.fspath(directory)
    whole = _whole_checkpoints(directory)
    if not tf.io.gfile.exists(os.path.join(directory, STATE_FILE)):
        return FoundCheckpoints(whole, "is missing" if whole else None)
    try:
        state = tf.train.get_checkpoint_state(directory)
    except ValueError:  # no model_checkpoint_path in it (e.g. an empty file)
        state = None
    if state is None:
        return FoundCheckpoints(whole, "is unreadable (truncated or garbled)")
    latest = state.model_checkpoint_path
    same = [p for p in whole if _same_path(p, latest)]
    if same:
        return FoundCheckpoints([latest] + [p for p in whole if p not in same], None)
    return FoundCheckpoints(
        whole, f"names {os.path.basename(latest)}, whose files are missing or incomplete"
    )


def _whole_checkpoints(directory: str) -> list[str]:
    """``directory/model.ckpt-<step>`` of each checkpoint with an index and all of its data
    shards, highest step first."""
    if not tf.io.gfile.isdir(directory):
        return []
    names = tf.io.gfile.listdir(directory)
    shards: dict[int, set[int]] = {}
    expected: dict[int, int] = {}
    for name in names:
        match = _DATA_FILE.match(name)
        if match:
            step = int(match[1])
            shards.setdefault(step, set()).add(name)  # type: ignore[arg-type]
            expected[step] = int(match[2])
    steps = [int(m[1]) for m in map(_INDEX_FILE.match, names) if m]
    return [
        os.path.join(directory, f"{CHECKPOINT_NAME}-{step}")
        for step in sorted(steps, reverse=True)
        if step in shards and len(shards[step]) == expected[step]
    ]


def _same_path(a: str, b: str) -> bool:
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def _repair_state_file(directory: str) -> None:
    """Rewrite a state file that disagrees with the disk so that it names the whole
    checkpoints there (the newest as latest), for CheckpointManager to keep managing them."""
    found = find_checkpoints(directory)
    if found.problem is None or not found.paths:
        return
    oldest_first = [os.path.basename(p) for p in reversed(found.paths)]
    # CheckpointState in text form, as CheckpointManager writes it (names relative to the
    # directory); written beside, then renamed over the old one.
    lines = [f'model_checkpoint_path: "{oldest_first[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in oldest_first]
    lines += [
        f"all_model_checkpoint_timestamps: {tf.io.gfile.stat(p + '.index').mtime_nsec / 1e9}"
        for p in reversed(found.paths)
    ]
    state = os.path.join(directory, STATE_FILE)
    temporary = f"{state}.repair-{os.getpid()}"
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write("\n".join(lines) + "\n")
    tf.io.gfile.rename(temporary, state, overwrite=True)
    logger.warning(
        "The checkpoint state file %s %s: rewritten to name the %d whole checkpoint(s) on disk "
        "(found by listing %s-*.index); training resumes from the newest, %s.",
        state,
        found.problem,
        len(found.paths),
        CHECKPOINT_NAME,
        os.path.basename(found.paths[0]),
    )


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
